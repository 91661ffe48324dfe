"""Agent CLIs for tests, from npm or PyPI: each installed once, pinned, into tests/.cache/<name> (a file
lock keeps parallel test sessions to one install), and skipped with the reason when node, npm or the
registry is missing. claude_code.py, codex_cli.py, gemini_cli.py and aider_cli.py use it."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

CACHE_ROOT = Path(__file__).parent / ".cache"
INSTALL_TIMEOUT_S = 600


def tail_of(text: str, size: int = 2000) -> str:
    return text[-size:] if text else ""


def version_words(program: Path, home: Path, timeout: float = 60) -> list[str] | None:
    """The words `program --version` prints (run with PATH and `home` only), or None when it fails."""
    try:
        done = subprocess.run([str(program), "--version"], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, env={"PATH": os.environ.get("PATH", ""), "HOME": str(home)})
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.split() if done.returncode == 0 else None


def on_path(program: Path, name: str, folder: Path, env: dict[str, str]) -> dict[str, str]:
    """`env` with `program` first on its PATH as `name` (a link in `folder`)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).symlink_to(program)
    return {**env, "PATH": f"{folder}{os.pathsep}{env.get('PATH', '')}"}


def offline_env(home: Path) -> dict[str, str]:
    """A clean environment for a CLI run in a test: PATH, the locale and TMPDIR inherited, nothing else;
    HOME and the XDG folders in `home`; loopback never through a proxy."""
    env = {key: os.environ[key] for key in ("PATH", "LANG", "LC_ALL", "TMPDIR") if key in os.environ}
    env.update({
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    })
    return env


def install_once(cache: Path, find: Callable[[], Path | None], steps: dict[str, list[str]], say: str) -> Path:
    """The program `find()` finds in `cache`, after running `steps` ({what: argv}) once when it finds
    none (a file lock: one install even with parallel test sessions; `say` printed first, since an install
    downloads). pytest.skip, naming the step, when a step fails or times out (no registry), or when
    `find()` still finds nothing."""
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "home").mkdir(exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = find()
        if found is not None:
            return found
        print(say)
        for what, argv in steps.items():
            try:
                done = subprocess.run(argv, cwd=cache, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S,
                                      stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                pytest.skip(f"{what} took over {INSTALL_TIMEOUT_S} s (no registry?)")
            if done.returncode != 0:
                pytest.skip(f"{what} failed (no registry?): {tail_of(done.stderr, 800)}")
        found = find()
        if found is None:
            pytest.skip(f"{' then '.join(steps)} installed no program that runs on this platform")
        return found


def install_npm(package: str, version: str, cache: Path, find: Callable[[], Path | None]) -> Path:
    """`package@version` installed into `cache` unless `find()` already finds its program there: the
    program `find()` returns after the install (pytest.skip without node, npm or the registry, or when
    the install leaves no program that runs here)."""
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        pytest.skip(f"node and npm are needed to install {package}")
    manifest = cache / "package.json"
    if not manifest.exists():
        cache.mkdir(parents=True, exist_ok=True)
        manifest.write_text(json.dumps({"name": f"clude-test-{cache.name}", "private": True}) + "\n")
    what = f"npm install {package}@{version}"
    return install_once(cache, find, {what: [npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix",
                                             str(cache), f"{package}@{version}"]},
                        f"installing {package}@{version} from npm into {cache} (once; kept for later runs)")
