"""A worker queues its verified change: one atomic push that appends the change to the queue's ref
(QUEUE_REF, a chain of commits each holding one change as its second parent: one ref on the upstream
however many changes were queued) and marks the task's lock as queued on main (with the claim of the
worker's next task, when it has one), after checking that the change still merges with main. Then the
worker moves on; the lander lands it."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from clude.team.protocol import objects
from clude.team.protocol.git import Repo
from clude.team.board.layout import lock_path
from clude.team.protocol.lease import lock_on_disk, same_holder
from clude.team.board.locks import Lock, Queued, render_lock
from clude.team.board.records import append_progress, progress_line
from clude.team.protocol.sync import UpstreamRejected, update_upstream

# Where queued changes live on the upstream: a chain that only grows by fast-forwards (each link's first
# parent the link before, its second the change), so no change is ever unreachable there and no ref is
# ever deleted. Which changes still wait is said by the queued locks on main, not by the chain.
QUEUE_REF = "refs/clude/queued"
# Every ref of clude's own on the upstream (the queue, the landing lease, and the per-change refs of
# earlier versions), fetched in one go: a glob, so that none existing yet is no error.
CLUDE_FETCH = "+refs/clude/*:refs/clude/*"


def chain_link(repo: Repo, commit: str, task: str) -> str:
    """A new link of the queue's chain on top of its tip as last fetched, holding `commit`."""
    tip = repo.rev(f"{QUEUE_REF}^{{commit}}")
    return repo.new_commit(repo.empty_tree(), [*([tip] if tip else []), commit], f"queue {task} {commit}")


def conflicts(repo: Repo, commit: str, onto: str) -> list[str]:
    """The files where `commit`'s change does not merge into `onto` (a three-way merge on their merge
    base, nothing checked out); [] when it merges cleanly."""
    return objects.conflicts(repo.objects(), onto, commit)[1]


@dataclass(frozen=True)
class Enqueued:
    status: Literal["queued", "conflict", "lost"]
    detail: str = ""  # conflict: the files; lost: who holds the lock now


def enqueue(repo: Repo, lock: Lock, commit: str, queued: Queued, *,
            claim_next: Callable[[Path], str] = lambda checkout: "",
            sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None) -> Enqueued:
    """Queue `commit` (in `repo`) for `lock`'s task. `claim_next(checkout)` may write the lock of the
    worker's next task into the checkout and returns words for the commit message ("" for none)."""
    marked = lock.model_copy(update={"queued": queued})
    declined: list[Enqueued] = []

    def change(checkout: Path) -> str | None:
        declined.clear()
        current = lock_on_disk(checkout, lock.task)
        if current is None or not same_holder(current, lock):
            who = f"{current.agent} since {current.claimed_at:%H:%M:%S}" if current else "nobody"
            declined.append(Enqueued("lost", f"the lock of {lock.task} is held by {who}: our lease ran out"))
            return None
        files = conflicts(repo, commit, "HEAD")
        if files:
            declined.append(Enqueued("conflict", ", ".join(files)))
            return None
        (checkout / lock_path(lock.task)).write_text(render_lock(marked), encoding="utf-8")
        append_progress(checkout, progress_line("queued", lock.task, f"verified by its acceptance tests, waiting "
                                                f"in the merge queue ({commit[:12]})", agent=lock.agent,
                                                when=queued.at))
        return f"queue {lock.task} (agent {lock.agent}, attempt {lock.attempt}){claim_next(checkout)}"

    try:
        update_upstream(repo, change, sleep=sleep, rng=rng, fetch=(CLUDE_FETCH,),
                        also=lambda: (f"{chain_link(repo, commit, lock.task)}:{QUEUE_REF}",))
    except UpstreamRejected as error:
        raise UpstreamRejected(f"the upstream refused to queue {lock.task}: {error}", stderr=error.stderr) from None
    return declined[0] if declined else Enqueued("queued")
