"""The board read from a checkout: tasks, locks and attempts used; task states, dependency problems, claim order."""

from __future__ import annotations

import graphlib
import re
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Literal

from clude.team.board.layout import FAILURES_DIR, LOCKS_DIR, TASKS_DIR
from clude.team.board.locks import Lock, LockFileError, lease_end, parse_lock, unreadable_lock_live
from clude.team.board.tasks import Task, TaskFileError, parse_task

TaskState = Literal["open", "claimed", "done", "failed", "blocked"]
STATES: tuple[str, ...] = ("open", "claimed", "done", "failed", "blocked")
SETTLED = frozenset({"done", "failed", "blocked"})
# How a task landed without any verification is shown to people (its state stays "done"): never plainly
# done, so nobody takes its work for tested.
UNVERIFIED = "done-unverified"
# How a claimed task whose change waits in the merge queue is shown (its state stays "claimed").
QUEUED = "queued"
DEFAULT_ROLE = "implementer"  # what a worker without a role takes, besides tasks without a role
_RECORD = re.compile(r"(?P<id>.+)_attempt_(?P<n>[0-9]+)\.md")


@dataclass
class BoardTask:
    """One task as the board sees it: its file, attempts used, its lock, and the state that follows."""

    task: Task
    path: str  # relative POSIX path of the task file
    attempts: int  # failure records found
    lock: Lock | None
    lock_unreadable: bool
    state: TaskState
    reason: str | None = None  # why blocked or failed
    lease_end: datetime | None = None  # when its readable lock's lease ends (locks.lease_end); None when queued

    @property
    def queued(self) -> bool:
        """Its change waits in the merge queue (claimed until the lander lands it or sends it back)."""
        return self.lock is not None and self.lock.queued is not None


@dataclass
class Board:
    """Every readable task by id, and the files that could not be used ("tasks/TASK-007.md: ...")."""

    tasks: dict[str, BoardTask] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def read_board(checkout: Path, *, now: datetime, lease_s: float,
               lock_written_at: Callable[[str], float | None] = lambda rel: None) -> Board:
    """Read tasks/*.md, current_tasks/*.lock and tasks/failures/ of a checkout. Broken files are listed in
    `problems` and skipped. `lock_written_at(relative path)` gives the time (epoch seconds) a lock file was
    last written, e.g. its last commit's time: an unreadable lock is held until `lease_s` after it, and a
    lock whose lease_until lies further ahead than that until then (asked only for such locks)."""
    checkout = Path(checkout)
    problems: list[str] = []
    tasks: dict[str, tuple[Task, str]] = {}
    broken: set[str] = set()
    for file in _files(checkout / TASKS_DIR, ".md"):
        rel = f"{TASKS_DIR}/{file.name}"
        if file.name.lower() == "readme.md":
            continue
        try:
            task = parse_task(file.read_text(encoding="utf-8"), rel)
        except (TaskFileError, OSError, UnicodeDecodeError) as err:
            problems.append(str(err) if isinstance(err, TaskFileError) else f"{rel}: cannot be read: {err}")
            broken.add(file.name[:-3])
            continue
        tasks[task.id] = (task, rel)

    attempts: dict[str, int] = {}
    for file in _files(checkout / FAILURES_DIR, ".md"):
        if m := _RECORD.fullmatch(file.name):
            attempts[m.group("id")] = attempts.get(m.group("id"), 0) + 1

    locks: dict[str, Lock | None] = {}  # None: unreadable
    for file in _files(checkout / LOCKS_DIR, ".lock"):
        rel, task_id = f"{LOCKS_DIR}/{file.name}", file.name[: -len(".lock")]
        try:
            lock = parse_lock(file.read_text(encoding="utf-8"))
            if lock.task != task_id:
                raise LockFileError(f"it names task {lock.task!r}, not {task_id!r}")
            locks[task_id] = lock
        except (LockFileError, OSError, UnicodeDecodeError) as err:
            problems.append(f"{rel}: unreadable lock (held until its lease would have ended): {err}")
            locks[task_id] = None
        if task_id not in tasks and task_id not in broken:
            problems.append(f"{rel}: lock of a task that does not exist")

    board = Board(problems=problems)
    effective: dict[str, Task] = {}
    for task_id, (task, rel) in sorted(tasks.items()):
        used = attempts.get(task_id, 0)
        lock = locks.get(task_id)
        unreadable = task_id in locks and lock is None
        lock_rel = f"{LOCKS_DIR}/{task_id}.lock"
        queued = lock is not None and lock.queued is not None  # held until the lander ends it: no lease
        ends = lease_end(lock, now, lease_s, partial(lock_written_at, lock_rel)) if lock and not queued else None
        state: TaskState
        reason = None
        if task.status != "open":
            state = task.status
            reason = task.blocked_reason if task.status == "blocked" else None
            if task.status == "failed":
                reason = f"failed after {used} attempt{'s' if used != 1 else ''}" if used else "marked failed"
        elif used >= task.max_attempts:
            state, reason = "failed", f"used all {task.max_attempts} attempts"
        elif queued or (ends is not None and ends > now) or (unreadable and unreadable_lock_live(
                lock_written_at(lock_rel), now, lease_s)):
            state = "claimed"
        else:
            state = "open"
        board.tasks[task_id] = BoardTask(task, rel, used, lock, unreadable, state, reason, ends)
        effective[task_id] = task if state != "failed" else task.model_copy(update={"status": "failed"})

    for task_id, why in dependency_problems(effective, broken=broken).items():
        item = board.tasks[task_id]
        if item.state == "open":  # a claimed task keeps its holder; the state follows when it is released
            item.state, item.reason = "blocked", why
    return board


