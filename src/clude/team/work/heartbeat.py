"""A worker's heartbeat: its state, task and since-when in .clude/heartbeats/<agent>.json, every few
seconds; and, for a worker the monitor started, the end of the worker when the monitor is gone."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

from clude.store import atomic_write_text


class Heartbeat:
    def __init__(self, state_dir: Path, agent: str, every_s: float, parent_pid: int | None = None):
        self.path = state_dir / "heartbeats" / f"{agent}.json"
        self.agent, self.every_s, self.parent_pid = agent, every_s, parent_pid
        self.started = time.time()
        self.state, self.task, self.attempt, self.since = "starting", None, None, self.started
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{agent}", daemon=True)

    def start(self) -> None:
        self.write()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def set(self, state: str, task: str | None = None, attempt: int | None = None) -> None:
        if (state, task) != (self.state, self.task):
            self.state, self.task, self.attempt, self.since = state, task, attempt, time.time()
            self.write()

    def write(self) -> None:
        atomic_write_text(self.path, json.dumps({
            "agent": self.agent, "pid": os.getpid(), "state": self.state, "task": self.task,
            "attempt": self.attempt, "since": self.since, "started": self.started, "at": time.time()}), sync=False)

    def _beat(self) -> None:
        while not self._stop.wait(self.every_s):
            if self.parent_pid is not None and os.getppid() != self.parent_pid:
                os.kill(os.getpid(), signal.SIGTERM)  # the monitor died: release the task and stop
                return
            try:
                self.write()
            except OSError:
                pass


def read_heartbeats(state_dir: Path) -> dict[str, dict]:
    found = {}
    for path in sorted((state_dir / "heartbeats").glob("*.json")):
        try:
            found[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
    return found
