"""edit_file: replace one exact occurrence of a text, and explain a miss with the closest lines."""

from __future__ import annotations

import difflib
import heapq
import re

from clude.agent.tools.files import SNIFF_BYTES, existing_file, numbered, read_regular, replace_file
from clude.agent.tools.result import ToolError, looks_binary
from clude.agent.tools.workspace import Workspace

# Lines of the edited file shown around the change after a successful edit.
CONTEXT_LINES = 2
SHOWN_AFTER_EDIT = 30
# Windows compared exactly (SequenceMatcher.ratio) after cheaper filters.
EXACT_COMPARES = 12
# Files with more windows than this are first filtered by the lines they share with the search.
QUICK_LIMIT = 1500
# Below this similarity a window is not worth showing as a candidate.
MIN_SIMILARITY = 0.4
# A second candidate is shown only when it is nearly as close as the first.
SECOND_SHOWN = 0.85
# What read_file puts before each line, which must not be part of a search.
LINE_NUMBER = re.compile(r"^\s*\d+ \| ")
WORD = re.compile(r"\w+")

EMPTY_SEARCH = ("search is empty: give the exact text to replace, copied from read_file without the "
                "line numbers. To create a file or rewrite all of it use write_file; to insert text, "
                "search for the line next to where it goes and repeat that line in replace together "
                "with the new text.")


def edit_file(ws: Workspace, path: str, search: str, replace: str) -> str:
    if search == "":
        raise ToolError(EMPTY_SEARCH)
    target = existing_file(ws, path, for_write=True)
    shown = ws.show(target)
    raw = read_regular(target, shown)
    if looks_binary(raw[:SNIFF_BYTES]):
        raise ToolError(f"{shown} is a binary file ({len(raw)} bytes); edit_file changes text files only.")
    text = raw.decode("utf-8", "surrogateescape")
    # a file with Windows line ends throughout matches a search written with plain "\n"
    crlf = "\r\n" in text and text.count("\r\n") == text.count("\n") and "\r" not in search
    if crlf:
        text = text.replace("\r\n", "\n")
        replace = replace.replace("\r\n", "\n")
    starts = occurrences(text, search)
    if not starts:
        raise ToolError(no_match(shown, text, search))
    if len(starts) > 1:
        lines = [text.count("\n", 0, s) + 1 for s in starts]
        listed = ", ".join(map(str, lines[:20])) + (", ..." if len(lines) > 20 else "")
        raise ToolError(f"the search text occurs {len(starts)} times in {shown} (starting at lines "
                        f"{listed}); nothing was changed. Include a few more surrounding lines in "
                        f"search (and the same lines in replace) so that it matches exactly one place.")
    if search == replace:
        raise ToolError("search and replace are the same text, so nothing would change. Put the new "
                        "text in replace.")
    at = starts[0]
    new = text[:at] + replace + text[at + len(search):]
    out = new.replace("\n", "\r\n") if crlf else new
    replace_file(target, out.encode("utf-8", "surrogateescape"))
    return _changed(shown, text, new, at, search, replace)


def occurrences(text: str, search: str) -> list[int]:
    """Where `search` starts in `text`, non-overlapping, as str.count counts them."""
    starts, at = [], text.find(search)
    while at != -1:
        starts.append(at)
        at = text.find(search, at + len(search))
    return starts


def _span(text: str, at: int, piece: str) -> tuple[int, int]:
    """First and last line (1-based) of `piece` found at offset `at` of `text`."""
    first = text.count("\n", 0, at) + 1
    last = first + piece.count("\n") - (1 if piece.endswith("\n") else 0)
    return first, max(first, last)


def _changed(shown: str, old: str, new: str, at: int, search: str, replace: str) -> str:
    first, old_last = _span(old, at, search)
    old_lines = f"lines {first}-{old_last}" if old_last > first else f"line {first}"
    if replace == "":
        what, last = f"removed {old_lines}", first
    else:
        _, last = _span(new, at, replace)
        new_lines = f"lines {first}-{last}" if last > first else f"line {first}"
        what = f"changed {old_lines}" if new_lines == old_lines else \
            f"replaced {old_lines} (now {new_lines})"
    lines = new.split("\n")
    if new.endswith("\n"):
        lines.pop()
    low = max(1, first - CONTEXT_LINES)
    high = min(len(lines), last + CONTEXT_LINES, low + SHOWN_AFTER_EDIT - 1)
    view = numbered([(n, lines[n - 1]) for n in range(low, high + 1)]) if lines else "(the file is empty now)"
    return f"edited {shown}: {what}. The file around the change:\n{view}"


