"""What a tool hands back to the model, the error a model's mistake raises, and cutting text to a budget."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ToolResult:
    text: str  # what the model reads (already cut to budget, secrets redacted)
    is_error: bool = False


class ToolError(Exception):
    """A mistake of the model's (bad argument, missing file, no match...): the message says what was
    wrong and what to do instead, and becomes an error result, never a crash."""


def looks_binary(head: bytes) -> bool:
    """True for data that is not text (a NUL byte in its first kilobytes, as git and grep decide)."""
    return b"\0" in head


def clip(head: bytes, tail: bytes, size: int, where: str | None = None) -> str:
    """Join the kept head and tail of `size` bytes of output around a line saying what was cut.

    The cut falls on line ends when one is near, so the model never sees half a line at the seams.
    """
    cut_head = head.rfind(b"\n")
    if cut_head >= len(head) // 2:
        head = head[:cut_head + 1]
    cut_tail = tail.find(b"\n")
    if 0 <= cut_tail < len(tail) // 2:
        tail = tail[cut_tail + 1:]
    cut = size - len(head) - len(tail)
    whole = f"; whole output in {where}" if where else ""
    text = head.decode("utf-8", "replace")
    if not text.endswith("\n"):
        text += "\n"
    return f"{text}... [{cut} bytes cut{whole}] ...\n{tail.decode('utf-8', 'replace')}"


def split_budget(budget: int) -> tuple[int, int]:
    """Bytes kept from the head and from the tail of an output cut to `budget` (the end of an output
    usually says more: the error, the summary)."""
    room = max(budget - 120, 200)
    head = room * 2 // 5
    return head, room - head


def fit(text: str, budget: int, where: str | None = None) -> str:
    """`text` itself when it fits in `budget` bytes, else its head and tail with a note of the cut."""
    data = text.encode("utf-8", "surrogateescape")
    if len(data) <= budget:
        return text
    head, tail = split_budget(budget)
    return clip(data[:head], data[len(data) - tail:], len(data), where)
