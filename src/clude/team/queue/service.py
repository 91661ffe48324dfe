"""A worker's lander as a background thread: it looks at the upstream's refs (a local upstream's files,
no process; any other with one ls-remote a second at most) and makes a pass when there may be something
for it to do — this worker queued a change, main moved while it holds the lease, the lease moved, the
holder's lease ran out or its process died on this host — and otherwise sleeps."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from clude.team.logs.events import EventLog
from clude.team.protocol.git import Repo, is_local_url, upstream_refs
from clude.team.protocol.objects import remove_tree
from clude.team.board.layout import BRANCH
from clude.team.queue.lander import Lander
from clude.team.queue.lease import LEASE_REF, pid_alive
from clude.team.work.verify import Judge

MAIN_REF = f"refs/heads/{BRANCH}"
LOCAL_LOOK_S = 0.05   # between looks at a local upstream's ref files (no process)
REMOTE_LOOK_S = 1.0   # between ls-remotes of any other upstream
ERROR_PAUSE_S = 5.0   # after a pass that failed, before the next


class LanderService:
    def __init__(self, lander: Lander, url: str, *, host: str, lease_s: float,
                 on_error: Callable[[Exception], None]):
        self.lander, self.url, self.host, self.lease_s, self.on_error = lander, url, host, lease_s, on_error
        self.look_s = LOCAL_LOOK_S if is_local_url(url) else REMOTE_LOOK_S
        self.poke = threading.Event()     # set by the worker when it queued a change
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lander", daemon=True)

    @classmethod
    def of_worker(cls, folder: Path, url: str, judge: Judge | None, events: EventLog, *, agent: str, host: str,
                  lease_s: float, clock: Callable[[], datetime], turn: Callable[[Callable[[], Any]], Any]
                  ) -> LanderService:
        """A worker's lander, on a clone of the upstream of its own (`folder`), made anew at every start
        when the upstream is on this machine: nothing in it outlives a pass, and a clone that an earlier
        clude made while pushes wrote to the upstream, then left without some of its objects
        (protocol/transfer.py: copy_objects), is not kept. The old clone is moved aside first (a test run
        a killed worker left may still write in it) and removed when it can be."""
        if is_local_url(url) and folder.exists():
            os.rename(folder, folder.with_name(f"{folder.name}.old-{os.getpid()}-{time.time_ns()}"))
        for old in folder.parent.glob(f"{folder.name}.old-*"):
            with contextlib.suppress(OSError):
                remove_tree(old)
        lander = Lander(Repo.clone(url, folder, agent=agent), judge, events, agent=agent, host=host,
                        lease_s=lease_s, clock=clock, turn=turn)
        return cls(lander, url, host=host, lease_s=lease_s, on_error=lambda e: events.emit(
            "lander_error", "WARNING", reason=f"{type(e).__name__}: {e}"))

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Finish the pass under way, then give the lease up (another lander takes over at once)."""
        self._stop.set()
        self.poke.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if not self._thread.is_alive():
            self.lander.lease.release()

    def _run(self) -> None:
        seen: dict[str, str | None] = {}
        wake = 0.0
        while not self._stop.is_set():
            refs = upstream_refs(self.url, (MAIN_REF, LEASE_REF))
            other = self.lander.other
            due = (self.poke.is_set() or refs[LEASE_REF] != seen.get(LEASE_REF) or time.monotonic() >= wake
                   or (self.lander.lease.held and refs[MAIN_REF] != seen.get(MAIN_REF))
                   or (other is not None and other.host == self.host and not pid_alive(other.pid)))
            if due:
                self.poke.clear()
                seen = refs
                try:
                    self.lander.pass_once()
                    wake = time.monotonic() + self._until_next_look()
                except Exception as error:  # a network blip, a git failure: said, and tried again later
                    self.on_error(error)
                    wake = time.monotonic() + ERROR_PAUSE_S
            if self._stop.is_set():
                break
            self.poke.wait(self.look_s)

    def _until_next_look(self) -> float:
        """Seconds until a look nothing else prompts: when the other holder's lease runs out, or half a
        lease (a holder on another machine that died without a word)."""
        other = self.lander.other
        if other is None:
            return self.lease_s / 2
        left = (other.until - self.lander.clock()).total_seconds()
        return max(self.look_s, min(left + 0.1, self.lease_s))
