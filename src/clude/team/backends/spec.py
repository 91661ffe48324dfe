"""A backend's spec: what data/backends.toml says of one agent CLI, changed by [backends.NAME] of
clude.toml (or the --command flag), checked and read into a BackendSpec that base.py runs."""

from __future__ import annotations

import shlex
import tomllib
import types
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping

from clude.config.settings import BackendConfig
from clude.team.backends.agent_files import ConfigHome, config_home, pairs
from clude.team.backends.results import READERS

PLACEHOLDERS = ("prompt_file", "prompt", "task_id", "workdir", "agent_id", "python", "program")
PROMPT_VIA = ("file", "stdin", "arg")

_DATA = Path(__file__).parent / "data" / "backends.toml"
NO_CONFIGS: Mapping[str, BackendConfig] = types.MappingProxyType({})


@dataclass(frozen=True)
class BackendSpec:
    name: str
    command: tuple[str, ...]
    prompt_via: str
    required_env: tuple[str, ...]
    env: tuple[str, ...]
    result: str
    version: tuple[str, ...] = ()
    about: str = ""
    install: str | None = None
    timeout_s: float | None = None
    sandbox_home: tuple[str, ...] = ()  # entries of the home folder the agent keeps (its own config)
    env_defaults: tuple[tuple[str, str], ...] = ()  # (NAME, value) given to the agent unless NAME is set
    never_land: tuple[str, ...] = ()  # globs of the files the tool leaves in the tree: never landed
    credentials: tuple[str, ...] = ()  # its own login files: one that exists stands for required_env
    env_from: tuple[tuple[str, str], ...] = ()  # (NAME, OTHER): NAME given OTHER's value unless NAME is set
    config_home: ConfigHome | None = None  # a folder of settings written for each run (agent_files.py)
    tested: str = ""  # the CLI's version its command was tried with (doctor says when another is found)
    configured: tuple[str, ...] = field(default=(), compare=False)  # fields clude.toml set


@lru_cache(maxsize=1)
def builtin_specs() -> dict[str, dict]:
    """The built-in backends as written in data/backends.toml."""
    return tomllib.loads(_DATA.read_text(encoding="utf-8"))


def backend_names(configs: Mapping[str, BackendConfig] = NO_CONFIGS) -> list[str]:
    """The backends one can name: the built-in ones, then those clude.toml defines."""
    names = list(builtin_specs())
    return names + sorted(name for name in configs if name not in names)


def spec_of(name: str, configs: Mapping[str, BackendConfig] = NO_CONFIGS, *,
            command: str | None = None) -> BackendSpec:
    """The spec of the backend `name`: its built-in one changed by [backends.NAME], its command replaced
    by `command` (the --command TEMPLATE flag) when given. ValueError names what is wrong."""
    builtins = builtin_specs()
    config = configs.get(name)
    if name not in builtins and config is None:
        raise ValueError(f"unknown backend {name!r}: use one of {', '.join(backend_names(configs))}, "
                         f"or define it in clude.toml as [backends.{name}] with a command")
    raw = dict(builtins.get(name, {"prompt_via": "file", "required_env": [], "env": [], "result": "text",
                                   "version": [], "about": f"[backends.{name}] of clude.toml"}))
    configured: list[str] = []
    if config is not None:
        for key in ("command", "prompt_via", "result", "timeout_s", "required_env", "sandbox_home"):
            value = getattr(config, key)
            if value is not None:
                raw[key] = value
                configured.append(key)
        if config.env:
            raw["env"] = list(raw.get("env", [])) + list(config.env)
            configured.append("env")
        if config.never_land:
            raw["never_land"] = list(raw.get("never_land", [])) + list(config.never_land)
            configured.append("never_land")
    if command is not None:
        raw["command"] = command
        configured.append("command")
    words = _words(name, raw.get("command"))
    prompt_via = raw.get("prompt_via", "file")
    if prompt_via not in PROMPT_VIA:
        raise ValueError(f"[backends.{name}] prompt_via = {prompt_via!r}: use one of {', '.join(PROMPT_VIA)}")
    result = raw.get("result", "text")
    if result not in READERS:
        raise ValueError(f"[backends.{name}] result = {result!r}: use one of {', '.join(READERS)}")
    keys = tuple(alt.strip() for spec in names_of(raw.get("required_env", [])) for alt in spec.split("|"))
    return BackendSpec(
        name=name, command=tuple(words), prompt_via=prompt_via,
        required_env=tuple(names_of(raw.get("required_env", []))), env=tuple(names_of(raw.get("env", []))),
        result=result, version=tuple(raw.get("version", [])), about=raw.get("about", ""),
        install=raw.get("install"), timeout_s=raw.get("timeout_s"),
        sandbox_home=tuple(names_of(raw.get("sandbox_home", []))), configured=tuple(configured),
        never_land=tuple(str(g) for g in raw.get("never_land", [])),
        env_defaults=pairs(raw.get("env_defaults")), env_from=pairs(raw.get("env_from")),
        credentials=tuple(names_of(raw.get("credentials", []))), tested=str(raw.get("tested", "")),
        config_home=config_home(name, raw.get("config_home"), keys))


def _words(name: str, command) -> list[str]:
    if command is None or (isinstance(command, (str, list)) and not command):
        where = "--command TEMPLATE" if name == "command" else f"[backends.{name}] command"
        raise ValueError(f"the {name} backend needs a command line: give it with {where}, e.g. "
                         f"\"./agent.sh {{prompt_file}}\" (placeholders: "
                         f"{' '.join('{' + p + '}' for p in PLACEHOLDERS[:5])})")
    if isinstance(command, str):
        try:
            words = shlex.split(command)
        except ValueError as error:
            raise ValueError(f"the {name} backend's command {command!r} cannot be split into words: "
                             f"{error}") from None
    else:
        words = [str(word) for word in command]
    if not words or not words[0].strip():
        raise ValueError(f"the {name} backend's command is empty")
    return words


def names_of(values) -> list[str]:
    """The names given, stripped, blanks and repeats dropped, in order."""
    seen: list[str] = []
    for value in values:
        value = str(value).strip()
        if value and value not in seen:
            seen.append(value)
    return seen
