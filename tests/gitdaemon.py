"""Test helper: serve a folder of git repositories over git:// on loopback with `git daemon` (push enabled)."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from clude.gitcli import git_env
from clude.harness.process import kill_group


def daemon_available() -> bool:
    """Whether this git has `git daemon` (some distributions ship it in a separate package)."""
    try:
        exec_path = subprocess.run(["git", "--exec-path"], capture_output=True, text=True,
                                   check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return False
    return os.access(Path(exec_path) / "git-daemon", os.X_OK)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 a moment ago (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    """Whether a git daemon answers at url: ls-remote succeeds, or the daemon itself replies with
    an error (the base folder is not a repository); a refused connection is not an answer."""
    try:
        proc = subprocess.run(["git", "ls-remote", url], capture_output=True, text=True, timeout=2,
                              env=git_env(), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0 or "remote error" in proc.stderr


@contextmanager
def git_daemon(base: Path, *, ports: int = 5, ready_within: float = 15.0) -> Iterator[str]:
    """Serve every repository under `base` (read and push) and yield the base URL
    git://127.0.0.1:PORT/ ; the daemon's process group is killed on exit. Skips the test when
    `git daemon` is not available; a port taken between picking and binding is retried."""
    if not daemon_available():
        pytest.skip("git daemon is not available (install the git-daemon package)")
    base = Path(base).absolute()
    errors: list[str] = []
    for _ in range(ports):
        port = free_port()
        url = f"git://127.0.0.1:{port}/"
        with tempfile.TemporaryFile() as log:
            proc = subprocess.Popen(
                ["git", "daemon", "--export-all", "--enable=receive-pack", "--informative-errors",
                 f"--base-path={base}", "--reuseaddr", "--listen=127.0.0.1", f"--port={port}", str(base)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=git_env(),
                start_new_session=True)
            try:
                deadline = time.monotonic() + ready_within
                while proc.poll() is None and time.monotonic() < deadline:
                    if _answers(url):
                        break
                    time.sleep(0.05)
                else:
                    log.seek(0)
                    said = log.read().decode("utf-8", "replace").strip()
                    errors.append(f"port {port}: {said or f'no answer within {ready_within:g}s'}")
                    continue
                yield url
                return
            finally:
                kill_group(proc)
    raise RuntimeError("git daemon did not start: " + "; ".join(errors))
