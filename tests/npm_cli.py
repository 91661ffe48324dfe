"""Agent CLIs from npm for tests: each installed once, pinned, into tests/.cache/<name> (a file lock keeps
parallel test sessions to one install), and skipped with the reason when node, npm or the registry is
missing. claude_code.py, codex_cli.py and gemini_cli.py use it."""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

CACHE_ROOT = Path(__file__).parent / ".cache"
INSTALL_TIMEOUT_S = 600


def tail_of(text: str, size: int = 2000) -> str:
    return text[-size:] if text else ""


def install_npm(package: str, version: str, cache: Path, find: Callable[[], Path | None]) -> Path:
    """`package@version` installed into `cache` unless `find()` already finds its program there: the
    program `find()` returns after the install (pytest.skip without node, npm or the registry, or when
    the install leaves no program that runs here)."""
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        pytest.skip(f"node and npm are needed to install {package}")
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "home").mkdir(exist_ok=True)
    with open(cache / ".lock", "w") as lock:  # one install even with parallel test sessions
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = find()
        if found is not None:
            return found
        manifest = cache / "package.json"
        if not manifest.exists():
            manifest.write_text(json.dumps({"name": f"clude-test-{cache.name}", "private": True}) + "\n")
        print(f"installing {package}@{version} from npm into {cache} (once; kept for later runs)")
        try:
            done = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix", str(cache),
                 f"{package}@{version}"],
                cwd=cache, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            pytest.skip(f"npm install {package} took over {INSTALL_TIMEOUT_S} s (no registry?)")
        if done.returncode != 0:
            pytest.skip(f"npm install {package}@{version} failed (no registry?): {tail_of(done.stderr, 800)}")
        found = find()
        if found is None:
            pytest.skip(f"{package}@{version} installed no program that runs on this platform")
        return found
