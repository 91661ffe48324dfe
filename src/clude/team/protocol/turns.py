"""Turns at the upstream for the workers of one machine: claims and queueings wait instead of racing,
and a turn's work runs ahead of everything else the workers do."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from clude.priority import LevelThread, lower_this_thread, thread_level
from clude.store import exclusive

T = TypeVar("T")

# PUSH_TURN_FILE (in the state dir the workers of a machine share): held by a worker from the fetch to
# the push of a claim or of queueing a change (team/queue). Local workers pushing to main at once would
# mostly lose to each other and fetch again; with it they wait their turn, which is short (no test runs
# inside it: the merge queue tests changes). Workers on other machines still race through git, which
# stays the only arbiter of who wins; lease renewals, releases, failure records and landings are rare
# and do not take a turn.
PUSH_TURN_FILE = "push.turn"
# How many nice levels below its turns a worker does the rest of its work (keep_turns_ahead). Every
# worker of the machine waits for the turn, so the one that holds it must get the CPU at once: measured
# with 8 workers on 2 CPUs, a turn holder spent three quarters of its turn waiting for a CPU that other
# workers' checkouts and fetches held.
LOOP_NICE = 10

# TURN_THREAD: the thread each process does its turns in (one at a time: a turn is one push), at the
# priority the process started with; made by the first turn, or by keep_turns_ahead before the rest of
# the process is lowered. It waits for the turn too: the moment the turn is free, the work starts at that
# priority (a lowered thread would first wait for a CPU, with the machine's turn held and idle). A daemon:
# a process that stops while it waits for the turn does not wait for it to be free to end.
_TURN_THREAD: list[LevelThread] = []
_TURN_THREAD_GUARD = threading.Lock()  # making the turn thread: one is made


def _turn_thread() -> LevelThread:
    with _TURN_THREAD_GUARD:
        if not _TURN_THREAD:
            _TURN_THREAD.append(LevelThread("turn"))
        return _TURN_THREAD[0]


def keep_turns_ahead() -> None:
    """Make this process's turn thread at its priority, then lower the calling thread (and the threads
    and commands it starts from now on) by LOOP_NICE: only the turns' work runs at the worker's priority.
    Linux keeps a priority per thread; elsewhere nothing is lowered."""
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return
    _turn_thread()
    lower_this_thread(thread_level() + LOOP_NICE)


def push_turn(state_dir: Path, *, wait: bool = True):
    """Wait for this machine's turn at the upstream (`wait=False`: take it only if it is free now; the
    block gets whether it did)."""
    return exclusive(Path(state_dir) / PUSH_TURN_FILE, wait=wait)


def in_turn(state_dir: Path, work: Callable[[], T], *, wait: bool = True) -> tuple[bool, T | None]:
    """Run work() in this machine's turn at the upstream, in the turn thread: (True, what it returned),
    or (False, None) when `wait=False` and another worker has the turn now. Its exceptions are raised
    here. A stop signal (an exception here) while the turn is awaited ends the wait, and the work is
    then never done; one that comes while the work runs lets it end first (a push is short, and one cut
    in the middle helps nobody)."""
    thread = _turn_thread()
    if threading.get_ident() == thread.ident:
        return True, work()  # a turn's work asking for the turn it has (a second flock would wait forever)
    state = {"stopped": False, "started": False}
    guard = threading.Lock()  # between the stop and the start of the work: one of them is first

    def turn() -> tuple[bool, T | None]:
        with push_turn(state_dir, wait=wait) as got:
            with guard:
                if not got or state["stopped"]:
                    return False, None
                state["started"] = True
            return True, work()

    done = thread.submit(turn)
    try:
        return done.result()
    except BaseException:
        with guard:
            state["stopped"] = True
            started = state["started"]
        if started and not done.done():
            with contextlib.suppress(BaseException):  # a second stop ends this wait too
                done.result()
        raise
