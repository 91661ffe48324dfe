"""clude.toml or [tool.clude] in pyproject.toml -> typed settings; bad keys and types are named errors."""

from clude.lazy import lazy_attributes

_WHERE = {"ConfigError": "files", "find_config": "files", "raw_test_table": "files",
          "load_settings": "loader", "Settings": "settings", "TestConfig": "settings",
          "ModelConfig": "settings", "AgentConfig": "settings", "TeamConfig": "settings",
          "BackendConfig": "settings", "Price": "settings", "QuirksEntry": "settings"}
__all__ = list(_WHERE)
__getattr__ = lazy_attributes(__name__, _WHERE)
