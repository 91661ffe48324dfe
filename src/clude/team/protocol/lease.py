"""Keeps a claimed task's lease alive while the agent works, and notices when the lock was taken away."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Callable

from clude.team.protocol.git import Repo
from clude.team.board.layout import lock_path
from clude.team.board.locks import Lock, LockFileError, parse_lock, render_lock, renewed
from clude.team.protocol.sync import UpstreamRejected, update_upstream


def same_holder(a: Lock, b: Lock) -> bool:
    return a.agent == b.agent and a.claimed_at == b.claimed_at and a.task == b.task


def lock_on_disk(checkout: Path, task_id: str) -> Lock | None:
    try:
        return parse_lock((checkout / lock_path(task_id)).read_text(encoding="utf-8"))
    except (OSError, LockFileError, ValueError):
        return None


class LeaseKeeper:
    """Renews `lock` on the upstream every lease_s / 3 through the control clone (under `guard`, the
    lock that also serializes the worker's own use of that clone). `lost` turns true when the lock on
    the upstream is no longer ours: another worker broke it after our lease ran out."""

    def __init__(self, control: Repo, guard: threading.Lock, lock: Lock, lease_s: float,
                 clock: Callable[[], datetime], on_error: Callable[[str], None] = lambda m: None):
        self.control, self.guard, self.lock = control, guard, lock
        self.lease_s, self.clock, self.on_error = lease_s, clock, on_error
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{lock.task}", daemon=True)

    def __enter__(self) -> "LeaseKeeper":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        """Renew again after stop() (a queued change sent back to its agent to resolve a conflict)."""
        if not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=f"lease-{self.lock.task}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            try:
                self.renew()
            except UpstreamRejected as error:
                self.on_error(f"lease renewal of {self.lock.task} refused by the upstream: {error}")
            except Exception as error:  # a network blip: try again at the next renewal
                self.on_error(f"lease renewal of {self.lock.task} failed: {type(error).__name__}: {error}")
            if self.lost:
                return

    def renew(self) -> None:
        def change(checkout: Path) -> str | None:
            current = lock_on_disk(checkout, self.lock.task)
            if current is None or not same_holder(current, self.lock):
                self.lost = True
                return None
            if current.queued is not None:  # queued: the lander ends the hold, no renewal may undo it
                return None
            fresh = renewed(self.lock, self.clock(), self.lease_s)
            (checkout / lock_path(self.lock.task)).write_text(render_lock(fresh), encoding="utf-8")
            self.lock = fresh
            return f"renew {self.lock.task} lease (agent {self.lock.agent})"

        with self.guard:
            if not self._stop.is_set():
                update_upstream(self.control, change)
