"""The real Gemini CLI (npm `@google/gemini-cli` 0.61.0) against the GeminiStub: alone, then as clude's
gemini backend finishing a team task in a worker (clude's sandbox included).

What gemini 0.61.0 did and needed, seen on the wire and in its bundle (run offline, in a network
namespace holding only loopback):
- Headless because stdin is not a terminal; the prompt comes on stdin. It relaunches itself once
  (node --max-old-space-size=..., GEMINI_CLI_NO_RELAUNCH set in the child): a run is two processes.
- Trust: in a folder its user never trusted it exits 55, headless, --yolo or not (plain red text on
  stderr, no JSON: "Gemini CLI is not running in a trusted directory. To proceed, either use
  `--skip-trust`, set the `GEMINI_CLI_TRUST_WORKSPACE=true` environment variable, ..."). Both ways
  work; GEMINI_CLI_TRUST_WORKSPACE="false" forces the exit even with trust on file. The backend sets
  the variable (env_defaults): the flag is newer and the CLI's parser is strict (an unknown flag exits 1).
- GOOGLE_GEMINI_BASE_URL: its content generator takes the base URL from it. But when it is set,
  gemini takes the auth type "gateway", which its own validation then refuses ("Invalid auth method
  selected.", exit 41, the JSON error on stderr): known since 0.44 (google-gemini/gemini-cli#27550),
  still so in 0.61. ~/.gemini/settings.json with {"security": {"auth": {"selectedType":
  "gemini-api-key"}}} makes it use GEMINI_API_KEY and still send to the base URL. No variable can say so.
- Requests (google-genai-sdk 1.30.0, header `x-goog-api-key`, user-agent `GeminiCLI-tui/0.61.0/...`):
  `POST /v1beta/models/{model}:generateContent` for its model router (model gemini-3.5-flash-lite,
  no tools, generationConfig.responseJsonSchema asking {"complexity_reasoning", "complexity_score"};
  an answer that is not that JSON is retried 5 times, then it routes anyway), then
  `POST /v1beta/models/{model}:streamGenerateContent?alt=sse` per main turn (the routed model,
  e.g. gemini-3.8-flash): systemInstruction, contents (a first user turn of <session_context> then
  the prompt), 15 functionDeclarations with parametersJsonSchema (write_file: file_path and content,
  both required; replace; run_shell_command; read_file; ...), generationConfig with thinkingConfig
  {includeThoughts, thinkingLevel: HIGH}. No countTokens, no model listing, no other host.
- Replies it accepted: SSE `data: {GenerateContentResponse}` frames (no [DONE]) with candidates[0]
  .content.parts text pieces, a last frame with a functionCall part {id, name, args}, finishReason
  STOP and usageMetadata {promptTokenCount, candidatesTokenCount, totalTokenCount}. It sends the call
  back with thoughtSignature "skip_thought_signature_validator" and answers it with a user turn
  holding functionResponse {id (ours), name, response: {output}}.
- Other network: usage statistics go to play.googleapis.com unless settings.json has privacy
  .usageStatisticsEnabled false (tests set it; no variable does); update checks are interactive only.
  It writes only under ~/.gemini (projects.json, installation_id, tmp/, history/), nothing in the tree.
- --output-format json prints {"session_id", "response", "stats": {"models": {NAME: {"api",
  "tokens": {"input", "prompt", "candidates", "total", "cached", "thoughts", "tool"}, "roles"}},
  "tools", "files"}} on stdout: tokens, no cost. A failure prints {"session_id", "error": {"type",
  "message", "code"}} on stderr, exiting with that code (a 401 from the API: exit 145, 401 & 255).
- Retries: a 429 is retried 10 times with 5-30 s waits (settings general.maxAttempts, no variable).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from agent_helpers import CALC_FIXED
from clude.config.loader import load_settings
from clude.llm.stubs import GeminiStub
from clude.team.backends import get_backend
from clude.team.backends.base import STDOUT_MARK
from clude.team.backends.results import read_result
from clude.team.protocol.admin import add_task, view
from clude.team.work.worker import EXIT_SETTLED, Worker, WorkerConfig
from gemini_cli import API_KEY, RUN_TIMEOUT, fixing_script, gemini_env, install_gemini
from npm_cli import on_path
from team_helpers import team_project, upstream_file, upstream_log

HELLO = "Hello from the scripted stub.\n"
FINAL = "Created hello.txt with the greeting."


@pytest.fixture(scope="session")
def gemini_bin() -> Path:
    """The real Gemini CLI (skips without npm or the registry)."""
    return install_gemini()


def backend_env(gemini: Path, tmp_path: Path, base_url: str, *, key_setting: bool = True,
                **variables: str) -> dict[str, str]:
    """A worker's environment where `gemini` on PATH is the installed CLI, against the stub."""
    env = gemini_env(tmp_path / "home", base_url, key_setting=key_setting)
    return on_path(gemini, "gemini", tmp_path / "bin", {**env, **variables})


