"""The codex backend against the real Codex CLI (`codex exec --json`) and the ResponsesStub: a direct run,
a whole team task through a Worker, and the backend's data (credentials, env_from, config_home).

What codex 0.171.0 (npm `@openai/codex`, native binary) needed, as seen on the wire:
- It reads neither OPENAI_API_KEY nor OPENAI_BASE_URL. Its built-in provider takes the key from
  CODEX_API_KEY (or ~/.codex/auth.json) and a server from `openai_base_url` in $CODEX_HOME/config.toml;
  with it, codex first opens a Responses WebSocket: `GET /v1/responses` with `Upgrade: websocket`,
  `openai-beta: responses_websockets=2026-02-06`. Answered 426 it falls back to HTTP at once; 405 or a
  5xx are retried for about 8 s before it does; 400 or 404 end the turn ("turn.failed"). So the
  backend names the server as a provider of its own (`model_provider = "clude"`, `[model_providers.clude]`
  base_url, env_key = "CODEX_API_KEY", wire_api = "responses"), which never tries a WebSocket, in a
  config.toml of a CODEX_HOME made for the run beside its log; the stub still answers the upgrade 426.
- One `POST /v1/responses` per model turn: `authorization: Bearer <key>`, `accept: text/event-stream`,
  `originator: codex_exec`, user-agent `codex_exec/0.171.0 (...)`, `x-openai-internal-codex-responses-lite:
  true`, session/thread ids and `x-codex-turn-metadata` headers. Body: model (gpt-6.2-sol by default),
  stream true, store false, parallel_tool_calls false, reasoning {"effort": "low"}, include
  ["reasoning.encrypted_content"], prompt_cache_key, text {"verbosity": "low"}, client_metadata, no
  `instructions` and no `tools` field: the tools come as the first input item, {"type": "additional_tools",
  "role": "developer", "tools": [namespaces]}, then developer messages (its system prompt, skills, agent
  role), a user message with <environment_context>, the prompt, and later function/custom call items and
  their *_output items (custom_tool_call_output: a string).
- Its tools ("code mode"): a freeform custom tool `exec` (lark grammar: optional `// @exec: {...}` pragma
  line, then JavaScript run in a V8 isolate) whose `tools.apply_patch(patch)` and
  `tools.exec_command({cmd})` do the work, a `wait` function, and namespaces clock and collaboration.
  The model acts by a custom_tool_call named exec whose input is the script.
- The SSE stream it needs: `event:`/`data:` frames; response.output_item.done items and a final
  response.completed whose response has an id and a usage with input_tokens, input_tokens_details
  .cached_tokens, output_tokens, output_tokens_details.reasoning_tokens and total_tokens. The stub sends the
  whole sequence (created, in_progress, output_item.added, content_part/output_text or
  custom_tool_call_input or function_call_arguments deltas and done, output_item.done, completed).
- `codex exec --json` prints thread.started, turn.started, item.started/completed (file_change,
  agent_message), and turn.completed with usage {input_tokens, cached_input_tokens,
  cache_write_input_tokens, output_tokens, reasoning_output_tokens}: the tokens AgentRun carries.
- Its own sandbox (a bundled bubblewrap) cannot start inside clude's ("bwrap: setting up uid map: Operation
  not permitted"): under `--sandbox workspace-write` every apply_patch failed ("Failed to write file"), so
  the backend runs it with --dangerously-bypass-approvals-and-sandbox inside clude's sandbox.
- With CODEX_HOME under the temporary folder it warns "Refusing to create helper binaries under temporary
  dir" and goes on; apply_patch works without them when its own sandbox is off.
- No other request (no /v1/models, no telemetry) reached the stub.

Install: the npm package's bin/codex.js only execs the native binary of the per-platform optional
dependency (`@openai/codex-linux-x64` = `npm:@openai/codex@0.171.0-linux-x64`,
vendor/<triple>/bin/codex, with codex-code-mode-host, rg and bwrap beside it); the tests run it directly.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from agent_helpers import CALC_FIXED
from codex_cli import API_KEY, RUN_TIMEOUT, codex_env, install_codex, tail_of
from clude.llm.stubs import ResponsesStub
from clude.team.backends import agent_env, get_backend
from clude.team.backends.results import read_result
from clude.team.work.worker import EXIT_SETTLED
from npm_cli import on_path
from team_helpers import backend_worker, team_project, upstream_file, upstream_log

SECRET = "unrelated-secret-value-123"
PATCH = """*** Begin Patch
*** Update File: calc.py
@@ def mean(values):
-    return sum(values) / (len(values) + 1)
+    return sum(values) / len(values)
*** End Patch
"""
FINAL = "Fixed mean(): it divided by len(values) + 1."


@pytest.fixture(scope="session")
def codex_bin() -> Path:
    """The real Codex CLI (skips without npm or the registry)."""
    return install_codex()


def codex_user_env(codex: Path, tmp_path: Path, base_url: str) -> dict[str, str]:
    """A worker's environment where `codex` on PATH is the installed CLI, and the server and key are
    given the way a user gives them (OPENAI_BASE_URL, OPENAI_API_KEY)."""
    (tmp_path / "home").mkdir(exist_ok=True)
    env = on_path(codex, "codex", tmp_path / "bin", codex_env(tmp_path / "home", base_url))
    return {**env, "UNRELATED_SECRET_TOKEN": SECRET}


def patch_script(seen: list):
    """The scripted model: an exec call applying PATCH, then its final words (text for side requests)."""
    def script(messages, tools):
        if "exec" not in {tool["function"]["name"] for tool in tools or []}:
            return "Stub side answer"
        seen.append(messages)
        if not any(message["role"] == "tool" for message in messages):
            code = f"const result = await tools.apply_patch({json.dumps(PATCH)});\ntext(result);\n"
            return {"text": "I'll fix the divisor.", "tool_calls": [
                {"id": "call_fix", "name": "exec", "arguments": {"input": code}}]}
        return FINAL
    return script


def run_codex(codex: Path, work: Path, env: dict[str, str], prompt: str) -> subprocess.CompletedProcess:
    args = [str(codex), "exec", "--json", "--skip-git-repo-check", "-C", str(work), "-"]
    try:
        return subprocess.run(args, input=prompt, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"codex exec did not finish in {RUN_TIMEOUT} s\nstdout: {tail_of(str(error.stdout))}")


def test_codex_exec_answers_through_the_backends_config_home(codex_bin, tmp_path):
    """codex exec with the environment and CODEX_HOME the backend makes of OPENAI_* against the stub:
    one POST /v1/responses, the key as a bearer token, the final words and usage read back."""
    work = tmp_path / "work"
    work.mkdir()
    backend = get_backend("codex")
    with ResponsesStub(["Hello from the scripted stub."]) as stub:
        user = codex_user_env(codex_bin, tmp_path, stub.base_url)
        env = agent_env(backend, user, agent_id="a1", task_id="T-1")
        env.update(backend.spec.config_home.write(user, tmp_path / "runs" / "T-1_attempt_1.log"))
        done = run_codex(codex_bin, work, env, "Say hello.")
        requests, chats = list(stub.requests), list(stub.chats)
    assert done.returncode == 0, f"stdout: {tail_of(done.stdout)}\nstderr: {tail_of(done.stderr)}"
    assert env["CODEX_HOME"] == str(tmp_path / "runs" / "T-1_attempt_1.codex_home")
    assert API_KEY not in (Path(env["CODEX_HOME"]) / "config.toml").read_text()
    assert [(r["method"], r["path"]) for r in requests] == [("POST", "/v1/responses")]
    assert requests[0]["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert requests[0]["body"]["stream"] is True
    assert requests[0]["body"]["input"][0]["type"] == "additional_tools"
    assert chats[0]["messages"][-1] == {"role": "user", "content": "Say hello."}
    assert SECRET not in json.dumps(requests)
    outcome = read_result("codex", done.stdout, done.stdout + done.stderr, done.returncode)
    assert outcome.summary == "Hello from the scripted stub."
    assert outcome.infra is None
    assert outcome.tokens["input_tokens"] > 0 and outcome.tokens["output_tokens"] > 0


def test_codex_falls_back_from_the_websocket_to_http_on_426(codex_bin, tmp_path):
    """The built-in provider (openai_base_url) tries a WebSocket first: the stub's 426 sends it to HTTP."""
    work, codex_home = tmp_path / "work", tmp_path / "codex_home"
    work.mkdir()
    codex_home.mkdir()
    with ResponsesStub(["Over HTTP."]) as stub:
        env = codex_user_env(codex_bin, tmp_path, stub.base_url)
        env.update({"CODEX_HOME": str(codex_home), "CODEX_API_KEY": API_KEY})
        (codex_home / "config.toml").write_text(f"openai_base_url = {json.dumps(stub.base_url)}\n")
        done = run_codex(codex_bin, work, env, "Say hello.")
        requests = list(stub.requests)
    assert done.returncode == 0, f"stdout: {tail_of(done.stdout)}\nstderr: {tail_of(done.stderr)}"
    assert [(r["method"], r["path"]) for r in requests] == [("GET", "/v1/responses"), ("POST", "/v1/responses")]
    assert requests[0]["headers"]["upgrade"] == "websocket"
    assert read_result("codex", done.stdout, done.stdout, 0).summary == "Over HTTP."