def _squash(text: str) -> str:
    """The text without any whitespace, to tell a difference in whitespace alone."""
    return "".join(text.split())


def no_match(shown: str, text: str, search: str) -> str:
    """The error for a search that is not in the file: the closest candidates and how they differ."""
    lines = text.split("\n")
    wanted = search.strip("\n").split("\n")
    head = f"the search text was not found in {shown}; nothing was changed."
    tips = []
    if all(LINE_NUMBER.match(line) for line in wanted if line.strip()):
        tips.append("Your search starts its lines with line numbers like '  12 | ': those come from "
                    "read_file and are not in the file; leave them out.")
    if "[redacted" in search:
        tips.append("The file holds a secret shown to you as [redacted]; choose a search that does "
                    "not include it.")
    found = _candidates(lines, wanted)
    if not found:
        body = " Nothing in the file resembles it: read the file again with read_file (it may have " \
               "changed) and copy the text exactly."
        return " ".join([head + body, *tips])
    parts = [head + " The closest text in the file:"]
    for start, size, score, spacing in found:
        block = [(n + 1, lines[n]) for n in range(start, min(start + size, len(lines)))]
        span = f"lines {start + 1}-{start + len(block)}" if len(block) > 1 else f"line {start + 1}"
        parts.append(f"{span}, which differ from your search only in whitespace (indentation, tabs "
                     f"or spaces, blank lines):" if spacing else
                     f"{span} ({round(score * 100)}% similar):")
        parts.append(numbered(block))
        diff = _first_difference(block, wanted)
        if diff:
            parts.append(diff)
    parts.append("Copy the text exactly as it is in the file (without the line numbers) and retry.")
    return "\n".join(parts + tips)


def _first_difference(block: list[tuple[int, str]], wanted: list[str]) -> str:
    for (number, have), want in zip(block, wanted):
        if have != want:
            return f"First difference at line {number}: the file has {have!r}, your search has {want!r}."
    return ""


def _candidates(lines: list[str], wanted: list[str]) -> list[tuple[int, int, float, bool]]:
    """Up to two windows of the file (start index, size, similarity, differs only in whitespace),
    the best first, not overlapping."""
    size = min(len(wanted), len(lines))
    target = "\n".join(wanted)
    squashed = _squash(target)
    spacing = []
    widths = sorted({max(1, size - 1), size, size + 1}, key=lambda w: w != size)
    if not squashed or squashed not in _squash("\n".join(lines)):
        widths = []
    for width in widths:
        for start in range(max(1, len(lines) - width + 1)):
            if _squash("\n".join(lines[start:start + width])) == squashed:
                spacing.append((start, width, 1.0, True))  # the score is not shown
                break
        if spacing:
            break
    if spacing:  # the text is there but for its whitespace: nothing else is worth showing
        return spacing
    starts = list(range(max(1, len(lines) - size + 1)))
    if len(starts) > QUICK_LIMIT:
        starts = _sharing_lines(lines, wanted, size, starts)
    matcher = difflib.SequenceMatcher(None, autojunk=False)
    matcher.set_seq2(target)

    def quick(start: int) -> float:
        matcher.set_seq1("\n".join(lines[start:start + size]))
        return matcher.quick_ratio()

    scored = []
    for start in heapq.nlargest(EXACT_COMPARES, starts, key=quick):
        matcher.set_seq1("\n".join(lines[start:start + size]))
        scored.append((start, size, matcher.ratio(), False))
    scored.sort(key=lambda c: -c[2])
    chosen: list[tuple[int, int, float, bool]] = []
    for cand in scored:
        if cand[2] < MIN_SIMILARITY or (chosen and cand[2] < chosen[0][2] * SECOND_SHOWN):
            break
        if all(cand[0] >= c[0] + c[1] or c[0] >= cand[0] + cand[1] for c in chosen):
            chosen.append(cand)
        if len(chosen) == 2:
            break
    return chosen


def _sharing_lines(lines: list[str], wanted: list[str], size: int, starts: list[int]) -> list[int]:
    """The window starts of a big file sharing the most words with the search."""
    words = set(WORD.findall("\n".join(wanted)))
    hits = [len(set(WORD.findall(line)) & words) for line in lines]
    sums, running = [], sum(hits[:size])
    for start in starts:
        sums.append((running, start))
        if start + size < len(hits):
            running += hits[start + size] - hits[start]
    return [start for _, start in heapq.nlargest(QUICK_LIMIT // 5, sums)]
