"""Failure records (tasks/failures/ID_attempt_N.md) and PROGRESS.md lines, written and read back for prompts."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from clude.secrets import KEY_SHAPES
from clude.team.board.layout import FAILURES_DIR, PROGRESS
from clude.team.board.tasks import Task
from clude.team.protocol.upstream import PROGRESS_HEADER  # what the file is for: not a note

ProgressKind = Literal["queued", "done", "done-unverified", "failed", "blocked", "note", "released"]
MAX_FAILURES = 20  # failure lines in a record
MAX_LINE = 300  # characters of one failure or progress line
MAX_VERDICT = 3000  # characters of the concise verdict in a record
MAX_AGENT_SUMMARY = 2000  # characters of what the agent said it tried
# A progress line: "- 2026-11-23 18:00Z done TASK-001 (a1): text"
PROGRESS_LINE = re.compile(r"- \d{4}-\d\d-\d\d \d\d:\d\dZ (?P<kind>[a-z-]+) (?P<task>\S+) \((?P<agent>[^)]*)\)")
# events a prompt does not need: what landed is in the code
_NOT_NOTES = ("queued", "done", "done-unverified", "released")


def failure_record(task: Task, attempt: int, *, agent: str, verdict_summary: str, failures: list[str],
                   agent_summary: str, log_path: str, when: datetime) -> str:
    """The Markdown failure record of one attempt: the verdict, the failures (file:line id — reason, the first
    MAX_FAILURES), what the agent said it tried (cut to about 2 KB), and where the full log is."""
    shown = [_one_line(f, MAX_LINE) for f in failures[:MAX_FAILURES] if f.strip()]
    if len(failures) > MAX_FAILURES:
        shown.append(f"… and {len(failures) - MAX_FAILURES} more (see the log)")
    verdict = _cut_middle(verdict_summary.strip(), MAX_VERDICT) or "(no verdict report)"
    said = _cut_middle(agent_summary.strip(), MAX_AGENT_SUMMARY) or "(the agent gave no summary)"
    parts = [
        f"# {task.id} attempt {attempt} of {task.max_attempts} failed: {task.title}",
        f"- agent: {agent}\n- when: {_stamp(when)}\n- log: {log_path}",
        "## Verdict\n\n" + _fenced(verdict),
        "## Failures\n\n" + ("\n".join(f"- {line}" for line in shown) if shown else "(none listed)"),
        "## What the agent tried\n\n" + said,
    ]
    return KEY_SHAPES.sub("[redacted]", "\n\n".join(parts)) + "\n"


def progress_line(kind: ProgressKind, task_id: str, text: str, *, agent: str, when: datetime) -> str:
    """One PROGRESS.md line: "- 2026-11-23 18:00Z done TASK-001 (a1): text" (text on one line, cut)."""
    text = _one_line(KEY_SHAPES.sub("[redacted]", text), MAX_LINE)
    head = f"- {_stamp(when)} {kind} {task_id} ({_one_line(agent, 80)})"
    return f"{head}: {text}" if text else head


def append_progress(checkout: Path, line: str) -> None:
    """Add one line to the end of the checkout's PROGRESS.md (made when missing)."""
    path = Path(checkout) / PROGRESS
    try:
        before = path.read_bytes()
    except FileNotFoundError:
        before = b""
    lead = "\n" if before and not before.endswith(b"\n") else ""
    with path.open("a", encoding="utf-8") as f:
        f.write(lead + " ".join(line.splitlines()).rstrip() + "\n")


def progress_notes(checkout: Path, limit_chars: int = 4000) -> str:
    """The notes, failures and blocked tasks of PROGRESS.md for a prompt (not its done and released lines,
    which the code itself shows), the newest at the end; older lines are cut to stay within limit_chars."""
    try:
        text = (Path(checkout) / PROGRESS).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    lines: list[str] = []
    for line in text.replace("\r\n", "\n").removeprefix(PROGRESS_HEADER).splitlines():
        m = PROGRESS_LINE.match(line)
        if m and m.group("kind") in _NOT_NOTES:
            continue
        if line.strip() or (lines and lines[-1].strip()):
            lines.append(line.rstrip())
    return _tail(lines, limit_chars, "earlier lines of PROGRESS.md")


def earlier_failures(checkout: Path, task_id: str, limit_chars: int = 6000) -> str:
    """This task's failure records, oldest first and newest last; the oldest are left out to stay
    within limit_chars ("" when there are none)."""
    folder = Path(checkout) / FAILURES_DIR
    pattern = re.compile(re.escape(task_id) + r"_attempt_([0-9]+)\.md")
    try:
        found = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := pattern.fullmatch(p.name)))
    except OSError:
        return ""
    records = []
    for _, path in found:
        try:
            records.append(path.read_text(encoding="utf-8", errors="replace").strip())
        except OSError:
            continue
    kept: list[str] = []
    size = 0
    for record in reversed(records):
        if kept and size + len(record) + 2 > limit_chars:
            break
        kept.insert(0, record)
        size += len(record) + 2
    left = len(records) - len(kept)
    out = "\n\n".join(kept)
    if len(out) > limit_chars:  # the newest record alone is too long: keep its head (verdict, failures)
        out = out[: max(limit_chars - 40, 0)].rstrip() + "\n… (the rest of this record is cut)"
    if left:
        out = f"({left} earlier failure record{'s' if left != 1 else ''} left out)\n\n" + out
    return out


def _stamp(when: datetime) -> str:
    if when.tzinfo is None:
        raise ValueError(f"when must be a timezone-aware datetime, not {when!r}")
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%MZ")


def _one_line(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _cut_middle(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    keep = limit // 2
    cut = len(text) - 2 * keep
    return f"{text[:keep].rstrip()}\n[… {cut} characters cut …]\n{text[-keep:].lstrip()}"


def _fenced(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}"


def _tail(lines: list[str], limit: int, what: str) -> str:
    while lines and not lines[-1].strip():
        lines.pop()
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        if size + len(line) + 1 > limit:
            break
        kept.insert(0, line)
        size += len(line) + 1
    if len(kept) < len(lines):
        if not kept and lines:  # one line longer than the limit: its end
            kept = ["…" + lines[-1][-max(limit - 1, 0):]]
        cut = len(lines) - len(kept)
        kept.insert(0, f"({cut} {what} cut)")
    return "\n".join(kept).strip("\n")
