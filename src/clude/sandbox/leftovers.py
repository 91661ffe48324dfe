"""What an agent run leaves behind when its worker is killed: the run's process group is written down
when it starts, and the next worker in the same folder kills it before it begins."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), which tells
    a process from a later one that got the same pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


def record(pidfile: Path, pid: int) -> None:
    """Write down the group leader `pid` of a run that has just started."""
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(f"{pid} {_start_time(pid) or '?'}\n", encoding="utf-8")


def forget(pidfile: Path) -> None:
    pidfile.unlink(missing_ok=True)


def kill_leftovers(pidfile: Path) -> int | None:
    """Kill the process group written in `pidfile` if its leader is still the process that was
    recorded (a sandbox's PID namespace dies with it); returns the pid killed, or None."""
    try:
        pid_text, _, started = pidfile.read_text(encoding="utf-8").strip().partition(" ")
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    killed = None
    if pid > 1 and _start_time(pid) is not None and _start_time(pid) == started:
        try:
            os.killpg(pid, signal.SIGKILL)
            killed = pid
        except (ProcessLookupError, PermissionError):
            pass
    forget(pidfile)
    return killed
