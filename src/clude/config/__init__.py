"""clude.toml or [tool.clude] in pyproject.toml -> typed settings; bad keys and types are named errors."""

from clude.config.loader import ConfigError, find_config, load_settings
from clude.config.settings import Settings, TestConfig

__all__ = ["ConfigError", "Settings", "TestConfig", "find_config", "load_settings"]
