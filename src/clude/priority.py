"""The CPU priority of what clude starts (Linux). Two things decide it there: a nice value per thread,
which a new process takes from the thread that starts it, and, where the kernel groups processes by
session (autogroups, on by default on most distributions), a nice value per session: a command started
in a session of its own is scheduled as one group beside all the rest, whatever its own nice value is.
So a command meant to run lower gets its session's value lowered too."""

from __future__ import annotations

import os
import threading


def thread_level() -> int:
    """The calling thread's nice value."""
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def lower_session(pid: int, level: int) -> None:
    """Give the autogroup of `pid` (a command that started a session of its own) the nice value `level`,
    when it is lower priority than the default. Best effort: without autogroups (or when the kernel
    refuses, as it may for a second change within a tenth of a second by an unprivileged user) the
    command keeps its own nice value alone."""
    if level <= 0:
        return
    try:
        with open(f"/proc/{pid}/autogroup", "w", encoding="ascii") as group:
            group.write(str(min(19, level)))
    except OSError:
        pass
