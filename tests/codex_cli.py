"""The real Codex CLI for tests: installed once from npm into tests/.cache/codex (npm_cli.py; skipped when
node, npm or the registry is missing), and the clean offline environment it runs in against the
ResponsesStub. What the CLI needs from the stub is written down in test_codex_cli.py."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from npm_cli import CACHE_ROOT, install_npm, tail_of, version_words  # noqa: F401  (tail_of: the tests')

CODEX_VERSION = "0.171.0"  # the version the tester found the ignored OPENAI_BASE_URL with
CACHE = CACHE_ROOT / "codex"
RUN_TIMEOUT = 120  # seconds one codex exec run may take in a test
API_KEY = "sk-stub-codex-key"  # what the stub is sent (it checks none)
# the Rust target triple of the platform package's native binary (vendor/<triple>/bin/codex)
_TRIPLES = {("Linux", "x86_64"): "x86_64-unknown-linux-musl", ("Linux", "aarch64"): "aarch64-unknown-linux-musl",
            ("Darwin", "x86_64"): "x86_64-apple-darwin", ("Darwin", "arm64"): "aarch64-apple-darwin"}


def _find_codex() -> Path | None:
    """The native codex binary of the pinned version, from the platform package (the npm alias
    @openai/codex-<platform> of @openai/codex@<version>-<platform>), wherever npm put it."""
    triple = _TRIPLES.get((platform.system(), platform.machine()))
    if triple is None:
        return None
    modules = CACHE / "node_modules"
    candidates = sorted(modules.glob(f"@openai/codex*/vendor/{triple}/bin/codex"))
    candidates += sorted(modules.glob(f"@openai/codex/node_modules/@openai/codex-*/vendor/{triple}/bin/codex"))
    for candidate in candidates:
        if candidate.is_file() and (version_words(candidate, CACHE / "home") or [""])[-1] == CODEX_VERSION:
            return candidate
    return None


def install_codex() -> Path:
    """The real Codex CLI's native binary, installed once into tests/.cache/codex (pytest.skip without
    npm or the registry, or on a platform it ships no binary for)."""
    return install_npm("@openai/codex", CODEX_VERSION, CACHE, _find_codex)


def codex_env(home: Path, base_url: str) -> dict[str, str]:
    """A clean, offline, non-interactive environment: nothing inherited but PATH and the locale; the
    key is the stub's fake one, given the way a user gives it (OPENAI_API_KEY, OPENAI_BASE_URL), which
    codex itself ignores: the backend turns them into what it reads."""
    env = {key: os.environ[key] for key in ("PATH", "LANG", "LC_ALL", "TMPDIR") if key in os.environ}
    env.update({
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "OPENAI_BASE_URL": base_url,
        "OPENAI_API_KEY": API_KEY,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    })
    return env
