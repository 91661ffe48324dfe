"""What a person does to a running team from another shell or the dashboard: pause a worker, resume it,
stop the whole team. Through files in the project's state dir (.clude/ on this machine), so any process
of the user may do it and a worker or `team run` started later still sees it."""

from __future__ import annotations

import fcntl
import os
import re
import signal
from contextlib import suppress
from pathlib import Path

from clude.sandbox.leftovers import start_time

# <state>/team/paused/<agent>: while the file is there the worker claims nothing new (it finishes the
# task it holds, and what it reserved, then waits); removed by resume.
PAUSED_DIR = "team/paused"
# <state>/team/run.pid: the pid and start time of the `team run` supervising this project's workers,
# written when it starts and removed when it ends, its flock held meanwhile; `team stop` signals that
# process only while the flock is held and the pid is still the process that wrote it.
RUN_PIDFILE = "team/run.pid"
_AGENT = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class ControlError(ValueError):
    """A name that is no worker's, or no team running (the message says which)."""


def _agent(agent: str) -> str:
    if not _AGENT.fullmatch(agent or "") or agent.startswith("."):
        raise ControlError(f"not a worker's name: {agent!r} (letters, digits, '.', '_', '-')")
    return agent


def pause(state_dir: Path, agent: str) -> bool:
    """Pause `agent`; False when it was paused already."""
    flag = Path(state_dir) / PAUSED_DIR / _agent(agent)
    if flag.exists():
        return False
    flag.parent.mkdir(parents=True, exist_ok=True)
    flag.write_text("paused\n", encoding="utf-8")
    return True


def resume(state_dir: Path, agent: str) -> bool:
    """Resume `agent`; False when it was not paused."""
    flag = Path(state_dir) / PAUSED_DIR / _agent(agent)
    if not flag.exists():
        return False
    flag.unlink(missing_ok=True)
    return True


def is_paused(state_dir: Path, agent: str) -> bool:
    return (Path(state_dir) / PAUSED_DIR / agent).is_file()


def paused(state_dir: Path) -> set[str]:
    folder = Path(state_dir) / PAUSED_DIR
    return {f.name for f in folder.iterdir() if f.is_file()} if folder.is_dir() else set()


_RUN_FILE: list = []  # the open run.pid of this process's `team run`, its flock held while it runs


def record_run(state_dir: Path) -> None:
    """This process is the project's `team run` (until forget_run): its pid written in RUN_PIDFILE,
    whose exclusive flock it holds while it runs; no other `team run` of the project holds it at once."""
    pidfile = Path(state_dir) / RUN_PIDFILE
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    f = open(pidfile, "a+", encoding="utf-8")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        return  # another team run of this project holds it: `team stop` stops that one
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()} {start_time(os.getpid()) or '?'}\n")
    f.flush()
    _RUN_FILE[:] = [f]


def forget_run(state_dir: Path) -> None:
    for f in _RUN_FILE:
        with suppress(OSError):
            Path(f.name).unlink()
        f.close()  # the flock goes with it
    _RUN_FILE.clear()


def running_team(state_dir: Path) -> int | None:
    """The pid of the `team run` recorded in `state_dir`, when a process holds the pidfile's flock (a
    run that died leaves none: its pid, maybe another process's now, is never signalled) and that
    pid is still the process that wrote it."""
    pidfile = Path(state_dir) / RUN_PIDFILE
    try:
        with open(pidfile, encoding="utf-8") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                held = True
            else:
                held = False
            pid_text, started = f.read().split()[:2]
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    return pid if held and pid > 1 and start_time(pid) is not None and start_time(pid) == started else None


def stop_team(state_dir: Path) -> int:
    """Ask the running `team run` to stop as Ctrl-C stops it (SIGTERM: its workers give their tasks back
    and it exits); its pid."""
    pid = running_team(state_dir)
    if pid is None:
        raise ControlError(f"no `clude team run` is running for this project (none recorded in "
                           f"{Path(state_dir) / RUN_PIDFILE})")
    os.kill(pid, signal.SIGTERM)
    return pid
