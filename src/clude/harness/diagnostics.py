"""Explains, in one line, why a test command stopped before running any test (patterns in data/)."""

from __future__ import annotations

import re
import tomllib
from functools import lru_cache
from pathlib import Path

from clude.harness.inject.clude_events import error_line

_DATA = Path(__file__).parent / "data" / "diagnostics.toml"


@lru_cache(maxsize=1)
def _patterns() -> list[tuple[re.Pattern, str]]:
    data = tomllib.loads(_DATA.read_text(encoding="utf-8"))
    return [(re.compile(p["regex"]), p["reason"]) for p in data["pattern"]]


def explain(output_tail: str, program: str = "", root: str = "") -> str:
    """The reason a run failed to start, from the end of its output; paths shown relative to root."""
    error = error_line(output_tail) or "no output"
    reason = error
    for regex, template in _patterns():
        m = regex.search(output_tail)
        if m:
            fields = {k: (v or "") for k, v in m.groupdict().items()}
            reason = template.format(error=error, program=program, **fields)
            break
    if root:
        reason = reason.replace(root.rstrip("/") + "/", "")
    return reason
