"""The sandbox agents and tests run in: is bubblewrap usable here, and the command line that starts a
program inside it with the paths a run needs (its work tree writable, the rest read-only or hidden)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping

from clude.sandbox.policy import Mount, Policy, bwrap_args, resolved, under

_DATA = Path(__file__).parent / "data" / "sandbox.toml"
# The bubblewrap program to use instead of the one on PATH (an unusual install; tests).
PROGRAM_VAR = "CLUDE_BWRAP"
# Set inside every sandbox: a clude started there (the clude backend's `clude run`) knows that it
# cannot make a sandbox of its own (a PID namespace cannot be nested without capabilities).
INSIDE_VAR = "CLUDE_SANDBOX"
PROBE_TIMEOUT_S = 20.0
# Where tools that cache under the (hidden, read-only) home folder cache instead, inside the sandbox.
_CACHES = {"XDG_CACHE_HOME": "/tmp/.cache", "GOCACHE": "/tmp/.cache/go-build", "npm_config_cache": "/tmp/.npm"}


class SandboxUnavailable(Exception):
    """bubblewrap is missing or cannot make namespaces here; the message says how to install or
    enable it, and that --sandbox off runs without one."""


@lru_cache(maxsize=1)
def data() -> dict:
    return tomllib.loads(_DATA.read_text(encoding="utf-8"))


def install_hint() -> str:
    """The command that installs bubblewrap with the package manager this machine has."""
    for manager, command in data()["install"].items():
        if shutil.which(manager):
            return command
    return "install bubblewrap (bwrap) with your distribution's package manager"


def problem() -> str | None:
    """Why the sandbox cannot be made here (bubblewrap missing or unable to make namespaces), None
    when it can: `probe` of the bubblewrap in use ($CLUDE_BWRAP, else bwrap on PATH)."""
    return probe(_program())


@lru_cache(maxsize=8)
def probe(program: str | None) -> str | None:
    """None when bubblewrap `program` works here (able to start a process in its own PID namespace with
    every capability dropped), else why not and how to fix it. Checked once a process."""
    found = program
    if not found:
        return f"bubblewrap (bwrap) is not installed: {install_hint()}"
    probe_args = bwrap_args(Policy(cwd="/"))
    try:
        done = subprocess.run([found, *probe_args, "--", "true"], capture_output=True, timeout=PROBE_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bubblewrap ({found}) cannot be run: {error}"
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        why = said[-1] if said else f"exit {done.returncode}"
        return (f"bubblewrap ({found}) cannot make a sandbox here: {why}. Unprivileged user namespaces "
                "may be disabled: enable them (sysctl -w kernel.unprivileged_userns_clone=1, or on Ubuntu "
                "24.04+ sysctl -w kernel.apparmor_restrict_unprivileged_userns=0), or run as root")
    return None


def _program() -> str | None:
    given = os.environ.get(PROGRAM_VAR)
    if given:
        return given if os.path.exists(given) else None
    return shutil.which("bwrap")


def inside_sandbox(env: Mapping[str, str] | None = None) -> bool:
    """Whether this process runs inside a clude sandbox."""
    return bool((os.environ if env is None else env).get(INSIDE_VAR))


@dataclass(frozen=True)
class Sandbox:
    """How untrusted processes start: inside bubblewrap ("on") or as they are ("off"). Extra paths
    come from [sandbox] in clude.toml."""

    enabled: bool = True
    network: bool = True
    hidden: tuple[str, ...] = ()
    readable: tuple[str, ...] = ()
    writable: tuple[str, ...] = ()
    program: str = "bwrap"

    @classmethod
    def from_config(cls, config, *, override: str | None = None) -> "Sandbox":
        """The sandbox [sandbox] describes (`override` "on"/"off": the --sandbox flag wins). Raises
        SandboxUnavailable when it is on and bubblewrap cannot be used."""
        enabled = (override or config.mode) == "on"
        if not enabled:
            return cls(enabled=False)
        why = problem()
        if why:
            raise SandboxUnavailable(f"{why}; or pass --sandbox off to run agents and tests without "
                                     "a sandbox (they can then read your credentials and write anywhere "
                                     "you can)")
        return cls(enabled=True, network=config.network, hidden=tuple(config.hidden),
                   readable=tuple(config.readable), writable=tuple(config.writable),
                   program=_program() or "bwrap")

    @classmethod
    def off(cls) -> "Sandbox":
        return cls(enabled=False)

    def command(self, argv: list[str], *, cwd: Path, env: Mapping[str, str], writable: Iterable[Path] = (),
                readable: Iterable[Path] = (), hidden: Iterable[Path] = (),
                keep_home: Iterable[str] = (), as_pid_1: bool = False) -> tuple[list[str], dict[str, str]]:
        """The command line and environment that run `argv` in `cwd` inside this sandbox.

        `writable`: the run's own folders (its work tree; a test run's result folder); `hidden`: what
        this run must not see although it lies under them or elsewhere (the rest of the project, the
        upstream, clude's state); `readable`: what stays visible under a hidden folder; `keep_home`:
        entries of the credentials list this run needs (a backend's own config, e.g. ".claude"); `as_pid_1`:
        the program is pid 1 inside (for an agent holding a key: bubblewrap's own init would otherwise sit
        beside it with the same environment, readable through /proc/1/environ by what the agent runs).
        The program, the Python running clude and the folders on PATH stay visible wherever they are.
        Off: argv and env unchanged."""
        env = dict(env)
        if not self.enabled:
            return list(argv), env
        mounts = [Mount(p, "hidden", os.path.isdir(p)) for p in self._hidden(env, hidden, keep_home)]
        mounts += [Mount(p, "writable", True) for p in _existing([*writable, *self.writable])]
        kept = _existing([*readable, *self.readable, *_toolchains(env)])
        kept += [p for p in _existing(self._program_paths(argv, env))
                 if any(under(p, m.path) for m in mounts if m.access == "hidden") or under(p, "/tmp")]
        mounts += [Mount(p, "readable", os.path.isdir(p)) for p in kept]
        mounts += [Mount(p, "writable", os.path.isdir(p)) for p in _existing(self._home_kept(env, keep_home))]
        policy = Policy(mounts=tuple(mounts), cwd=resolved(cwd), network=self.network, empty_file=_empty_file(),
                        as_pid_1=as_pid_1)
        env.update({INSIDE_VAR: "bwrap", "TMPDIR": "/tmp"})
        for name, value in _CACHES.items():  # the home folder is read-only here: caches go to the private /tmp
            env.setdefault(name, value)
        return [self.program, *bwrap_args(policy), "--", *argv], env

    def _hidden(self, env: Mapping[str, str], hidden: Iterable[Path], keep_home: Iterable[str]) -> list[str]:
        keep = set(keep_home)
        paths = [*data()["system_hidden"], *self.hidden, *(str(p) for p in hidden), *_homes(env)]
        paths += [f"{home}/{name}" for home in _homes(env) for name in data()["home_hidden"] if name not in keep]
        if env.get("SSH_AUTH_SOCK"):
            paths.append(str(Path(env["SSH_AUTH_SOCK"]).parent))
        return sorted({resolved(p) for p in paths if os.path.lexists(os.path.expanduser(p))})

    @staticmethod
    def _home_kept(env: Mapping[str, str], keep_home: Iterable[str]) -> list[str]:
        home = env.get("HOME")
        return [f"{home}/{name}" for name in keep_home] if home else []

    @staticmethod
    def _program_paths(argv: list[str], env: Mapping[str, str]) -> list[str]:
        """What the program needs to start: argv's absolute paths, the program found on PATH (its
        folder and its real folder), the folders on PATH, the virtualenv and the Python running
        clude (its prefix and clude's own source)."""
        paths = [word for word in argv if os.path.isabs(word)]
        found = shutil.which(argv[0], path=env.get("PATH")) if argv else None
        if found:
            paths += [os.path.dirname(found), os.path.dirname(os.path.realpath(found))]
        for entry in env.get("PATH", "").split(os.pathsep):
            if entry and os.path.isabs(entry):
                parent = os.path.dirname(entry.rstrip("/"))
                paths.append(parent if os.path.exists(os.path.join(parent, "pyvenv.cfg")) else entry)
        if env.get("VIRTUAL_ENV"):
            paths.append(env["VIRTUAL_ENV"])
        paths += [sys.prefix, sys.base_prefix, str(Path(__file__).resolve().parents[2])]
        return paths


def _homes(env: Mapping[str, str]) -> list[str]:
    """Every home folder: $HOME, /root and /home/* (never / itself)."""
    homes = {"/root", *(str(p) for p in Path("/home").glob("*") if p.is_dir())}
    if env.get("HOME"):
        homes.add(env["HOME"])
    return sorted(h for h in (resolved(h) for h in homes) if h != "/")


def _toolchains(env: Mapping[str, str]) -> list[str]:
    """What stays visible of the home folders: the toolchain folders of data/sandbox.toml, and for every
    folder on PATH inside a home, the home's entry that holds it (~/.pyenv for ~/.pyenv/shims)."""
    homes = _homes(env)
    kept = [f"{home}/{name}" for home in homes for name in data()["home_kept"]]
    for entry in env.get("PATH", "").split(os.pathsep):
        if entry and os.path.isabs(entry):
            real = resolved(entry)
            for home in homes:
                if real.startswith(home + "/"):
                    kept.append(home + "/" + real[len(home) + 1:].split("/", 1)[0])
    return kept


@lru_cache(maxsize=1)
def _empty_file() -> str:
    """An empty, read-only regular file to put over hidden files (they read as empty: /dev/null cannot
    be opened on the sandbox's nodev mounts, and git wants a config it can read)."""
    import stat
    import tempfile

    path = os.path.join(tempfile.gettempdir(), f"clude-sandbox-empty-{os.getuid()}")
    try:
        info = os.lstat(path)
        if stat.S_ISREG(info.st_mode) and info.st_size == 0 and info.st_uid == os.getuid():
            return path
    except FileNotFoundError:
        try:
            with open(path, "x"):
                pass
            os.chmod(path, 0o444)
            return path
        except OSError:
            pass
    fd, path = tempfile.mkstemp(prefix="clude-sandbox-empty-")  # someone else's file is in the way
    os.close(fd)
    return path


def _existing(paths: Iterable[Path | str]) -> list[str]:
    out = []
    for path in paths:
        text = os.path.expanduser(str(path))
        if os.path.exists(text):
            out.append(resolved(text))
    return out


def agent_sandbox(settings) -> Sandbox:
    """The sandbox of `clude run`'s shell commands and tests: [sandbox]'s, or none when this process
    already runs inside one (the team's clude backend), where a nested PID namespace cannot be made:
    there the commands share the agent's sandbox, and this process is made undumpable so that they
    cannot read its environment (the model's key) through /proc. Raises SandboxUnavailable."""
    if inside_sandbox():
        make_undumpable()
        return Sandbox.off()
    return Sandbox.from_config(settings.sandbox)


def make_undumpable() -> bool:
    """prctl(PR_SET_DUMPABLE, 0): other processes of the same user without CAP_SYS_PTRACE (a sandboxed
    command) can no longer read this process's /proc/PID/environ or memory. False where unsupported."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(4, 0, 0, 0, 0) == 0  # PR_SET_DUMPABLE = 4
    except (OSError, AttributeError):
        return False