def dependency_problems(tasks: Mapping[str, Task], *, broken: Collection[str] = ()) -> dict[str, str]:
    """For each task not yet done or failed (open or blocked) whose dependencies can never be met, why:
    a dependency that does not exist (or whose task file is broken, ids in `broken`), a dependency cycle,
    or a dependency that failed or is blocked — also through other tasks ("depends on TASK-004, which is
    blocked"). To re-check tasks blocked by an earlier check, pass them as open."""
    waiting = {i: t for i, t in tasks.items() if t.status in ("open", "blocked")}
    reasons: dict[str, str] = {}
    for task_id, task in waiting.items():
        for dep in task.deps:
            if dep in broken and dep not in tasks:
                reasons[task_id] = f"depends on {dep}, whose task file is broken"
            elif dep not in tasks:
                reasons[task_id] = f"depends on {dep}, which does not exist"
            else:
                continue
            break

    graph = {i: [d for d in t.deps if d in waiting] for i, t in sorted(waiting.items())}
    while (cycle := _find_cycle(graph)) is not None:
        body = cycle[:-1]
        for k, member in enumerate(body):
            turn = body[k:] + body[:k]
            reasons.setdefault(member, "dependency cycle: " + " -> ".join(turn + turn[:1]))
        for member in body:  # every member is blocked; look for the next cycle without them
            del graph[member]
        graph = {i: [d for d in deps if d in graph] for i, deps in graph.items()}

    for task_id, task in waiting.items():
        if task_id not in reasons:
            for dep in task.deps:
                status = tasks[dep].status if dep in tasks else None
                if status in ("failed", "blocked"):
                    which = "failed" if status == "failed" else "is blocked"
                    reasons[task_id] = f"depends on {dep}, which {which}"
                    break

    dependents: dict[str, list[str]] = {}
    for task_id in sorted(waiting):
        for dep in waiting[task_id].deps:
            if dep in waiting:
                dependents.setdefault(dep, []).append(task_id)
    queue = deque(sorted(reasons))
    while queue:
        dep = queue.popleft()
        for task_id in dependents.get(dep, []):
            if task_id not in reasons:
                reasons[task_id] = f"depends on {dep}, which is blocked"
                queue.append(task_id)
    return dict(sorted(reasons.items(), key=lambda item: task_sort_key(item[0])))


def role_matches(task_role: str | None, worker_role: str | None) -> bool:
    """A task without a role suits any worker; a worker without a role takes only tasks without one
    or for implementers; otherwise the roles must be the same."""
    if task_role is None:
        return True
    return task_role == (worker_role or DEFAULT_ROLE)


def claimable(board: Board, *, role: str | None, now: datetime) -> list[str]:
    """The ids a worker with `role` may claim, best first (priority high to low, then id): open — or
    claimed under a readable lock whose lease (as read_board judged it) has ended by `now` — with every
    dependency done, attempts left and a matching role."""
    out = []
    for task_id, item in board.tasks.items():
        task = item.task
        free = item.state == "open" or (
            item.state == "claimed" and item.lease_end is not None and item.lease_end <= now)
        if not free or task.status != "open" or item.attempts >= task.max_attempts:
            continue
        if not role_matches(task.role, role):
            continue
        if all(dep in board.tasks and board.tasks[dep].state == "done" for dep in task.deps):
            out.append(task_id)
    return sorted(out, key=lambda i: (-board.tasks[i].task.priority, task_sort_key(i)))


def all_settled(board: Board) -> bool:
    """Whether every task is done, failed or blocked (nothing open or claimed): a team run can end."""
    return all(item.state in SETTLED for item in board.tasks.values())


def shown_state(item: BoardTask) -> str:
    """The task's state as shown to people: QUEUED for a claimed task whose change waits in the merge
    queue, UNVERIFIED for a task done without verification."""
    if item.state == "claimed" and item.queued:
        return QUEUED
    return UNVERIFIED if item.state == "done" and not item.task.verified else item.state


def attempts_used(item: BoardTask) -> int:
    """The attempts a task has used: its failed ones (item.attempts, its failure records), and the one
    that landed it (done) or is under way (claimed, queued). An open task nobody has failed has used none."""
    return item.attempts + (1 if item.state in ("done", "claimed") else 0)


def merge_queue(board: Board) -> list[BoardTask]:
    """The tasks whose changes wait in the merge queue, oldest first (the order they land in)."""
    waiting = [item for item in board.tasks.values() if item.state == "claimed" and item.queued]
    return sorted(waiting, key=lambda item: (item.lock.queued.at, item.task.id))


def counts(board: Board) -> dict[str, int]:
    """How many tasks are in each shown state (every state listed, zeros too; "claimed" counts the tasks
    being worked on, QUEUED those waiting to land; "done" the verified ones, UNVERIFIED the others)."""
    out = dict.fromkeys((*STATES[:2], QUEUED, STATES[2], UNVERIFIED, *STATES[3:]), 0)
    for item in board.tasks.values():
        out[shown_state(item)] += 1
    return out


def task_sort_key(task_id: str) -> tuple:
    """Ids in natural order: TASK-2 before TASK-10, TASK-999 before TASK-1000."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"([0-9]+)", task_id) if p)


def _files(folder: Path, suffix: str) -> list[Path]:
    try:
        entries = sorted(folder.iterdir())
    except OSError:  # no such folder yet
        return []
    return [p for p in entries if p.name.endswith(suffix) and not p.name.startswith(".") and p.is_file()]


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as err:
        return list(reversed(err.args[1]))  # graphlib walks dependents; reversed: each depends on the next
    return None
