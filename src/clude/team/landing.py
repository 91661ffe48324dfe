"""Landing verified work: rebase it on the upstream, re-verify if the code moved, and push it together
with the bookkeeping (task done, lock removed, PROGRESS line) as one push, retried on races."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

from clude.gitcli import GitError
from clude.team.git import Repo
from clude.team.layout import LOCKS_DIR, PROGRESS, TASKS_DIR, lock_path
from clude.team.lease import same_holder
from clude.team.locks import Lock, LockFileError, parse_lock
from clude.team.sync import UpstreamRejected

# Paths the team's bookkeeping owns: an agent's edits to them are dropped before its work is committed.
TEAM_PATHS = (TASKS_DIR, LOCKS_DIR, PROGRESS)
MAX_RACES = 60


@dataclass
class Landing:
    status: Literal["landed", "conflict", "lost", "unverified"]
    detail: str = ""        # conflict: the files; lost: who holds the lock; unverified: the reason
    commit: str = ""


def is_team_path(path: str) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in TEAM_PATHS)


def code_moved(work: Repo, old: str, new: str) -> bool:
    return any(not is_team_path(p) for p in work.changed_files(old, new))


def land(work: Repo, lock: Lock, *, verified_on: str, bookkeeping: Callable[[Path], str],
         reverify: Callable[[str], str | None], sleep: Callable[[float], None] = time.sleep,
         rng: random.Random | None = None) -> Landing:
    """Push the work commit at HEAD. `reverify(upstream)` is called when the upstream's code moved
    since `verified_on`; it returns the reason the work no longer verifies, or None."""
    rng = rng or random.Random()
    work_commit = work.head()
    for race in range(MAX_RACES):
        work.git("reset", "-q", "--hard")  # what the test runs left behind goes; the work is committed
        work.git("clean", "-ffdxq")  # and what the tests wrote, ignored files included
        work.fetch()
        upstream = work.git("rev-parse", "origin/main").strip()
        try:
            work.git("rebase", "-q", "origin/main")
        except GitError:
            files = work.git("diff", "--name-only", "--diff-filter=U").split()
            work.git("rebase", "--abort", ok=(0, 1, 128))
            work.git("reset", "-q", "--hard", work_commit)
            return Landing("conflict", ", ".join(files) or "(unknown files)")
        holder = _holder(work, lock.task)
        if holder is None or not same_holder(holder, lock):
            who = f"{holder.agent} since {holder.claimed_at:%H:%M:%S}" if holder else "nobody"
            return Landing("lost", f"the lock of {lock.task} is held by {who}: our lease ran out")
        rebased = work.head()
        if code_moved(work, verified_on, upstream):
            why = reverify(upstream)
            if why is not None:
                return Landing("unverified", why)
            verified_on = upstream
        message = bookkeeping(work.path)
        work.git("add", "-A", "--", *TEAM_PATHS)
        work.git("commit", "-q", "-m", message)
        pushed = work.push()
        if pushed.status == "ok":
            return Landing("landed", commit=rebased)
        if pushed.status == "rejected":
            raise UpstreamRejected(pushed.message)
        work.git("reset", "-q", "--hard", rebased)  # drop the bookkeeping; rebase again on the new upstream
        sleep(min(2.0, 0.05 * (1.5 ** race)) * (0.5 + rng.random()))
    raise UpstreamRejected(f"gave up landing {lock.task} after {MAX_RACES} lost push races")


def _holder(work: Repo, task_id: str) -> Lock | None:
    text = work.show("origin/main", lock_path(task_id))
    if text is None:
        return None
    try:
        return parse_lock(text)
    except (LockFileError, ValueError):
        return None
