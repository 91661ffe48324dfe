"""Runs a command in its own process group, output to a file, with a timeout that kills the whole group."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from clude.priority import LevelThread, lower_session, thread_level

# Seconds between SIGTERM to the group and SIGKILL, so test runners can write what they have.
KILL_GRACE_S = 2.0
# How much of the end of the output is kept in memory to explain a failure.
TAIL_BYTES = 64 * 1024


@dataclass
class Finished:
    exit_code: int | None  # None when killed by a signal
    signal: int | None
    timed_out: bool
    interrupted: bool
    duration_s: float


class MissingProgram(Exception):
    """The program a command starts does not exist; the message says which path and how to fix it."""


def resolve_program(argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    """The absolute path of the program argv[0] starts, checking a script's interpreter too.

    Raises MissingProgram naming the missing path, so a broken environment is never taken for a
    failing test.
    """
    if not argv:
        raise MissingProgram("the test command is empty: set [test] command in clude.toml")
    prog = argv[0]
    if os.sep in prog:
        path = Path(prog) if os.path.isabs(prog) else cwd / prog
        if not os.path.lexists(path):
            raise MissingProgram(f"{prog} does not exist (looked for {path}){_venv_hint(prog)}")
        if not path.exists():
            target = os.readlink(path)
            raise MissingProgram(f"{prog} is a symlink to {target}, which does not exist"
                                 f"{_venv_hint(prog)}")
        if not path.is_file():
            raise MissingProgram(f"{prog} is not a file ({path})")
        if not os.access(path, os.X_OK):
            raise MissingProgram(f"{prog} is not executable (chmod +x {path})")
        found = str(path)
    else:
        found = shutil.which(prog, path=env.get("PATH", os.defpath))
        if found is None:
            raise MissingProgram(f"{prog} is not on PATH ({env.get('PATH', '')!s:.200}); install it "
                                 f"or give its full path in [test] command")
    _check_shebang(found, prog)
    return found


def _venv_hint(prog: str) -> str:
    parts = Path(prog).parts
    for venv in (".venv", "venv", "env"):
        if venv in parts:
            root = Path(*parts[: parts.index(venv) + 1])
            return (f"; the virtualenv {root} is missing or broken: recreate it "
                    f"(python3 -m venv {root} && {root}/bin/pip install -e .) or fix [test] command")
    return ""


def _check_shebang(path: str, prog: str) -> None:
    """A script whose #! interpreter is gone fails with 'No such file' as if the script were missing."""
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return
    if not head.startswith(b"#!"):
        return
    words = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").split()
    if words and os.path.isabs(words[0]) and not os.path.exists(words[0]):
        raise MissingProgram(f"{prog} starts with #!{words[0]}, which does not exist"
                             f"{_venv_hint(words[0])}")