def run_backend(env: dict[str, str], tmp_path: Path, prompt: str):
    """The gemini backend run once on `prompt` in tmp_path/work (no sandbox, no worker): the AgentRun."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    prompt_file = tmp_path / "prompt.md"
    prompt_file.write_text(prompt)
    return get_backend("gemini").run(prompt_file=prompt_file, workdir=work, task_id="TASK-001", agent_id="a1",
                                     env=env, log_path=tmp_path / "run.log", timeout_s=RUN_TIMEOUT)


def test_real_gemini_cli_writes_a_file_through_the_gemini_stub(gemini_bin, tmp_path):
    target = tmp_path / "work" / "hello.txt"
    turns: list[list[dict]] = []
    with GeminiStub(fixing_script(target, HELLO, FINAL, turns)) as stub:
        result = run_backend(backend_env(gemini_bin, tmp_path, stub.base_url), tmp_path,
                             "Create hello.txt containing a greeting.\n")
        requests, failures = list(stub.requests), list(stub.failures)

    log = result.log_path.read_text()
    assert not failures, failures
    assert result.exit_code == 0 and result.infra is None, log[-3000:]
    assert target.read_text() == HELLO
    assert sorted(path.name for path in target.parent.iterdir()) == ["hello.txt"]
    assert result.summary == FINAL

    printed = json.loads(log.split(STDOUT_MARK, 1)[1])  # what it printed on stdout
    assert printed["response"] == FINAL
    tokens = [model["tokens"] for model in printed["stats"]["models"].values()]
    assert tokens and all(isinstance(t["prompt"], int) and isinstance(t["candidates"], int) for t in tokens)
    assert result.tokens["prompt"] == sum(t["prompt"] for t in tokens) > 0
    assert printed["stats"]["tools"]["byName"]["write_file"]["success"] == 1

    # the main conversation: the prompt, then write_file's result answering our call id
    assert len(turns) == 2
    assert any("Create hello.txt" in (m["content"] or "") for m in turns[0] if m["role"] == "user")
    results = [m for m in turns[1] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in results] == ["fc_stub_write1"]
    assert "hello.txt" in results[0]["content"]

    paths = {(r["method"], r["path"].rsplit(":", 1)[-1], r["query"]) for r in requests}
    assert paths <= {("POST", "generateContent", ""), ("POST", "streamGenerateContent", "alt=sse")}, paths
    assert all(r["path"].startswith("/v1beta/models/") for r in requests)
    assert all(r["headers"].get("x-goog-api-key") == API_KEY for r in requests)


def test_an_untrusted_folder_is_exit_55_which_clude_names(gemini_bin, tmp_path):
    """The tester's failure: without the trust variable (here the user's own "false" wins over the
    backend's default) gemini exits 55 before any request, and clude names the variable."""
    with GeminiStub(["unused"]) as stub:
        env = backend_env(gemini_bin, tmp_path, stub.base_url, GEMINI_CLI_TRUST_WORKSPACE="false")
        result = run_backend(env, tmp_path, "Create hello.txt.\n")
        requests = list(stub.requests)
    assert result.exit_code == 55, result.log_path.read_text()[-2000:]
    assert "not running in a trusted directory" in result.log_path.read_text()
    assert (result.infra.kind, result.infra.name) == ("missing_env", "GEMINI_CLI_TRUST_WORKSPACE")
    assert result.infra.category == "environment"
    assert requests == [] and not list((tmp_path / "work").iterdir())


