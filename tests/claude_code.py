"""The real Claude Code CLI for tests: installed once from npm into tests/.cache/claude-code (skipped
when node, npm or the registry is missing), and the clean offline environment it runs in against the
AnthropicStub. What the CLI needs from the stub is written down in test_claude_code_cli.py."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

CLAUDE_CODE_VERSION = "2.1.330"  # `npm view @anthropic-ai/claude-code version` on 2026-11-23
CACHE = Path(__file__).parent / ".cache" / "claude-code"
RUN_TIMEOUT = 120  # seconds one claude -p run may take in a test
API_KEY = "sk-ant-stub-key"  # what the stub is sent (it checks none)


def tail_of(text: str, size: int = 2000) -> str:
    return text[-size:] if text else ""


def _binary_version(path: Path) -> str | None:
    """The version `path --version` prints, or None when it does not run."""
    try:
        done = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL, env={"PATH": os.environ.get("PATH", ""),
                                                             "HOME": str(CACHE / "home")})
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.split()[0] if done.returncode == 0 and done.stdout.split() else None


def _find_claude() -> Path | None:
    """The installed claude binary of the pinned version: the postinstalled bin/claude.exe, else the
    platform package's native binary."""
    scope = CACHE / "node_modules" / "@anthropic-ai"
    candidates = [scope / "claude-code" / "bin" / "claude.exe"]
    candidates += sorted(scope.glob("claude-code-*/claude"))
    for candidate in candidates:
        if candidate.is_file() and _binary_version(candidate) == CLAUDE_CODE_VERSION:
            return candidate
    return None


def install_claude() -> Path:
    """The real Claude Code CLI, installed once into tests/.cache/claude-code (pytest.skip without npm
    or the registry). Tests take it through a session fixture: claude_bin = install_claude()."""
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        pytest.skip("node and npm are needed to install @anthropic-ai/claude-code")
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "home").mkdir(exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:  # one install even with parallel test workers
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = _find_claude()
        if found is not None:
            return found
        manifest = CACHE / "package.json"
        if not manifest.exists():
            manifest.write_text(json.dumps({"name": "clude-test-claude-code", "private": True}) + "\n")
        try:
            done = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix", str(CACHE),
                 f"@anthropic-ai/claude-code@{CLAUDE_CODE_VERSION}"],
                cwd=CACHE, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            pytest.skip("npm install @anthropic-ai/claude-code took over 600 s (no registry?)")
        if done.returncode != 0:
            pytest.skip(f"npm install @anthropic-ai/claude-code@{CLAUDE_CODE_VERSION} failed "
                        f"(no registry?): {tail_of(done.stderr, 800)}")
        found = _find_claude()
        if found is None:
            pytest.skip(f"@anthropic-ai/claude-code@{CLAUDE_CODE_VERSION} installed no claude binary "
                        f"that runs on this platform (no native package for it?)")
        return found


def claude_env(home: Path, base_url: str) -> dict[str, str]:
    """A clean, offline, non-interactive environment: nothing inherited but PATH and the locale."""
    env = {key: os.environ[key] for key in ("PATH", "LANG", "LC_ALL", "TMPDIR") if key in os.environ}
    env.update({
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": API_KEY,
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_BUG_COMMAND": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    })
    return env


def write_arguments(tools: list[dict], path: Path, content: str) -> dict:
    """The Write call's input, built from the input schema the CLI sent (not assumed)."""
    write = next(tool["function"] for tool in tools if tool["function"]["name"] == "Write")
    schema = write["parameters"]
    properties = schema.get("properties", {})
    path_keys = [key for key in properties if "path" in key]
    assert len(path_keys) == 1 and "content" in properties, f"unexpected Write schema: {schema}"
    arguments = {path_keys[0]: str(path), "content": content}
    missing = set(schema.get("required", [])) - set(arguments)
    assert not missing, f"Write requires {sorted(missing)} too: {schema}"
    return arguments
