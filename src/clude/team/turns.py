"""Turns at the upstream for the workers of one machine: claims and queueings wait instead of racing."""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# PUSH_TURN_FILE (in the state dir the workers of a machine share): held by a worker from the fetch to
# the push of a claim or of queueing a change (team/queue). Local workers pushing to main at once would
# mostly lose to each other and fetch again; with it they wait their turn, which is short (no test runs
# inside it: the merge queue tests changes). Workers on other machines still race through git, which
# stays the only arbiter of who wins; lease renewals, releases, failure records and landings are rare
# and do not take a turn.
PUSH_TURN_FILE = "push.turn"


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path` (made when missing) for the block: released on exit, and by
    the kernel when the process is killed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def push_turn(state_dir: Path):
    """Wait for this machine's turn at the upstream."""
    return exclusive(Path(state_dir) / PUSH_TURN_FILE)