def test_a_base_url_needs_no_key_setting_of_the_user_the_runs_own_home_has_it(gemini_bin, tmp_path):
    """gemini 0.61's own bug (GOOGLE_GEMINI_BASE_URL makes it pick an auth type it then refuses, exit 41
    unless settings.json chooses the key): the backend gives each run a GEMINI_CLI_HOME whose
    .gemini/settings.json chooses it, so a user whose ~/.gemini says nothing gets a working run."""
    target = tmp_path / "work" / "hello.txt"
    with GeminiStub(fixing_script(target, HELLO, FINAL)) as stub:
        result = run_backend(backend_env(gemini_bin, tmp_path, stub.base_url, key_setting=False), tmp_path,
                             "Create hello.txt containing a greeting.\n")
        failures = list(stub.failures)
    assert not failures, failures
    assert result.exit_code == 0 and result.infra is None, result.log_path.read_text()[-2000:]
    assert target.read_text() == HELLO
    assert not (tmp_path / "run.gemini_cli_home").exists()  # beside the run's log while it ran, then removed
    assert "selectedType" not in (tmp_path / "home" / ".gemini" / "settings.json").read_text()
    settings = json.loads(get_backend("gemini").spec.config_home.text)  # what that run was given
    assert settings["security"]["auth"]["selectedType"] == "gemini-api-key"
    assert settings["privacy"]["usageStatisticsEnabled"] is False


def test_the_gemini_backend_completes_a_team_task_end_to_end(gemini_bin, tmp_path):
    """A worker runs the real CLI as the gemini backend (its own env_defaults giving the trust, in
    clude's sandbox): claim, write_file fixes calc.py, the harness verifies, the work lands."""
    root, upstream = team_project(tmp_path)
    settings, _ = load_settings(root)
    task, _ = add_task(view(root, upstream), {"max_attempts": settings.team.max_attempts, "title": "Fix mean",
                                              "tests": "test_calc.py::test_mean"})
    target = tmp_path / "agents" / "a1" / "work" / "calc.py"
    script = fixing_script(target, CALC_FIXED, "Fixed mean(): it divided by len(values) + 1.")
    with GeminiStub(script) as stub:
        env = backend_env(gemini_bin, tmp_path, stub.base_url)
        assert "GEMINI_CLI_TRUST_WORKSPACE" not in env  # the backend's default must do it
        w = Worker(WorkerConfig(agent_id="a1", upstream=upstream, workdir=tmp_path / "agents" / "a1",
                                state_dir=tmp_path / "state", backend=get_backend("gemini"),
                                settings=settings, env=env, sleep=lambda s: None))
        assert w.run() == EXIT_SETTLED
        failures = list(stub.failures)
    assert not failures, failures
    assert upstream_file(upstream, "calc.py") == CALC_FIXED
    assert f"done {task.id}: Fix mean (agent a1)" in upstream_log(upstream)
    assert "Fixed mean()" in upstream_file(upstream, "PROGRESS.md")


