"""Tells an agent that could not start or could not work (an infrastructure failure) from one that ran:
InfraFailure, and classify() over the end of its output with the patterns in data/infra.toml."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from clude.harness.inject.clude_events import strip_ansi
from clude.secrets import KEY_SHAPES

InfraKind = Literal["missing_env", "command_not_found", "auth", "rate_limited", "network", "server_error",
                    "interpreter_missing", "suite_unusable", "start_failed", "cli_flags"]
# What each kind of failure is, and so what follows (docs/team.md, "When an agent cannot work"):
#   environment  the worker's setup is broken (a variable, a program, a key, the upstream's own tests):
#                retrying cannot heal it, the worker stops at once with the reason
#   transient    the model API is busy or out of reach: the worker waits (the API's retry-after, or a
#                growing wait with jitter) and goes on
#   unknown      the agent ended before changing anything, for no reason clude recognizes: counted and
#                shown; three in a row make the worker's environment the suspect, and one task that
#                fails so on workers doing other tasks fine is blocked (team/work/blame.py)
# A failure that is the task's (no valid plan, out of time, no change, tests failing, a refused
# change) is no InfraFailure: it is a failed attempt, with its reason in words.
Category = Literal["environment", "transient", "unknown"]
CATEGORY: dict[str, Category] = {
    "missing_env": "environment", "command_not_found": "environment", "interpreter_missing": "environment",
    "auth": "environment", "suite_unusable": "environment", "cli_flags": "environment",
    "rate_limited": "transient", "network": "transient", "server_error": "transient",
    "start_failed": "unknown",
}

TAIL_LINES = 200  # classify() reads only the end of the output
START_LINES = 5  # patterns with where = "start" read only the first non-blank lines
LINE_CHARS = 160  # the part of a matched line a message quotes

_DATA = Path(__file__).parent / "data" / "infra.toml"
_UNITS = {"ms": 0.001, "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0, "m": 60.0,
          "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0, "h": 3600.0, "hour": 3600.0,
          "hours": 3600.0}


@dataclass
class InfraFailure:
    """Why an agent could not start or could not work. `message` is one actionable line naming the
    variable or program, never a secret; `name` is that variable or program."""

    kind: InfraKind
    message: str
    name: str | None = None
    retry_after_s: float | None = None  # rate limits: how long the API asked to wait

    @property
    def category(self) -> Category:
        return CATEGORY[self.kind]


@dataclass(frozen=True)
class _Pattern:
    kind: str
    regex: re.Pattern
    message: str
    name: str | None
    start: bool
    any_exit: bool


@dataclass(frozen=True)
class _Rules:
    patterns: tuple[_Pattern, ...]
    ignore: tuple[re.Pattern, ...]
    summaries: tuple[re.Pattern, ...]
    retry_after: tuple[re.Pattern, ...]


@lru_cache(maxsize=1)
def _rules() -> _Rules:
    data = tomllib.loads(_DATA.read_text(encoding="utf-8"))
    patterns = tuple(_Pattern(kind=p["kind"], regex=re.compile(p["regex"]), message=p["message"],
                              name=p.get("name"), start=p.get("where", "tail") == "start",
                              any_exit=p.get("exit", "failed") == "any") for p in data["pattern"])
    for pattern in patterns:
        if pattern.kind not in InfraKind.__args__:
            raise ValueError(f"{_DATA}: unknown kind {pattern.kind!r}")
    return _Rules(patterns=patterns,
                  ignore=tuple(re.compile(i["regex"]) for i in data.get("ignore", [])),
                  summaries=tuple(re.compile(s["regex"]) for s in data.get("test_summary", [])),
                  retry_after=tuple(re.compile(r["regex"]) for r in data.get("retry_after", [])))


def classify(output: str, exit_code: int | None) -> InfraFailure | None:
    """The infrastructure failure an agent's output shows, or None when it shows the agent ran.

    Pure. Reads the last TAIL_LINES lines (and, for start-only shapes such as a shell's "command not
    found", the first few), skips the lines of test reports, and ignores a match that a test summary
    follows (it came from tests the agent ran). After exit 0 only shapes marked exit = "any" count
    (Claude Code's JSON result saying it could not authenticate).
    """
    rules = _rules()
    lines = [strip_ansi(line) for line in output.splitlines()]
    head = "\n".join([line for line in lines if line.strip()][:START_LINES])
    tail_lines = [line for line in lines[-TAIL_LINES:]
                  if not any(ignore.search(line) for ignore in rules.ignore)]
    tail = "\n".join(tail_lines)
    for pattern in rules.patterns:
        if exit_code == 0 and not pattern.any_exit:
            continue
        text = head if pattern.start else tail
        for match in pattern.regex.finditer(text):
            if not pattern.start and _before_test_summary(text, match.end(), rules.summaries):
                continue
            return _failure(pattern, match, text, tail, rules)
    return None


def _before_test_summary(text: str, end: int, summaries: tuple[re.Pattern, ...]) -> bool:
    after = text[end:].splitlines()[1:]
    return any(summary.search(line) for line in after for summary in summaries)


def _failure(pattern: _Pattern, match: re.Match, text: str, tail: str, rules: _Rules) -> InfraFailure:
    groups = {key: value for key, value in match.groupdict().items() if value is not None}
    name = next((groups[key] for key in sorted(groups) if key.startswith("name")), pattern.name)
    line_start = text.rfind("\n", 0, match.start()) + 1
    line_end = text.find("\n", match.start())
    line = _shorten(text[line_start:line_end if line_end >= 0 else len(text)])
    fields = {key: _shorten(value) for key, value in groups.items()}
    fields.update(name=name or "", line=line)
    for key in re.findall(r"\{(\w+)\}", pattern.message):
        fields.setdefault(key, "")
    message = pattern.message.format(**fields)
    retry = retry_after(tail) if CATEGORY[pattern.kind] == "transient" else None
    if retry is not None:
        message += f" (the API asked to wait {retry:g} s)"
    return InfraFailure(kind=pattern.kind, message=message, name=name, retry_after_s=retry)


def _shorten(text: str) -> str:
    text = KEY_SHAPES.sub("[redacted]", " ".join(text.split()))
    return text if len(text) <= LINE_CHARS else text[:LINE_CHARS - 1] + "…"


def retry_after(text: str) -> float | None:
    """The wait a rate-limit message asks for, in seconds (the last one given), or None."""
    found: float | None = None
    position = -1
    for regex in _rules().retry_after:
        for match in regex.finditer(text):
            seconds = _seconds(match.group("value"), match.groupdict().get("unit"))
            if seconds is not None and match.start() > position:
                found, position = seconds, match.start()
    return found


def _seconds(value: str, unit: str | None) -> float | None:
    pairs = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", value)
    if pairs and "".join(a + b for a, b in pairs) == value:
        return sum(float(number) * _UNITS[suffix] for number, suffix in pairs)
    try:
        return float(value) * _UNITS.get((unit or "s").lower(), 1.0)
    except ValueError:
        return None