def test_the_codex_backend_completes_a_task_end_to_end(codex_bin, tmp_path):
    """The real CLI run by a worker with get_backend("codex"), in clude's sandbox, against the stub:
    claim, codex's exec tool applies a patch to calc.py, the harness verifies, the work lands."""
    root, upstream = team_project(tmp_path)
    from test_team_flow import add
    task = add(root, upstream, title="Fix mean", tests="test_calc.py::test_mean")
    seen: list = []
    with ResponsesStub(patch_script(seen)) as stub:
        env = codex_user_env(codex_bin, tmp_path, stub.base_url)
        assert backend_worker(root, upstream, tmp_path, get_backend("codex"), env).run() == EXIT_SETTLED
        requests = list(stub.requests)
    assert upstream_file(upstream, "calc.py") == CALC_FIXED
    assert f"done {task}: Fix mean (agent a1)" in upstream_log(upstream)
    assert "Fixed mean()" in upstream_file(upstream, "PROGRESS.md")
    result = [m for m in seen[-1] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in result] == ["call_fix"] and "Script completed" in result[0]["content"]
    assert all(r["headers"].get("authorization") == f"Bearer {API_KEY}" for r in requests)
    from clude.team.logs.events import read_events
    finished = [e for e in read_events(tmp_path / "state") if e["kind"] == "agent_finished"]
    assert finished[0]["tokens"]["input_tokens"] > 0
    runs = tmp_path / "agents" / "a1" / "runs"
    homes = sorted(runs.glob("*.codex_home"))
    assert homes == []  # beside the log while it ran (never in the tree), removed when it ended
    assert upstream_file(upstream, "config.toml") is None
    for log in runs.glob("*.log"):
        assert API_KEY not in log.read_text(errors="replace")


