"""The CPU priority of what clude starts (Linux). Two things decide it there: a nice value per thread,
which a new process takes from the thread that starts it, and, where the kernel groups processes by
session (autogroups, on by default on most distributions), a nice value per session: a command started
in a session of its own is scheduled as one group beside all the rest, whatever its own nice value is.
So a command meant to run lower gets its session's value lowered too."""

from __future__ import annotations

import concurrent.futures
import os
import queue
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


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


def lower_this_thread(level: int) -> None:
    """Give the calling thread the nice value `level` (and the threads and processes it starts)."""
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), min(19, level))


class LevelThread:
    """A daemon thread that runs the calls handed to it one at a time, at the nice value `level` (None:
    the level of the thread that made it). A process ending does not wait for it."""

    def __init__(self, name: str, level: int | None = None) -> None:
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._level = level
        thread = threading.Thread(target=self._serve, name=name, daemon=True)
        thread.start()
        self.ident = thread.ident

    def submit(self, call: Callable[..., T], *args, **kwargs) -> concurrent.futures.Future[T]:
        """call(*args, **kwargs) in the thread: its outcome."""
        done: concurrent.futures.Future = concurrent.futures.Future()
        self._inbox.put((lambda: call(*args, **kwargs), done))
        return done

    def _serve(self) -> None:
        if self._level is not None:
            lower_this_thread(self._level)
        while True:
            call, done = self._inbox.get()
            if done.set_running_or_notify_cancel():
                try:
                    done.set_result(call())
                except BaseException as error:  # noqa: BLE001 - raised again in the thread that asked
                    done.set_exception(error)