# the stub and the reader alone (no CLI) -------------------------------------------------------
def _post(url: str, body: dict) -> tuple[int, dict | str]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "x-goog-api-key": API_KEY})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()
            return response.status, (json.loads(text) if "json" in response.headers["Content-Type"] else text)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_gemini_stub_speaks_generate_content_stream_count_tokens_and_errors():
    call = {"name": "write_file", "arguments": {"file_path": "/w/a.txt", "content": "x"}, "id": "fc_1"}
    script = [{"text": "Hi there.", "usage": {"input_tokens": 7, "output_tokens": 3}},
              {"text": "Writing.", "tool_calls": [call]}, {"status": 429, "retry_after": 30}]
    body = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}],
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "tools": [{"functionDeclarations": [{"name": "write_file", "parametersJsonSchema": {"type": "object"}}]}]}
    with GeminiStub(script) as stub:
        base = f"{stub.base_url}/v1beta/models/gemini-x"
        status, reply = _post(f"{base}:generateContent", body)
        assert status == 200
        assert reply["candidates"][0]["content"] == {"role": "model", "parts": [{"text": "Hi there."}]}
        assert reply["candidates"][0]["finishReason"] == "STOP"
        assert reply["usageMetadata"] == {"promptTokenCount": 7, "candidatesTokenCount": 3, "totalTokenCount": 10}
        status, stream = _post(f"{base}:streamGenerateContent?alt=sse", body)
        frames = [json.loads(line[6:]) for line in stream.splitlines() if line.startswith("data: ")]
        parts = [part for frame in frames for part in frame["candidates"][0]["content"]["parts"]]
        assert "".join(part.get("text", "") for part in parts) == "Writing."
        assert parts[-1]["functionCall"] == {"id": "fc_1", "name": "write_file",
                                             "args": {"file_path": "/w/a.txt", "content": "x"}}
        assert frames[-1]["candidates"][0]["finishReason"] == "STOP" and "usageMetadata" in frames[-1]
        status, error = _post(f"{base}:generateContent", body)
        assert status == 429 and error["error"]["status"] == "RESOURCE_EXHAUSTED"
        assert error["error"]["details"][0]["retryDelay"] == "30s"
        assert _post(f"{base}:countTokens", {"contents": body["contents"]}) == (200, {"totalTokens": 1})
        assert _post(f"{base}:nothing", body)[0] == 404
        chats = list(stub.chats)
    assert chats[0]["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
    assert chats[0]["tools"][0]["function"]["name"] == "write_file"


def test_the_gemini_stub_reads_a_function_response_as_the_tool_message():
    seen = []
    contents = [{"role": "user", "parts": [{"text": "Fix it"}]},
                {"role": "model", "parts": [{"functionCall": {"id": "fc_9", "name": "replace", "args": {"a": 1}},
                                             "thoughtSignature": "skip_thought_signature_validator"}]},
                {"role": "user", "parts": [{"functionResponse": {"id": "fc_9", "name": "replace",
                                                                 "response": {"output": "Replaced 1."}}}]}]
    with GeminiStub(lambda messages, tools: seen.append(messages) or "Done.") as stub:
        assert _post(f"{stub.base_url}/v1beta/models/m:generateContent", {"contents": contents})[0] == 200
    assert seen[0][1]["tool_calls"][0]["id"] == "fc_9"
    assert json.loads(seen[0][1]["tool_calls"][0]["function"]["arguments"]) == {"a": 1}
    assert seen[0][2] == {"role": "tool", "tool_call_id": "fc_9", "name": "replace", "content": "Replaced 1."}


GEMINI_STATS = {"session_id": "s1", "response": "Fixed mean().", "stats": {"models": {
    "gemini-3.5-flash-lite": {"tokens": {"input": 30, "prompt": 30, "candidates": 5, "total": 35}},
    "gemini-3.8-flash": {"tokens": {"input": 70, "prompt": 70, "candidates": 10, "total": 80}}}}}


@pytest.mark.parametrize("stdout, stderr, exit_code, kind", [
    (json.dumps(GEMINI_STATS, indent=2), "YOLO mode is enabled.", 0, None),
    ("", '{"session_id": "s", "error": {"type": "Error", "message": "{\\"error\\":{\\"code\\":401}}", '
         '"code": 401}}', 145, "auth"),
    ("", '{\n  "error": {"type": "Error", "message": "Invalid auth method selected.", "code": 41}\n}', 41, "auth"),
    ("", '{"error": {"type": "ApiError", "message": "Service unavailable", "code": 503}}', 1, "server_error"),
    ("", "\x1b[31mGemini CLI is not running in a trusted directory. To proceed, ...\x1b[0m", 55, "missing_env"),
])
def test_the_gemini_reader_finds_the_result_on_stdout_and_the_error_on_stderr(stdout, stderr, exit_code, kind):
    outcome = read_result("gemini", stdout, stderr + "\n" + stdout, exit_code)
    assert (outcome.infra.kind if outcome.infra else None) == kind
    if kind is None:
        assert outcome.summary == "Fixed mean()."
        assert outcome.tokens == {"input": 100, "prompt": 100, "candidates": 15, "total": 115}
        assert outcome.cost_usd is None  # gemini reports no cost