# the backend's data, without the CLI ------------------------------------------------------------------
def test_codex_gets_the_openai_key_as_codex_api_key_unless_it_is_set():
    backend = get_backend("codex")
    env = agent_env(backend, {"OPENAI_API_KEY": "k1"}, agent_id="a1", task_id="T")
    assert env["CODEX_API_KEY"] == "k1" and env["OPENAI_API_KEY"] == "k1"
    env = agent_env(backend, {"OPENAI_API_KEY": "k1", "CODEX_API_KEY": "k2"}, agent_id="a1", task_id="T")
    assert env["CODEX_API_KEY"] == "k2"
    assert "CODEX_API_KEY" not in agent_env(backend, {}, agent_id="a1", task_id="T")


def test_the_config_home_is_made_only_with_a_base_url_and_never_names_a_key(tmp_path):
    home = get_backend("codex").spec.config_home
    assert home.write({"OPENAI_API_KEY": "k"}, tmp_path / "x.log") == {}
    made = home.write({"OPENAI_BASE_URL": 'http://h/v1"q'}, tmp_path / "x.log")
    text = (Path(made["CODEX_HOME"]) / "config.toml").read_text()
    assert 'base_url = "http://h/v1\\"q"' in text  # quoted: a value cannot break out of its string
    from clude.team.backends.agent_files import config_home
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        config_home("x", {"var": "X_HOME", "when": "A", "file": "c.toml", "text": "k = {OPENAI_API_KEY}"},
                    ("OPENAI_API_KEY",))
    for outside in ("../c.toml", "/etc/c.toml", "a/../../c.toml", "."):
        with pytest.raises(ValueError, match="a path inside the folder"):
            config_home("x", {"var": "X_HOME", "when": "A", "file": outside, "text": "k = 1"}, ())
    nested = config_home("x", {"var": "X_HOME", "when": "A", "file": ".x/settings.json", "text": "{}"}, ())
    made = nested.write({"A": "1"}, tmp_path / "y.log")
    assert (Path(made["X_HOME"]) / ".x" / "settings.json").read_text() == "{}"


