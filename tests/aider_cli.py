"""The real Aider CLI for tests: aider-chat installed once from PyPI, pinned, into its own virtualenv under
tests/.cache/aider (a file lock keeps parallel test sessions to one install; skipped with the reason when
this Python cannot run it, or the registry or the install fails), the clean offline environment it runs in
against the OpenAIStub, and a proxy that refuses and records every request meant for anywhere but
loopback. What aider needs from the stub is written down in test_aider_cli.py."""

from __future__ import annotations

import os
import socketserver
import sys
import threading
from pathlib import Path

import pytest

from npm_cli import CACHE_ROOT, install_once, version_words

AIDER_VERSION = "0.86.2"  # `pip index versions aider-chat` on 2026-12-06: the newest 0.86.x
AIDER_PYTHONS = ((3, 10), (3, 13))  # aider-chat 0.86.2's Requires-Python: >=3.10,<3.13
CACHE = CACHE_ROOT / "aider"
VENV = CACHE / "venv"
RUN_TIMEOUT = 180  # seconds one aider run may take in a test
API_KEY = "sk-stub-aider-key"  # what the stub is sent (it checks none)


def _installed() -> Path | None:
    """The cache's aider program when it is the pinned version and runs."""
    program = VENV / "bin" / "aider"
    if not program.is_file():
        return None
    return program if version_words(program, CACHE / "home", timeout=120) == ["aider", AIDER_VERSION] else None


def install_aider() -> Path:
    """The `aider` program of aider-chat==AIDER_VERSION, installed once into tests/.cache/aider/venv
    (pytest.skip when this Python is outside aider's range, or without the registry)."""
    low, high = AIDER_PYTHONS
    if not low <= sys.version_info[:2] < high:
        pytest.skip(f"aider-chat {AIDER_VERSION} runs on Python {low[0]}.{low[1]} to {high[0]}.{high[1] - 1}, "
                    f"not {sys.version_info[0]}.{sys.version_info[1]}")
    steps = {f"python -m venv {VENV}": [sys.executable, "-m", "venv", "--clear", str(VENV)],
             f"pip install aider-chat=={AIDER_VERSION}": [
                 str(VENV / "bin" / "python"), "-m", "pip", "install", "--progress-bar", "off",
                 "--disable-pip-version-check", f"aider-chat=={AIDER_VERSION}"]}
    return install_once(CACHE, _installed, steps,
                        f"installing aider-chat=={AIDER_VERSION} from PyPI into {VENV} (about 700 MB with litellm, "
                        "numpy, scipy and tree-sitter; once, kept for later runs)")


def aider_env(home: Path, base_url: str, proxy: str) -> dict[str, str]:
    """A clean, offline, non-interactive environment: nothing inherited but PATH and the locale; the
    OpenAI API at the stub; every other request through `proxy` (an OutsideRecorder, which refuses it)."""
    env = {key: os.environ[key] for key in ("PATH", "LANG", "LC_ALL", "TMPDIR") if key in os.environ}
    env.update({
        "HOME": str(home),
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_API_BASE": base_url,
        "AIDER_CHECK_UPDATE": "false",
        "AIDER_ANALYTICS_DISABLE": "true",
        "AIDER_SHOW_RELEASE_NOTES": "false",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # litellm's price list from its package, not GitHub
        "HTTPS_PROXY": proxy, "HTTP_PROXY": proxy, "https_proxy": proxy, "http_proxy": proxy,
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
    })
    return env


class _Refuser(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline(8192).decode("latin-1").strip()
        with self.server.lock:
            self.server.seen.append(line)
        self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


class OutsideRecorder(socketserver.ThreadingTCPServer):
    """An HTTP(S) proxy on loopback that answers every request 403 and records its first line
    ("CONNECT host:443 HTTP/1.1"): whatever a CLI tries to reach beyond the stub fails at once, offline
    or not, and the test sees what it was."""

    daemon_threads = True

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Refuser)
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def hosts(self) -> list[str]:
        """The hosts asked for, in order ("raw.githubusercontent.com:443")."""
        with self.lock:
            return [line.split()[1] if len(line.split()) > 1 else line for line in self.seen]

    def __enter__(self) -> "OutsideRecorder":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join()
