"""What an agent CLI reads besides the variables it is given, as data/backends.toml describes it: its own
login file (`credentials`, which stands for a required key), variables given another one's value
(`env_from`), and a folder of settings written for each run (`config_home`: codex's CODEX_HOME with the
server of OPENAI_BASE_URL)."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit, urlunsplit

_NAME = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_HOME_KEYS = {"var", "when", "file", "text"}
KEPT_HOMES = 20  # a backend's per-run folders kept beside the runs' logs (the newest)


@dataclass(frozen=True)
class ConfigHome:
    """A folder made for each run, next to its log (never in the work tree, which lands), and named to
    the agent by `var`: made only when `when` is set in the workers' environment, holding `file` with
    `text`, where {NAME} stands for NAME's value as a quoted string (TOML and JSON alike)."""

    var: str
    when: str
    file: str
    text: str

    def folder(self, log_path: Path) -> Path:
        """Where a run's folder goes: beside its log, e.g. runs/TASK-001_attempt_1.codex_home."""
        return log_path.with_name(f"{log_path.stem}.{self.var.lower()}")

    def applies(self, env: Mapping[str, str]) -> bool:
        """Whether a run with `env` gets the folder (its `when` variable is set)."""
        return bool((env.get(self.when) or "").strip())

    def write(self, env: Mapping[str, str], log_path: Path) -> dict[str, str]:
        """The folder made (when `when` is set in `env`) and its file written: the variable that names
        it to the agent, or nothing."""
        if not self.applies(env):
            return {}
        folder = self.folder(log_path)
        (folder / self.file).parent.mkdir(parents=True, exist_ok=True)
        text = _NAME.sub(lambda m: json.dumps(_without_userinfo(env.get(m.group(1), ""))), self.text)
        (folder / self.file).write_text(text, encoding="utf-8")
        self._prune(folder)
        return {self.var: str(folder)}

    def _prune(self, made: Path) -> None:
        """Only the KEPT_HOMES newest of these folders stay beside the logs (each holds the CLI's state
        of its run: a megabyte or more)."""
        kept = sorted((p for p in made.parent.glob(f"*.{self.var.lower()}") if p.is_dir() and not p.is_symlink()),
                      key=lambda p: p.stat().st_mtime)
        for old in kept[:-KEPT_HOMES]:
            if old != made:
                shutil.rmtree(old, ignore_errors=True)


def _without_userinfo(value: str) -> str:
    """A URL without the user and password it may carry (written to a file, a secret would stay there);
    any other value as it is."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return value
    if parts.scheme and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return value


def config_home(name: str, raw: Any, keys: tuple[str, ...]) -> ConfigHome | None:
    """[backends.NAME] config_home read (None when absent); ValueError names what is wrong. `keys`: the
    backend's key variables, which its text may not name (a key is never written to disk)."""
    if raw is None:
        return None
    where = f"[backends.{name}] config_home"
    if not isinstance(raw, dict) or set(raw) != _HOME_KEYS or not all(isinstance(v, str) and v
                                                                       for v in raw.values()):
        raise ValueError(f"{where} needs exactly {', '.join(sorted(_HOME_KEYS))}, each a non-empty string")
    parts = Path(raw["file"]).parts
    if Path(raw["file"]).is_absolute() or not parts or any(p in (".", "..") for p in parts):
        raise ValueError(f"{where} file = {raw['file']!r}: a path inside the folder (no /, . or .. parts)")
    named = set(_NAME.findall(raw["text"])) & set(keys)
    if named:
        raise ValueError(f"{where} text names {', '.join(sorted(named))}: keys reach the agent by its "
                         "environment, never written to a file")
    return ConfigHome(**raw)


def found_credentials(paths: tuple[str, ...], env: Mapping[str, str]) -> str | None:
    """The first of `paths` (~ is the workers' HOME) that is a file: the CLI's own login, which stands
    for the keys of required_env."""
    home = env.get("HOME") or os.path.expanduser("~")
    for path in paths:
        full = home + path[1:] if path == "~" or path.startswith("~/") else path
        if os.path.isfile(full):
            return path
    return None


def pairs(raw: Any) -> tuple[tuple[str, str], ...]:
    """A {NAME = "value"} table (env_defaults, env_from) as (NAME, value) pairs."""
    return tuple((str(k), str(v)) for k, v in (raw or {}).items())


def remove_homes(made: Mapping[str, str]) -> None:
    """A run's own settings folders removed once it ended (links in them unlinked, never followed)."""
    for folder in made.values():
        shutil.rmtree(folder, ignore_errors=True)
