"""What a person does to the board's tasks besides adding them: retry a failed task, block one, unblock
it; and a task added with the checks `task add` makes. One push each, through a clone of the upstream
(admin.view). The command line and the dashboard (clude/web) both call these: one implementation."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from pydantic import ValidationError

from clude.config.settings import Settings
from clude.team.board.board import read_board
from clude.team.board.layout import task_path
from clude.team.board.records import append_progress, progress_line
from clude.team.board.tasks import Task, parse_task, render_task
from clude.team.protocol.admin import DEPENDENCY, add_task, mark_dependency_problems, tests_detected
from clude.team.protocol.git import Repo
from clude.team.protocol.sync import update_upstream

MAX_ATTEMPTS = 100  # a task's attempts in all (its file's max_attempts allows no more)
BLOCKED_BY_HAND = "blocked by hand"  # the start of the reason of a task blocked with `task block`


class SteerError(ValueError):
    """The action does not apply to the task as the upstream has it (the message says why and what to do)."""


def new_task(repo: Repo, settings: Settings, fields: dict) -> tuple[Task, list[str]]:
    """`task add`: `fields` checked (a known role; acceptance tests, or tests in the upstream's tree to
    verify with) and the task added in one push; the task and the dependency check's notes."""
    role = fields.get("role")
    if role:
        from clude.team.work.roles import role_names
        known = role_names(Path(settings.team.roles_dir) if settings.team.roles_dir else None)
        if role not in known:
            raise SteerError(f"unknown role {role!r}: the roles are {', '.join(known)} (or add {role}.md to "
                             "[team] roles_dir)")
    if not fields.get("tests") and settings.team.verify == "tests" and not tests_detected(repo.path, settings,
                                                                                          os.environ):
        from clude.harness import frameworks
        looked = ", ".join(adapter.name for adapter in frameworks.adapters())
        raise SteerError(f"no tests were detected in the upstream's tree (looked for {looked}; [test] command "
                         "is not set), so a task without tests could not be verified. Give the task its "
                         "acceptance tests (--tests SELECTOR: the tests that show it done), or set `[team] "
                         "verify = \"none\"` in clude.toml to land tasks unverified (shown as done-unverified).")
    fields = {"max_attempts": settings.team.max_attempts, **{k: v for k, v in fields.items() if v is not None}}
    try:
        return add_task(repo, fields)
    except ValidationError as error:
        raise SteerError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())) from None


def retry_task(repo: Repo, task_id: str, *, attempts: int = 1, who: str, lease_s: float) -> str:
    """A failed task open again with `attempts` more attempts (its failure records stay: they are what
    the next agent reads); what was done, in words."""
    if attempts < 1:
        raise SteerError(f"attempts must be at least 1, not {attempts}")

    def change(checkout: Path, task: Task, state: str, used: int) -> tuple[Task, str]:
        if state != "failed":
            raise SteerError(f"{task_id} is {state}, not failed: only a failed task is retried"
                             + (" (unblock a blocked one: clude team task unblock)" if state == "blocked" else ""))
        if used + attempts > MAX_ATTEMPTS:
            raise SteerError(f"{task_id} has used {used} attempts: at most {MAX_ATTEMPTS - used} more can be given")
        more = "1 more attempt" if attempts == 1 else f"{attempts} more attempts"
        return task.model_copy(update={"status": "open", "max_attempts": used + attempts}), f"retried with {more}"

    return _steer(repo, task_id, change, who=who, lease_s=lease_s)


def block_task(repo: Repo, task_id: str, reason: str, *, who: str, lease_s: float) -> str:
    """An open or failed task blocked with `reason`: no worker takes it until it is unblocked."""
    reason = " ".join(reason.split())
    if not reason:
        raise SteerError("give the reason the task is blocked (it is shown on the board)")

    def change(checkout: Path, task: Task, state: str, used: int) -> tuple[Task, str]:
        if state in ("done", "claimed"):
            raise SteerError(f"{task_id} is {state}: " + ("it is finished" if state == "done" else
                             "a worker holds it now; block it once its attempt has ended, or stop that worker"))
        why = f"{BLOCKED_BY_HAND} ({who}): {reason}"
        return task.model_copy(update={"status": "blocked", "blocked_reason": why}), f"blocked: {reason}"

    return _steer(repo, task_id, change, who=who, lease_s=lease_s)


def unblock_task(repo: Repo, task_id: str, *, who: str, lease_s: float) -> str:
    """A blocked task open again, its notes of failing at start forgotten. A task blocked by its
    dependencies opens by itself once they can be met: that one is refused, with the dependency named."""

    def change(checkout: Path, task: Task, state: str, used: int) -> tuple[Task, str]:
        if task.status != "blocked":
            raise SteerError(f"{task_id} is {state}, not blocked" + (" (retry a failed task: clude team task "
                                                                   "retry)" if state == "failed" else ""))
        if (task.blocked_reason or "").startswith(DEPENDENCY):
            raise SteerError(f"{task_id} is blocked by its dependencies ({task.blocked_reason[len(DEPENDENCY):]})"
                             ": it opens by itself once they can be met")
        return task.model_copy(update={"status": "open", "blocked_reason": None, "failed_at_start": []}), "unblocked"

    return _steer(repo, task_id, change, who=who, lease_s=lease_s)


def _steer(repo: Repo, task_id: str, change, *, who: str, lease_s: float) -> str:
    """Apply `change(checkout, task, state, attempts used) -> (task, what)` to one task in one push, the
    dependency check after it and a PROGRESS.md line; what was done."""
    done: list[str] = []

    def edit(checkout: Path) -> str:
        now = datetime.now(timezone.utc)
        board = read_board(checkout, now=now, lease_s=lease_s, lock_written_at=repo.commit_time)
        item = board.tasks.get(task_id)
        if item is None:
            raise SteerError(f"no task {task_id!r} on the board" + (
                f" (the tasks are {', '.join(list(board.tasks)[:10])}{', ...' if len(board.tasks) > 10 else ''})"
                if board.tasks else ""))
        file = checkout / task_path(task_id)
        task, what = change(checkout, parse_task(file.read_text(encoding="utf-8"), task_path(task_id)),
                            item.state, item.attempts)
        file.write_text(render_task(task), encoding="utf-8")
        notes = mark_dependency_problems(checkout)
        append_progress(checkout, progress_line("note", task_id, f"{what} (by {who})", agent=who, when=now))
        done[:] = [f"{task_id} {what}" + "".join(f"; {n}" for n in notes)]
        return f"{task_id} {what} (by {who})"

    update_upstream(repo, edit)
    return done[0]
