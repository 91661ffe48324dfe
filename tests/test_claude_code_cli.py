"""The real Claude Code CLI (`claude -p`) completes a scripted session through the AnthropicStub.

What claude 2.1.330 (npm `@anthropic-ai/claude-code`, native binary) needed from the stub, as seen on
the wire with CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC set and without it (the same traffic both ways):
- `HEAD /api/hello` first (a connectivity preconnect, user-agent Bun/...): answered 200, no body.
  The stub used to answer 501 (the CLI carried on regardless); it now answers HEAD like GET.
- `POST /v1/messages?beta=true` (the query string must be ignored by the routing), headers
  `x-api-key` (ANTHROPIC_API_KEY), `anthropic-version: 2023-06-01`, `anthropic-beta: claude-code-20250219,
  ...`, `x-app: cli`, `x-claude-code-session-id`, user-agent `claude-cli/2.1.330 (external, sdk-cli)`.
  Always `stream: true`, max_tokens 128000, model claude-opus-5-5, `system` as a list of text blocks
  with cache_control, extra fields `thinking` {"type": "adaptive"}, `context_management`,
  `output_config`, `metadata` (ignored by the stub), 12 tools (Write's input_schema: file_path
  (absolute) and content, both required, additionalProperties false), and messages that hold a
  mid-conversation `{"role": "system", "content": str}` turn and tool_result blocks with a string
  content and cache_control.
- The SSE stream the stub already sent was enough: message_start, content_block_start/delta/stop for a
  text block and a tool_use block (input_json_delta fragments), message_delta with stop_reason and
  usage.output_tokens, message_stop, then the connection closing. No thinking blocks are needed.
- No side requests (title, quota, count_tokens, /v1/models) were made in -p mode by this version; the
  script still answers any request without the Write tool with plain text.
- Running as root, `--allowedTools Write,Edit,Bash` lets Write run in -p mode without a prompt
  (permission_denials is empty); --dangerously-skip-permissions is not used.

Install: the npm package ships a placeholder bin/claude.exe and its native binary in a per-platform
optional dependency (`@anthropic-ai/claude-code-linux-x64`, ...) fetched from the npm registry itself;
the postinstall script (install.cjs) only copies/links that binary over the placeholder, with no
download from elsewhere, so it works offline after `npm install`. Node >= 22 is declared but the
native binary does not use node. Should a future npm skip the postinstall, the test runs the platform
package's binary directly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from claude_code import API_KEY, RUN_TIMEOUT, claude_env, install_claude, tail_of, write_arguments
from clude.llm.stubs import AnthropicStub


HELLO = "Hello from the scripted stub.\n"
FINAL = "Created hello.txt with the greeting."


@pytest.fixture(scope="session")
def claude_bin() -> Path:
    """The real Claude Code CLI (skips without npm or the registry)."""
    return install_claude()


def run_claude(claude: Path, cwd: Path, env: dict[str, str], prompt: str) -> subprocess.CompletedProcess:
    """`claude -p prompt --output-format json --allowedTools Write,Edit,Bash`, its process group killed
    on timeout."""
    args = [str(claude), "-p", prompt, "--output-format", "json", "--allowedTools", "Write,Edit,Bash"]
    process = subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"claude -p did not finish in {RUN_TIMEOUT} s\nstdout: {tail_of(out)}\n"
                    f"stderr: {tail_of(err)}")
    return subprocess.CompletedProcess(args, process.returncode, out, err)


def test_real_claude_cli_writes_a_file_through_the_anthropic_stub(claude_bin, tmp_path):
    project, home = tmp_path / "project", tmp_path / "home"
    project.mkdir()
    home.mkdir()
    target = project / "hello.txt"
    main_turns: list[list[dict]] = []
    side_requests: list[list[dict]] = []

    def script(messages, tools):
        names = {tool["function"]["name"] for tool in tools or []}
        if "Write" not in names:  # a side request (title, topic, quota): plain text
            side_requests.append(messages)
            return "Stub side answer"
        main_turns.append(messages)
        results = [message for message in messages if message["role"] == "tool"]
        if not results:
            return {"text": "I'll create hello.txt.", "tool_calls": [
                {"id": "toolu_stub_write1", "name": "Write",
                 "arguments": write_arguments(tools, target, HELLO)}]}
        return FINAL

    with AnthropicStub(script) as stub:
        done = run_claude(claude_bin, project, claude_env(home, stub.base_url),
                          "Create hello.txt containing a greeting.")
        requests, failures = list(stub.requests), list(stub.failures)

    assert not failures, failures
    assert done.returncode == 0, (f"exit {done.returncode}\nstdout: {tail_of(done.stdout)}\n"
                                  f"stderr: {tail_of(done.stderr)}")
    assert target.read_text() == HELLO

    result = json.loads(done.stdout)
    assert result["type"] == "result"
    assert result["subtype"] == "success"
    assert result["is_error"] is False
    assert result["result"] == FINAL
    assert isinstance(result["session_id"], str) and result["session_id"]
    assert result["num_turns"] == 2
    if "total_cost_usd" in result:
        assert isinstance(result["total_cost_usd"], (int, float)) and result["total_cost_usd"] >= 0
    assert result.get("permission_denials", []) == []

    # the main conversation: the task, then the Write's result answering our call id
    assert len(main_turns) == 2, (len(main_turns), len(side_requests))
    tool_results = [message for message in main_turns[1] if message["role"] == "tool"]
    assert [message["tool_call_id"] for message in tool_results] == ["toolu_stub_write1"]
    assert not tool_results[0].get("is_error"), tool_results[0]
    assert "hello.txt" in tool_results[0]["content"]
    assert any("Create hello.txt" in (message["content"] or "") for message in main_turns[0]
               if message["role"] == "user")

    chats = [request for request in requests if request["method"] == "POST"
             and request["path"] == "/v1/messages"]
    assert len(chats) == len(main_turns) + len(side_requests)
    for request in chats:
        assert request["headers"].get("x-api-key") == API_KEY
        assert request["headers"].get("anthropic-version")
    assert all(request["path"] in ("/v1/messages", "/v1/messages/count_tokens", "/api/hello",
                                   "/v1/models") or request["path"].startswith("/v1/models/")
               for request in requests), [(r["method"], r["path"]) for r in requests]


def test_stub_answers_the_cli_preconnect_probe():
    """HEAD /api/hello (what the CLI sends first) gets a 200 with no body; GET gets the JSON."""
    with AnthropicStub(["unused"]) as stub:
        head = urllib.request.Request(stub.base_url + "/api/hello", method="HEAD")
        with urllib.request.urlopen(head, timeout=10) as response:
            assert response.status == 200
            assert response.read() == b""
        with urllib.request.urlopen(stub.base_url + "/api/hello", timeout=10) as response:
            assert json.loads(response.read()) == {"status": "ok"}
        missing = urllib.request.Request(stub.base_url + "/v1/nothing", method="HEAD")
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(missing, timeout=10)
        assert error.value.code == 404
        assert [(r["method"], r["path"]) for r in stub.requests] == [
            ("HEAD", "/api/hello"), ("GET", "/api/hello"), ("HEAD", "/v1/nothing")]