class _Stop(Exception):
    """clude itself received SIGTERM or SIGHUP while a command ran."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_stop(signum, _frame):
    raise _Stop(signum)


# How much lower than this process's own the CPU priority of the commands it starts is (nice values):
# 0, unless lower_commands() said otherwise. A team worker starts its agents and test runs lower, so that
# on a machine they keep busy the short work every worker waits for (a push in its turn) still runs at once.
_COMMAND_NICE = [0]
# LOWERED_SPAWNER: the one thread that starts commands when they start lower. Linux keeps a nice value
# per thread and a new process takes its starting thread's: so the command is lower from its first
# instruction, and so is everything it starts at once (the sandbox's own children, which a renice of
# the command after its start missed). The thread itself never starts anything at the worker's level.
_SPAWNERS: dict[int, LevelThread] = {}  # by the nice value it starts at
_SPAWNER_GUARD = threading.Lock()  # making a spawner: one per level is made


def lower_commands(by: int) -> None:
    """From now on, start every command `by` nice levels below this process (at most nice 19)."""
    _COMMAND_NICE[0] = by


def _start(argv: list[str], **options) -> subprocess.Popen:
    """subprocess.Popen(argv, **options), by the lowered spawner thread when commands start lower."""
    if _COMMAND_NICE[0] <= 0:
        return subprocess.Popen(argv, **options)
    level = min(19, thread_level() + _COMMAND_NICE[0])
    with _SPAWNER_GUARD:
        if level not in _SPAWNERS:
            _SPAWNERS[level] = LevelThread(f"spawner-nice-{level}", level)
        spawner = _SPAWNERS[level]
    started = spawner.submit(subprocess.Popen, argv, **options)
    try:
        proc = started.result()
    except BaseException:  # stopped while it started: what did start is not left running untracked
        with contextlib.suppress(BaseException):
            kill_group(started.result(), first=signal.SIGKILL)
        raise
    if options.get("start_new_session"):
        lower_session(proc.pid, level)
    return proc


# Signals that stop clude itself; each is passed on to the command's group (Ctrl-C as SIGINT).
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def run_group(argv: list[str], cwd: Path, env: dict[str, str], output: Path,
              timeout_s: float | None, *, stdin: Path | None = None,
              stdout: Path | None = None, pidfile: Path | None = None) -> Finished:
    """Run argv with stdout and stderr into `output`; kill its process group on timeout, on Ctrl-C,
    or when clude gets SIGTERM/SIGHUP (passed on to the group).

    `stdin`: a file the command reads as its standard input (default: nothing, /dev/null).
    `stdout`: a file that gets the standard output alone (then `output` gets the standard error),
    for commands whose result is printed on stdout (JSON).

    Whatever the command leaves running in its group when it exits is killed too. `pidfile`: where
    the group is written down while it runs (clude.sandbox.leftovers), so that the next worker kills
    it if this one is killed first. The wait blocks
    (no polling); a timer thread kills the group at the deadline. Raises OSError when the program
    cannot be started at all.
    """
    start = time.monotonic()
    interrupted = False
    expired = threading.Event()
    env = {**env, "PWD": str(cwd)}  # getcwd() in Go and shells trusts PWD: make it the real cwd
    main_thread = threading.current_thread() is threading.main_thread()
    saved = {signal.SIGINT: signal.getsignal(signal.SIGINT)} if main_thread else {}
    saved.update({s: signal.signal(s, _raise_stop) for s in _STOP_SIGNALS} if main_thread else {})
    try:
        with contextlib.ExitStack() as files:
            out = files.enter_context(open(output, "wb"))
            source = files.enter_context(open(stdin, "rb")) if stdin is not None else subprocess.DEVNULL
            sink = files.enter_context(open(stdout, "wb")) if stdout is not None else out
            proc = _start(argv, cwd=cwd, env=env, stdin=source, stdout=sink,
                          stderr=out if stdout is not None else subprocess.STDOUT, start_new_session=True)
            if pidfile is not None:
                from clude.sandbox.leftovers import MARK_VAR, forget, record
                record(pidfile, proc.pid, env.get(MARK_VAR))

            def expire() -> None:
                if proc.poll() is None:
                    expired.set()
                    kill_group(proc)

            timer = threading.Timer(timeout_s, expire) if timeout_s else None
            if timer is not None:
                timer.daemon = True
                timer.start()
            try:
                proc.wait()
            except (KeyboardInterrupt, _Stop) as stop:
                interrupted = True
                if main_thread:  # a second Ctrl-C must not cut the clean-up short
                    for s in (signal.SIGINT, *_STOP_SIGNALS):
                        signal.signal(s, signal.SIG_IGN)
                kill_group(proc, first=stop.signum if isinstance(stop, _Stop) else signal.SIGINT)
            finally:
                if timer is not None:
                    timer.cancel()
                kill_group(proc, first=signal.SIGKILL)
                if pidfile is not None:
                    forget(pidfile)
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
    code = proc.returncode
    sig = -code if code is not None and code < 0 else None
    return Finished(exit_code=None if sig else code, signal=sig, timed_out=expired.is_set(),
                    interrupted=interrupted, duration_s=time.monotonic() - start)


def kill_group(proc: subprocess.Popen, first: int = signal.SIGTERM) -> None:
    """Signal the whole group, then SIGKILL it after KILL_GRACE_S. Safe if it has already gone."""
    for sig, wait in ((first, KILL_GRACE_S), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=wait)
            # the leader is gone; make sure nothing it started lives on in the group
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return
        except subprocess.TimeoutExpired:
            continue


def tail(path: Path, size: int = TAIL_BYTES, start: int = 0) -> str:
    """The last `size` bytes of a file as text, whatever its encoding; nothing before `start`."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(start, f.tell() - size))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""
