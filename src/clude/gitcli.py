"""The one place that runs the git command-line tool: run_git, git_text, GitError and commit identity."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
from collections.abc import Container
from pathlib import Path

from clude.gitsafe import SAFE_GIT
from clude.priority import lower_session, thread_level

# The identity commits are made with unless the caller names another, so no user git config is needed.
DEFAULT_NAME = "clude"
DEFAULT_EMAIL = "clude@localhost"
IDENTITY_ENV = {"GIT_AUTHOR_NAME": DEFAULT_NAME, "GIT_AUTHOR_EMAIL": DEFAULT_EMAIL,
                "GIT_COMMITTER_NAME": DEFAULT_NAME, "GIT_COMMITTER_EMAIL": DEFAULT_EMAIL}
# Variables that would point git at another repository, index or object store than the one named.
REPO_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_PREFIX",
             "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE")


class GitError(RuntimeError):
    """A git command failed; the message has the command and git's error output."""

    def __init__(self, message: str, *, command: list[str] | None = None,
                 returncode: int | None = None, stderr: str = "") -> None:
        super().__init__(message)
        self.command = command or []
        self.returncode = returncode
        self.stderr = stderr


def identity_env(name: str | None = None, email: str | None = None) -> dict[str, str]:
    """The GIT_AUTHOR_*/GIT_COMMITTER_* variables for `name <email>` (clude <clude@localhost> by
    default; a name alone gets the email `name@localhost`)."""
    name = name or DEFAULT_NAME
    email = email or (DEFAULT_EMAIL if name == DEFAULT_NAME else f"{name}@localhost")
    return {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email}


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment git runs in: ours without variables that redirect git to another repository,
    the default identity, then `extra` (which may name another identity)."""
    env = {k: v for k, v in os.environ.items() if k not in REPO_VARS}
    env.update(IDENTITY_ENV)
    env.setdefault("GIT_TERMINAL_PROMPT", "0")  # unattended: a missing credential fails, never waits
    env.update(extra or {})
    return env


def run_git(cwd: Path, *args: str, input: bytes | None = None, env: dict[str, str] | None = None,
            ok: Container[int] = (0,), timeout: float | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run `git -C cwd ARGS`; raise GitError (command + stderr) unless the exit code is in `ok`.

    With a timeout (seconds) git runs in its own process group, killed as a group when the time is
    up (with the ssh or helper it started), and GitError is raised with returncode None."""
    cmd = ["git", *SAFE_GIT, "-C", str(cwd), *args]
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=git_env(env),
                                start_new_session=timeout is not None)
        if timeout is not None:  # a session of its own: as low as the thread that started it
            lower_session(proc.pid, thread_level())
    except OSError as e:
        raise GitError(f"cannot run git ({e}): is git installed and on PATH?", command=cmd) from e
    with proc:
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.communicate()
            raise GitError(f"`{shlex.join(cmd)}` did not finish within {timeout:g}s",
                           command=cmd) from None
        except BaseException:  # KeyboardInterrupt: git does not outlive us
            if timeout is not None:
                _kill_group(proc)
            else:
                proc.kill()
            raise
    result = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    if result.returncode not in ok:
        stderr = err.decode("utf-8", "replace").strip()
        raise GitError(f"`{shlex.join(cmd)}` failed (exit {result.returncode}): {stderr}",
                       command=cmd, returncode=result.returncode, stderr=stderr)
    return result


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def git_text(cwd: Path, *args: str, **kw) -> str:
    """The output of a git command, decoded, without the final newline."""
    return os.fsdecode(run_git(cwd, *args, **kw).stdout).rstrip("\n")


__all__ = ["IDENTITY_ENV", "REPO_VARS", "GitError", "git_env", "git_text", "identity_env", "run_git"]
