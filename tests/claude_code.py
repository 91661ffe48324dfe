"""The real Claude Code CLI for tests: installed once from npm into tests/.cache/claude-code (npm_cli.py;
skipped when node, npm or the registry is missing), and the clean offline environment it runs in against the
AnthropicStub. What the CLI needs from the stub is written down in test_claude_code_cli.py."""

from __future__ import annotations

from pathlib import Path

from npm_cli import CACHE_ROOT, install_npm, offline_env, tail_of, version_words  # noqa: F401  (tail_of: used by the tests)

CLAUDE_CODE_VERSION = "2.1.330"  # `npm view @anthropic-ai/claude-code version` on 2026-11-23
CACHE = CACHE_ROOT / "claude-code"
RUN_TIMEOUT = 120  # seconds one claude -p run may take in a test
API_KEY = "sk-ant-stub-key"  # what the stub is sent (it checks none)


def _binary_version(path: Path) -> str | None:
    """The version `path --version` prints, or None when it does not run."""
    words = version_words(path, CACHE / "home")
    return words[0] if words else None


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
    return install_npm("@anthropic-ai/claude-code", CLAUDE_CODE_VERSION, CACHE, _find_claude)


def claude_env(home: Path, base_url: str) -> dict[str, str]:
    """A clean, offline, non-interactive environment: nothing inherited but PATH and the locale."""
    env = offline_env(home)
    env.update({
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": API_KEY,
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_BUG_COMMAND": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    })
    return env


def write_arguments(tools: list[dict], path: Path, content: str, tool: str = "Write") -> dict:
    """The input of a call of the file-writing `tool` (Claude Code's Write, Gemini CLI's write_file),
    built from the input schema the CLI sent (not assumed)."""
    write = next(spec["function"] for spec in tools if spec["function"]["name"] == tool)
    schema = write["parameters"]
    properties = schema.get("properties", {})
    path_keys = [key for key in properties if "path" in key]
    assert len(path_keys) == 1 and "content" in properties, f"unexpected {tool} schema: {schema}"
    arguments = {path_keys[0]: str(path), "content": content}
    missing = set(schema.get("required", [])) - set(arguments)
    assert not missing, f"{tool} requires {sorted(missing)} too: {schema}"
    return arguments
