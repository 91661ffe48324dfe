"""Terminal escape sequences (colours, cursor moves, window titles) taken out of text a program meant
for a terminal: reasons, summaries and failure locations are read as plain text."""

from __future__ import annotations

import re

_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def strip_ansi(text: str) -> str:
    return _ESCAPES.sub("", text)
