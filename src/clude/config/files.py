"""Where clude's configuration lives, read raw (standard library only: the quick path reads it)."""

from __future__ import annotations

import tomllib
from pathlib import Path

CONFIG_FILE = "clude.toml"


class ConfigError(Exception):
    """Bad configuration; the message names the file, the key and what was expected."""


def find_config(start: Path) -> tuple[Path, str | None] | None:
    """(file, table) of the nearest configuration at or above `start`: clude.toml, else a
    pyproject.toml with [tool.clude]. The search stops at the root of a git work tree. A broken
    pyproject.toml is an error in the project itself; above it, it is someone else's and skipped."""
    for directory in [start, *start.parents]:
        if (directory / CONFIG_FILE).is_file():
            return directory / CONFIG_FILE, None
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file():
            try:
                data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
                if directory != start:
                    continue
                raise ConfigError(f"{pyproject}: not valid TOML: {exc}") from None
            if "clude" in data.get("tool", {}):
                return pyproject, "tool.clude"
        if (directory / ".git").exists():
            break
    return None


def raw_test_table(start: Path) -> dict:
    """The [test] table of the configuration that applies at `start`, as written (not validated)."""
    found = find_config(start.resolve())
    if not found:
        return {}
    path, table = found
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"{path}: cannot be read as TOML: {exc}") from None
    for key in (table.split(".") if table else []):
        data = data.get(key, {}) if isinstance(data, dict) else {}
    test = data.get("test", {}) if isinstance(data, dict) else {}
    return test if isinstance(test, dict) else {}
