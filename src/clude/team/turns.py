"""Turns at the upstream for the workers of one machine: claims and landings queue instead of racing."""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# PUSH_TURN_FILE (in the state dir the workers of a machine share): held by a worker from the fetch to
# the push of a claim or a landing (its re-verification included). Without it, local workers that lose a
# push race redo their verification on the new upstream again and again and the team's throughput
# collapses; with it they queue (a merge queue per machine). Workers on other machines still race
# through git, which stays the only arbiter of who wins; lease renewals, releases and failure records
# are quick and do not take a turn.
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
