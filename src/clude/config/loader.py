"""Finds and reads clude's configuration, turning every problem into an error that names file and key."""

from __future__ import annotations

import tomllib
import typing
from pathlib import Path

from pydantic import BaseModel, ValidationError

from clude.config.files import ConfigError, find_config
from clude.config.settings import Settings

__all__ = ["ConfigError", "find_config", "load_settings"]

def load_settings(start: Path, overrides: dict | None = None) -> tuple[Settings, Path | None]:
    """The settings for a project at `start` and the file they came from (None: defaults only).

    `overrides` ({"test": {"timeout": 5}}) are command-line flags; they win over the file.
    """
    found = find_config(start.resolve())
    data: dict = {}
    source = None
    if found:
        source, table = found
        try:
            raw = tomllib.loads(source.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except OSError as exc:
            raise ConfigError(f"{source}: cannot be read ({exc.strerror})") from None
        data = raw["tool"]["clude"] if table else raw
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: [{table}] must be a table")
    merged = _merge(data, overrides or {})
    try:
        return Settings.model_validate(merged), source
    except ValidationError as exc:
        where = f"{source}" + (" [tool.clude]" if found and found[1] else "") if source else \
            "command-line options"
        raise ConfigError(_describe(exc, where)) from None


def _merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict):  # a flag left unset (None) leaves the file's value alone
            out[key] = _merge(out.get(key) if isinstance(out.get(key), dict) else {}, value)
        elif value is not None:
            out[key] = value
    return out


def _describe(exc: ValidationError, where: str) -> str:
    lines: dict[str, str] = {}
    for err in exc.errors():
        loc = _key_path(err["loc"])
        key = ".".join(loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            lines.setdefault(key, f"{where}: unknown key '{key}'"
                             + (f" (expected one of: {', '.join(allowed)})" if allowed else ""))
        elif key in lines:  # a value that fits none of a union's types: one line, all expectations
            lines[key] += f" or {err['msg'].lower()}"
        else:
            # values under [test.env] may be secrets: say what kind of value, never the value
            got = type(err.get("input")).__name__ if loc[:2] == ["test", "env"] else \
                repr(err.get("input"))
            lines[key] = f"{where}: {key}: got {got}; {err['msg'].lower()}"
    return "\n".join(lines.values())


def _key_path(loc: tuple) -> list[str]:
    """The configuration keys in a pydantic error location, without union tags like 'list[str]'."""
    model: type[BaseModel] | None = Settings
    keys: list[str] = []
    table_of_values = False  # the last key was a plain table such as [test.env]
    for part in loc:
        if isinstance(part, int):
            continue
        if model is not None and part in model.model_fields:
            keys.append(part)
            annotation = model.model_fields[part].annotation
            table_of_values = typing.get_origin(annotation) is dict
            model = annotation if isinstance(annotation, type) and \
                issubclass(annotation, BaseModel) else None
            continue
        if model is not None or table_of_values:
            keys.append(str(part))  # an unknown key, or a key of a plain table
        break
    return keys


def _allowed_keys(path: list[str]) -> list[str]:
    model: type[BaseModel] = Settings
    for part in path:
        field = model.model_fields.get(part)
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)
