"""The team's repository protocol, as one worker speaks it: look at the board, claim a task, keep its
lease, queue its change (with the next claim), record a failed attempt, give a task back. Each is one
push to the upstream's main that lands whole or is retried; landing queued changes is the lander's
(team/queue). The worker (team/work) decides when; this says how."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable, Collection
from datetime import datetime
from pathlib import Path

from clude.team.board.board import Board, BoardTask, all_settled, claimable, read_board
from clude.team.board.books import write_failure, write_start_failure
from clude.team.board.layout import lock_path
from clude.team.board.locks import Lock, Queued, new_lock, render_lock
from clude.team.board.overlap import apart
from clude.team.protocol.git import Repo
from clude.team.protocol.lease import LeaseKeeper, lock_on_disk, same_holder
from clude.team.protocol.sync import update_upstream
from clude.team.protocol.turns import in_turn
from clude.team.queue.enqueue import Enqueued, enqueue

CLAIM_SPREAD = 16  # equal-priority tasks a worker picks among at random, to spread the claims
Claimed = tuple[BoardTask, Lock]


def ours_to_end(checkout: Path, lock: Lock) -> bool:
    """Whether `lock` still holds its task in this checkout of main and this worker may end the hold:
    not when someone else holds it now, nor when its change is queued (the lander ends that hold)."""
    current = lock_on_disk(checkout, lock.task)
    return current is not None and same_holder(current, lock) and current.queued is None


class TeamRepository:
    """One worker's side of the protocol, through its two clones: `control` for the board (claims,
    renewals, records, releases) and `land` (its checked changes, queued from there)."""

    def __init__(self, control: Repo, land: Repo, *, agent: str, host: str, role: str | None, lease_s: float,
                 clock: Callable[[], datetime], state_dir: Path, rng: random.Random, keep_apart: bool = True):
        self.control, self.land, self.agent, self.host, self.role = control, land, agent, host, role
        self.keep_apart = keep_apart  # [team] overlap = "apart": overlapping tasks are not worked on at once
        self.lease_s, self.clock, self.state_dir, self.rng = lease_s, clock, state_dir, rng
        # CONTROL_GUARD: the control clone is used by the worker's loop and by its lease keeper; one at a time
        self.guard = threading.Lock()
        # HELD: by task, every lock this worker wrote for a claim (from the moment it is written, before
        # its push may land) until its hold ends here (released, failed, queued for the lander). A worker
        # stopped anywhere, even between a claim's push and the caller learning of it, gives them all back
        # (release() ends only a hold that is still there and still this worker's: a stale one is a no-op).
        self.held: dict[str, Lock] = {}

    # the board -------------------------------------------------------------------------------
    def board(self, checkout: Path | None = None) -> Board:
        repo = self.land if checkout is not None and checkout == self.land.path else self.control
        return read_board(checkout or self.control.path, now=self.clock(), lease_s=self.lease_s,
                          lock_written_at=repo.commit_time)

    def look(self) -> Board:
        """The board as the upstream has it: fetched only when its main moved since the last look."""
        with self.guard:
            self.control.refresh()
            return self.board()

    # claiming --------------------------------------------------------------------------------
    def claim(self, avoid: Collection[str] = (), *, wait: bool = True, strict: bool = False) -> Claimed | str:
        """Claim the best task this worker may take: (task, lock), or "settled" (nothing is left to do)
        or "idle" (nothing to take now). Tasks in `avoid` only when no other is ready. `wait=False`:
        "busy" when another worker of this machine has the turn at the upstream now."""
        board = self.look()
        if all_settled(board):
            return "settled"
        if not claimable(board, role=self.role, now=self.clock()):
            return "idle"
        picked: list = []

        def change(checkout: Path) -> str | None:
            picked[:] = [self.take(checkout, avoid=avoid, strict=strict)]
            if isinstance(picked[0], str):
                return None
            task, lock = picked[0]
            broke = f", breaking the expired lock of {task.lock.agent}" if task.lock else ""
            return f"claim {task.task.id} (agent {self.agent}, attempt {lock.attempt}){broke}"

        def claim() -> None:
            with self.guard:
                update_upstream(self.control, change)

        if not in_turn(self.state_dir, claim, wait=wait)[0]:
            return "busy"
        return picked[0] if picked else "idle"

    def take(self, checkout: Path, *, exclude: str | None = None, avoid: Collection[str] = (),
             strict: bool = False) -> Claimed | str:
        """In a checkout of main about to be pushed: the lock of the best claimable task written (the
        highest priority; among several of it, one of the first CLAIM_SPREAD at random, so workers racing
        for the board do not all push for the same task). "settled" or "idle" when there is none.
        `exclude`: never that task; `avoid`: those tasks only when no other is ready; with `keep_apart`, a
        task whose files overlap a claimed task's only when no other is ready (board/overlap.py), and
        never when `strict` (a task taken for later: its agent would start from a main that lacks the
        overlapping change)."""
        board = self.board(checkout)
        if all_settled(board):
            return "settled"
        ready = [t for t in claimable(board, role=self.role, now=self.clock()) if t != exclude]
        ready = [t for t in ready if t not in avoid] or ready
        if self.keep_apart:
            ready = apart(board, ready, strict=strict)
        if not ready:
            return "idle"
        top = board.tasks[ready[0]].task.priority
        same = [t for t in ready[:CLAIM_SPREAD] if board.tasks[t].task.priority == top]
        task = board.tasks[same[self.rng.randrange(len(same))]]
        lock = new_lock(task.task.id, self.agent, self.host, os.getpid(), task.attempts + 1, self.clock(),
                        self.lease_s)
        path = checkout / lock_path(task.task.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_lock(lock), encoding="utf-8")
        self.held[task.task.id] = lock
        return task, lock

    def keeper(self, lock: Lock, on_error: Callable[[str], None]) -> LeaseKeeper:
        """What renews `lock`'s lease while its agent works (a context manager)."""
        return LeaseKeeper(self.control, self.guard, lock, self.lease_s, self.clock, on_error=on_error)

    # the end of an attempt -------------------------------------------------------------------
    def queue(self, lock: Lock, commit: str, queued: Queued, *, claim_next: bool,
              avoid: Collection[str] = ()) -> tuple[Enqueued, Claimed | None]:
        """Queue `commit` for the merge queue, and in the same push claim this worker's next task when
        `claim_next`: the outcome, and the task claimed."""
        following: list = []

        def then(checkout: Path) -> str:
            following.clear()
            if not claim_next:
                return ""
            taken = self.take(checkout, exclude=lock.task, avoid=avoid, strict=True)
            if isinstance(taken, str):
                return ""
            following.append(taken)
            return f"; claim {taken[0].task.id} (attempt {taken[1].attempt})"

        result = in_turn(self.state_dir, lambda: enqueue(self.land, lock, commit, queued, claim_next=then))[1]
        if result.status in ("queued", "lost"):
            self.held.pop(lock.task, None)  # the lander's now, or someone else's
        return result, (following[0] if result.status == "queued" and following else None)

    def record_failure(self, task: BoardTask, lock: Lock, record: str, reason: str,
                       touched: Collection[str] = ()) -> bool | None:
        """The failed attempt's record, the lock removed (the task failed when it was its last attempt),
        the files its change `touched` added to the task's: True when it was the last, None when the
        lock is no longer this worker's to end."""
        final: list[bool] = []

        def change(checkout: Path) -> str | None:
            if not ours_to_end(checkout, lock):
                return None
            final[:] = [write_failure(checkout, task.task.id, lock.attempt, record, reason, title=task.task.title,
                                      max_attempts=task.task.max_attempts, agent=self.agent, when=self.clock(),
                                      touched=touched)]
            return f"attempt {lock.attempt} of {task.task.id} failed: {reason[:100]} (agent {self.agent})"

        with self.guard:
            update_upstream(self.control, change)
        self.held.pop(lock.task, None)
        return final[0] if final else None

    def release(self, lock: Lock, *, start_failure: str | None = None) -> bool:
        """Give the task back untouched (no record, no attempt used), when the lock is still ours;
        `start_failure`: with a note that its agent ended before changing anything on this worker, which
        does other tasks fine (board/books.py). True when that note blocked the task."""
        blocked: list[bool] = []

        def change(checkout: Path) -> str | None:
            if not ours_to_end(checkout, lock):
                return None
            (checkout / lock_path(lock.task)).unlink()
            blocked[:] = [start_failure is not None and write_start_failure(
                checkout, lock.task, start_failure, agent=self.agent, when=self.clock())]
            return f"release {lock.task} untouched (agent {self.agent})" + (
                "; blocked: it fails at start on workers doing other tasks fine" if blocked[0] else "")

        with self.guard:
            update_upstream(self.control, change)
        self.held.pop(lock.task, None)
        return bool(blocked and blocked[0])

    def note_start_failures(self, failures: list[tuple[str, str]]) -> list[str]:
        """Notes on open tasks (not held by this worker) that their agent ended before changing anything
        here, now that this worker has shown it works: the tasks the notes blocked."""
        blocked: list[str] = []

        def change(checkout: Path) -> str | None:
            blocked.clear()
            for task_id, reason in failures:
                if write_start_failure(checkout, task_id, reason, agent=self.agent, when=self.clock()):
                    blocked.append(task_id)
            tasks = ", ".join(t for t, _ in failures)
            return f"note {tasks}: failed at start on agent {self.agent}, which works" + (
                f"; blocked {', '.join(blocked)}" if blocked else "")

        with self.guard:
            update_upstream(self.control, change)
        return blocked
