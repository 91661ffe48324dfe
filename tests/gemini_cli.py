"""The real Gemini CLI for tests: installed once from npm into tests/.cache/gemini-cli (npm_cli.py;
skipped when node, npm or the registry is missing), and the clean offline environment it runs in against
the GeminiStub. What the CLI needs from the stub is written down in test_gemini_cli.py."""

from __future__ import annotations

import json
from pathlib import Path

from claude_code import write_arguments
from npm_cli import CACHE_ROOT, install_npm, offline_env, version_words

GEMINI_CLI_VERSION = "0.61.0"  # the version the tester found the trust exit (55) with
CACHE = CACHE_ROOT / "gemini-cli"
RUN_TIMEOUT = 120  # seconds one gemini run may take in a test
API_KEY = "stub-gemini-key"  # what the stub is sent (it checks none)


def _find_gemini() -> Path | None:
    """The installed gemini program (node_modules/.bin/gemini, a node script) of the pinned version."""
    program = CACHE / "node_modules" / ".bin" / "gemini"
    if program.exists() and (version_words(program, CACHE / "home") or [""])[-1] == GEMINI_CLI_VERSION:
        return program
    return None


def install_gemini() -> Path:
    """The real Gemini CLI, installed once into tests/.cache/gemini-cli (pytest.skip without npm or
    the registry)."""
    return install_npm("@google/gemini-cli", GEMINI_CLI_VERSION, CACHE, _find_gemini)


def gemini_env(home: Path, base_url: str, *, key_setting: bool = True) -> dict[str, str]:
    """A clean, offline, non-interactive environment: nothing inherited but PATH and the locale, the
    API key the stub's fake one. Writes home/.gemini/settings.json:
    usage statistics off (else it posts them to play.googleapis.com) and, with `key_setting`, the key
    chosen as the auth method (without it gemini 0.61 refuses GOOGLE_GEMINI_BASE_URL: exit 41)."""
    settings: dict = {"privacy": {"usageStatisticsEnabled": False}}
    if key_setting:
        settings["security"] = {"auth": {"selectedType": "gemini-api-key"}}
    (home / ".gemini").mkdir(parents=True, exist_ok=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    env = offline_env(home)
    env.update({"GOOGLE_GEMINI_BASE_URL": base_url, "GEMINI_API_KEY": API_KEY,
                "GEMINI_TELEMETRY_ENABLED": "false", "NO_BROWSER": "true"})
    return env


def fixing_script(target: Path, content: str, final: str, seen: list | None = None):
    """A GeminiStub script: the main turn writes `content` to `target` with write_file, then ends with
    `final`; the model router's side request (no tools, a JSON schema asking for a complexity score)
    gets that JSON; `seen` collects the main turns' messages."""

    def script(messages, tools):
        names = {tool["function"]["name"] for tool in tools or []}
        if "write_file" not in names:
            system = " ".join(m["content"] or "" for m in messages if m["role"] == "system")
            if "Complexity Score" in system:
                return json.dumps({"complexity_reasoning": "One small edit.", "complexity_score": 10})
            return "Stub side answer"
        if seen is not None:
            seen.append(messages)
        if not any(message["role"] == "tool" for message in messages):
            return {"text": "I'll write the file.", "tool_calls": [
                {"id": "fc_stub_write1", "name": "write_file",
                 "arguments": write_arguments(tools, target, content, tool="write_file")}]}
        return final

    return script
