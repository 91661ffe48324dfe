"""What an agent run leaves behind when its worker is killed: the run's process group is written down
when it starts (with a mark in its environment), and the next worker in the same folder kills it
before it begins."""

from __future__ import annotations

import os
import signal
from pathlib import Path

# The variable that marks every process of one agent run (inherited by what it starts): a process
# whose group leader is gone is still found by it.
MARK_VAR = "CLUDE_RUN_ID"


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), which tells
    a process from a later one that got the same pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


def record(pidfile: Path, pid: int, mark: str | None = None) -> None:
    """Write down the group leader `pid` of a run that has just started (and its environment mark)."""
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(f"{pid} {start_time(pid) or '?'} {mark or '-'}\n", encoding="utf-8")


def forget(pidfile: Path) -> None:
    pidfile.unlink(missing_ok=True)


def kill_leftovers(pidfile: Path) -> int | None:
    """Kill the process group written in `pidfile` if its leader is still the process that was
    recorded (a sandbox's PID namespace dies with it), and every process that carries the run's mark
    (what outlived its leader); returns the recorded pid when anything was killed, else None."""
    try:
        pid_text, started, mark = (pidfile.read_text(encoding="utf-8").split() + ["-", "-"])[:3]
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    killed = None
    if pid > 1 and start_time(pid) is not None and start_time(pid) == started:
        try:
            os.killpg(pid, signal.SIGKILL)
            killed = pid
        except (ProcessLookupError, PermissionError):
            pass
    if mark != "-":
        for other in _marked(mark):
            try:
                os.kill(other, signal.SIGKILL)
                killed = pid
            except (ProcessLookupError, PermissionError):
                pass
    forget(pidfile)
    return killed


def _marked(mark: str) -> list[int]:
    """The processes whose environment holds MARK_VAR=mark (those this user may read)."""
    needle = f"{MARK_VAR}={mark}".encode() + b"\0"
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if needle in Path(f"/proc/{entry}/environ").read_bytes():
                    found.append(int(entry))
            except OSError:
                continue
    return found
