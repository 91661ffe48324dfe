"""A worker queues its verified change: one atomic push that writes the change to QUEUE_REFS/<task>/<commit>
and marks the task's lock as queued on main (with the claim of the worker's next task, when it has one),
after checking that the change still merges with main. Then the worker moves on; the lander lands it."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from clude.gitcli import run_git
from clude.team.protocol.git import Repo
from clude.team.board.layout import lock_path
from clude.team.protocol.lease import lock_on_disk, same_holder
from clude.team.board.locks import Lock, Queued, render_lock
from clude.team.board.records import append_progress, progress_line
from clude.team.protocol.sync import UpstreamRejected, race_backoff

# Where queued changes live on the upstream: one ref per change, made once, never moved.
QUEUE_REFS = "refs/clude/queue"
MAX_RACES = 60


def queue_ref(task_id: str, commit: str) -> str:
    return f"{QUEUE_REFS}/{task_id}/{commit}"


def conflicts(repo: Repo, commit: str, onto: str) -> list[str]:
    """The files where `commit`'s change does not merge into `onto` (a three-way merge on their merge
    base, nothing checked out); [] when it merges cleanly."""
    out = run_git(repo.path, "merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", onto, commit,
                  ok=(0, 1))
    if out.returncode == 0:
        return []
    names = [os.fsdecode(n) for n in out.stdout.split(b"\0")[1:] if n]
    return names or ["(unknown files)"]


@dataclass(frozen=True)
class Enqueued:
    status: Literal["queued", "conflict", "lost"]
    detail: str = ""  # conflict: the files; lost: who holds the lock now


def enqueue(repo: Repo, lock: Lock, commit: str, queued: Queued, *,
            claim_next: Callable[[Path], str] = lambda checkout: "",
            sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None) -> Enqueued:
    """Queue `commit` (in `repo`) for `lock`'s task. `claim_next(checkout)` may write the lock of the
    worker's next task into the checkout and returns words for the commit message ("" for none)."""
    rng = rng or random.Random()
    marked = lock.model_copy(update={"queued": queued})
    for race in range(1, MAX_RACES + 1):
        repo.fetch()
        main = repo.reset_to_upstream()
        current = lock_on_disk(repo.path, lock.task)
        if current is None or not same_holder(current, lock):
            who = f"{current.agent} since {current.claimed_at:%H:%M:%S}" if current else "nobody"
            return Enqueued("lost", f"the lock of {lock.task} is held by {who}: our lease ran out")
        files = conflicts(repo, commit, main)
        if files:
            return Enqueued("conflict", ", ".join(files))
        (repo.path / lock_path(lock.task)).write_text(render_lock(marked), encoding="utf-8")
        append_progress(repo.path, progress_line("queued", lock.task, f"verified by its acceptance tests, waiting "
                                                 f"in the merge queue ({commit[:12]})", agent=lock.agent,
                                                 when=queued.at))
        then = claim_next(repo.path)
        repo.commit_all(f"queue {lock.task} (agent {lock.agent}, attempt {lock.attempt}){then}")
        pushed = repo.push(f"{commit}:{queue_ref(lock.task, commit)}")
        if pushed.status == "ok":
            return Enqueued("queued")
        if pushed.status == "rejected":
            raise UpstreamRejected(f"the upstream refused to queue {lock.task}: {pushed.message}",
                                   stderr=pushed.message)
        if race < MAX_RACES:
            sleep(race_backoff(race, rng))
    raise UpstreamRejected(f"gave up queueing {lock.task} after {MAX_RACES} lost push races")
