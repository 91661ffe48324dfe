"""Finds and reads clude's configuration, turning every problem into an error that names file and key."""

from __future__ import annotations

import tomllib
import types
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
        raise ConfigError(_describe(exc, where, found[1] if found else None)) from None


def _merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict):  # a flag left unset (None) leaves the file's value alone
            out[key] = _merge(out.get(key) if isinstance(out.get(key), dict) else {}, value)
        elif value is not None:
            out[key] = value
    return out


# pydantic errors about a number out of its setting's range (inf and nan included, and integers too
# big to read): the message gives the whole allowed range, not just the bound that was crossed.
RANGE_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal",
                          "finite_number", "int_parsing_size"})
# Characters of a bad value shown (a 400-digit integer is cut).
SHOWN_VALUE = 60


def _describe(exc: ValidationError, where: str, table: str | None = None) -> str:
    """One line per bad key: `where: key: got VALUE; what was expected`. `table` is the TOML table the
    settings were read from ("tool.clude" in pyproject.toml; None: the top of clude.toml)."""
    lines: dict[str, str] = {}
    for err in exc.errors():
        setting = _setting(err["loc"])
        loc = setting.keys
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
                _shown(err.get("input"))
            expected = _range(setting, table) if err["type"] in RANGE_ERRORS else None
            lines[key] = f"{where}: {key}: got {got}; {expected or err['msg'].lower()}"
    return "\n".join(lines.values())


class _Setting(typing.NamedTuple):
    keys: list[str]  # the configuration keys of a pydantic error location
    annotation: typing.Any = None  # the type of the last key's value, when known
    constraints: tuple = ()  # its annotated_types bounds (Ge, Gt, Le, Lt)
    default: typing.Any = None  # its default, when it is a field of a section


def _setting(loc: tuple) -> _Setting:
    """The configuration keys in a pydantic error location (without union tags like 'list[str]'), and
    what is known of the setting they lead to: its type, bounds and default."""
    model: type[BaseModel] | None = Settings
    keys: list[str] = []
    found = _Setting(keys)
    for part in loc:
        if isinstance(part, int):
            continue
        if model is not None and part in model.model_fields:
            info = model.model_fields[part]
            found = _Setting(keys, info.annotation, tuple(info.metadata), info.get_default(
                call_default_factory=False))
        elif model is None and typing.get_origin(found.annotation) is dict:  # a key of a table of values
            value = typing.get_args(found.annotation)[1]
            if typing.get_origin(value) is typing.Annotated:
                value, *extra = typing.get_args(value)
                found = _Setting(keys, value, tuple(m for e in extra for m in getattr(e, "metadata", [e])))
            else:
                found = _Setting(keys, value)
        else:
            if model is not None:
                keys.append(str(part))  # an unknown key
            break
        keys.append(str(part))
        annotation = found.annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return found


def _allowed_keys(path: list[str]) -> list[str]:
    if not path:
        return list(Settings.model_fields)
    annotation = _setting(tuple(path)).annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _range(setting: _Setting, table: str | None) -> str | None:
    """What a bounded number must be, with its key as written in the file and its default:
    'must be a number from 1 to 86400 ([team] lease_s, default 120)'. None for an unbounded one."""
    bounds = {name: getattr(c, name) for c in setting.constraints for name in ("ge", "gt", "le", "lt")
              if getattr(c, name, None) is not None}
    if not bounds:
        return None
    if "ge" in bounds and "le" in bounds:
        span = f"from {_number(bounds['ge'])} to {_number(bounds['le'])}"
    else:
        span = " and ".join(f"{words} {_number(bounds[name])}" for name, words in (
            ("ge", "at least"), ("gt", "greater than"), ("le", "at most"), ("lt", "below")) if name in bounds)
    kind = "an integer" if _is_int(setting.annotation) else "a number"
    *section, name = setting.keys
    where = ".".join(filter(None, [table, *section]))
    key = f"[{where}] {name}" if where else name
    default = setting.default
    default = f", default {_number(default)}" if isinstance(default, (int, float)) else ""
    return f"must be {kind} {span} ({key}{default})"


def _number(value: float) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _is_int(annotation: typing.Any) -> bool:
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    options = typing.get_args(annotation) if union else (annotation,)
    return int in options and float not in options


def _shown(value: typing.Any) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_VALUE else f"{text[:SHOWN_VALUE - 20]}...({len(text)} characters)"
