"""What the end of an attempt writes into a checkout of main, for the commit that settles it: the task
done (its lock removed, a PROGRESS line), a failed attempt (its record, the lock removed, the task failed
when it used its last attempt) or the task given back untouched."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress
from datetime import datetime
from pathlib import Path

from clude.team.board.layout import failure_path, lock_path, task_path
from clude.team.board.overlap import learned
from clude.team.board.records import append_progress, progress_line
from clude.team.board.tasks import parse_task, render_task

# Notes that a task's agent ended before changing anything, each by a worker doing other tasks fine
# (team/work/blame.py), that block the task: it fails whoever runs it.
START_FAILURES_TO_BLOCK = 2


def _update_task(checkout: Path, task_id: str, **update) -> None:
    file = checkout / task_path(task_id)
    task = parse_task(file.read_text(encoding="utf-8"), task_path(task_id))
    file.write_text(render_task(task.model_copy(update=update)), encoding="utf-8")


def write_done(checkout: Path, task_id: str, text: str, *, agent: str, when: datetime,
               unverified: bool = False) -> None:
    _update_task(checkout, task_id, status="done", **({"verified": False} if unverified else {}))
    (checkout / lock_path(task_id)).unlink(missing_ok=True)
    append_progress(checkout, progress_line("done-unverified" if unverified else "done", task_id, text,
                                            agent=agent, when=when))


def write_failure(checkout: Path, task_id: str, attempt: int, record: str, reason: str, *, title: str,
                  max_attempts: int, agent: str, when: datetime, touched: Iterable[str] = ()) -> bool:
    """The record of a failed attempt, the files its change `touched` learned as the task's (overlap.py);
    True when it was the task's last (the task is failed)."""
    (checkout / lock_path(task_id)).unlink(missing_ok=True)
    path = checkout / failure_path(task_id, attempt)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(record, encoding="utf-8", errors="backslashreplace")
    used = len(list(path.parent.glob(f"{task_id}_attempt_*.md")))
    try:
        noted = parse_task((checkout / task_path(task_id)).read_text(encoding="utf-8"),
                           task_path(task_id)).failed_at_start
    except (OSError, ValueError):  # a task file gone or broken: the record is written all the same
        noted = []
    if noted:  # its agent ran and its work was judged: the notes of dying at start are old
        _update_task(checkout, task_id, failed_at_start=[])
    touched = list(touched)
    if touched:
        with suppress(OSError, ValueError):
            planned = parse_task((checkout / task_path(task_id)).read_text(encoding="utf-8"), task_path(task_id)).files
            if learned(planned, touched) != planned:
                _update_task(checkout, task_id, files=learned(planned, touched))
    if used < max_attempts:
        return False
    _update_task(checkout, task_id, status="failed")
    append_progress(checkout, progress_line("failed", task_id, f"{title} — failed {used} attempts; last: {reason}",
                                            agent=agent, when=when))
    return True


def write_released(checkout: Path, task_id: str, why: str, *, agent: str, when: datetime) -> None:
    """The task goes back untouched (no attempt used), with a PROGRESS line saying why."""
    (checkout / lock_path(task_id)).unlink(missing_ok=True)
    append_progress(checkout, progress_line("released", task_id, why, agent=agent, when=when))


def write_start_failure(checkout: Path, task_id: str, reason: str, *, agent: str, when: datetime) -> bool:
    """A note on an open task that its agent ended before changing anything on `agent`, a worker doing
    other tasks fine; True when the notes now block the task (team/work/blame.py), with the reason."""
    file = checkout / task_path(task_id)
    if not file.exists():
        return False
    task = parse_task(file.read_text(encoding="utf-8"), task_path(task_id))
    if task.status != "open":
        return False
    noted = [*task.failed_at_start, agent]
    if len(noted) < START_FAILURES_TO_BLOCK:
        _update_task(checkout, task_id, failed_at_start=noted)
        return False
    why = (f"its agent ends before changing anything on workers that do other tasks fine "
           f"({', '.join(dict.fromkeys(noted))}): {reason}")
    _update_task(checkout, task_id, failed_at_start=noted, status="blocked", blocked_reason=why)
    append_progress(checkout, progress_line("blocked", task_id, f"{task.title} — {why}", agent=agent, when=when))
    return True