def test_only_the_newest_run_folders_are_kept(tmp_path):
    from clude.team.backends.agent_files import KEPT_HOMES

    home = get_backend("codex").spec.config_home
    for n in range(KEPT_HOMES + 3):
        made = Path(home.write({"OPENAI_BASE_URL": "http://h/v1"}, tmp_path / f"T_attempt_{n}.log")["CODEX_HOME"])
        os.utime(made, (n, n))
    kept = sorted(p.name for p in tmp_path.glob("*.codex_home"))
    assert len(kept) == KEPT_HOMES and "T_attempt_0.codex_home" not in kept and "T_attempt_2.codex_home" not in kept


def test_codex_usage_is_read_as_tokens():
    stdout = "\n".join(json.dumps(e) for e in [
        {"type": "turn.completed", "usage": {"input_tokens": 10, "cached_input_tokens": 4, "output_tokens": 3}},
        {"type": "item.completed", "item": {"type": "agent_message", "text": "done"}},
        {"type": "turn.completed", "usage": {"input_tokens": 5, "cached_input_tokens": 0, "output_tokens": 2}}])
    outcome = read_result("codex", stdout, stdout, 0)
    assert outcome.tokens == {"input_tokens": 15, "cached_input_tokens": 4, "output_tokens": 5}
    assert read_result("codex", '{"type": "turn.started"}', "", 0).tokens is None


# the stub itself, through the OpenAI SDK's Responses client ------------------------------------------
def test_the_responses_stub_streams_text_custom_and_function_calls_to_the_sdk():
    import openai

    tools = [{"type": "custom", "name": "apply_patch", "description": "edit files"},
             {"type": "function", "name": "read", "description": "read a file", "parameters": {
                 "type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}]
    script = [{"text": "Patching.", "tool_calls": [
        {"id": "call_a", "name": "apply_patch", "arguments": {"input": PATCH}},
        {"id": "call_b", "name": "read", "arguments": {"path": "calc.py"}}], "usage": {"input_tokens": 7}},
        "Plain words.", {"status": 429, "retry_after": 1}]
    with ResponsesStub(script) as stub:
        client = openai.OpenAI(base_url=stub.base_url, api_key=API_KEY, max_retries=0)
        events = list(client.responses.create(model="m", input="Fix it.", tools=tools, stream=True))
        answer = client.responses.create(model="m", instructions="Be brief.", input=[
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Fix it."}]},
            {"type": "custom_tool_call", "call_id": "call_a", "name": "apply_patch", "input": PATCH},
            {"type": "custom_tool_call_output", "call_id": "call_a", "output": "Done!"}])
        with pytest.raises(openai.RateLimitError):
            client.responses.create(model="m", input="again")
        chats = list(stub.chats)
    kinds = [event.type for event in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert kinds[-1] == "response.completed"
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert "response.custom_tool_call_input.delta" in kinds and "response.function_call_arguments.done" in kinds
    final = events[-1].response
    assert final.output_text == "Patching."
    message, custom, function = final.output
    assert (custom.type, custom.call_id, custom.name, custom.input) == ("custom_tool_call", "call_a",
                                                                        "apply_patch", PATCH)
    assert (function.type, function.call_id, json.loads(function.arguments)) == ("function_call", "call_b",
                                                                                 {"path": "calc.py"})
    assert final.usage.input_tokens == 7 and final.usage.output_tokens > 0
    assert answer.output_text == "Plain words." and answer.status == "completed"
    names = [tool["function"]["name"] for tool in chats[0]["tools"]]
    assert names == ["apply_patch", "read"]
    assert chats[0]["tools"][0]["function"]["parameters"]["required"] == ["input"]
    assert chats[1]["messages"] == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Fix it."},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_a", "type": "function", "function": {
            "name": "apply_patch", "arguments": json.dumps({"input": PATCH})}}]},
        {"role": "tool", "tool_call_id": "call_a", "content": "Done!"}]


def test_the_responses_stub_refuses_the_websocket_with_426_and_serves_chat_completions():
    import urllib.error
    import urllib.request

    with ResponsesStub(["chat answer"]) as stub:
        upgrade = urllib.request.Request(stub.base_url + "/responses", headers={"Upgrade": "websocket"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(upgrade, timeout=10)
        import openai
        chat = openai.OpenAI(base_url=stub.base_url, api_key=API_KEY).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}])
    assert refused.value.code == 426
    assert chat.choices[0].message.content == "chat answer"
