"""Turns at the upstream for the workers of one machine: claims and queueings wait instead of racing."""

from __future__ import annotations

from pathlib import Path

from clude.store import exclusive

# PUSH_TURN_FILE (in the state dir the workers of a machine share): held by a worker from the fetch to
# the push of a claim or of queueing a change (team/queue). Local workers pushing to main at once would
# mostly lose to each other and fetch again; with it they wait their turn, which is short (no test runs
# inside it: the merge queue tests changes). Workers on other machines still race through git, which
# stays the only arbiter of who wins; lease renewals, releases, failure records and landings are rare
# and do not take a turn.
PUSH_TURN_FILE = "push.turn"


def push_turn(state_dir: Path, *, wait: bool = True):
    """Wait for this machine's turn at the upstream (`wait=False`: take it only if it is free now; the
    block gets whether it did)."""
    return exclusive(Path(state_dir) / PUSH_TURN_FILE, wait=wait)
