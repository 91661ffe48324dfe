"""Team backends as a worker runs them: real subprocesses in temp dirs (no mocks), the infrastructure
failures read from their output, the agent's explicit environment, clude's own agent end to end with
the scripted model, and the real Claude Code CLI end to end against the AnthropicStub."""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import exits_within

from agent_helpers import CALC_FIXED, call, done, plan, sample_project
from claude_code import claude_env, install_claude, write_arguments
from clude.config.settings import BackendConfig
from clude.llm.stubs import AnthropicStub
from clude.team.backends import BASE_ENV, AgentRun, InfraFailure, agent_env, classify, get_backend
from clude.team.work.roles import ROLES, role_prompt

SECRET = "sk-" + "test-abcdefghijklmnopqrstuvwxyz0123"  # built: no key-shaped literal in the tree


def user_env(**extra: str) -> dict[str, str]:
    """The worker's environment: this process's, without clude's and the model APIs' variables."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CLUDE_", "OPENAI_", "ANTHROPIC_", "PYTEST_"))}
    env.update(extra)
    return env


def script_backend(tmp_path: Path, body: str, *, args: str = "{prompt_file}", name: str = "agent",
                   **config) -> object:
    """The command backend running a small Python script (the agent) with `args` after it."""
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    template = f"{shlex.quote(sys.executable)} {shlex.quote(str(path))} {args}"
    if config:
        return get_backend("command", {"command": BackendConfig(command=template, **config)})
    return get_backend("command", command=template)


def run(backend, tmp_path: Path, *, prompt: str = "Fix the bug.\n", env: dict | None = None,
        timeout_s: float = 60, task_id: str = "TASK-001", agent_id: str = "a1") -> AgentRun:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    prompt_file = tmp_path / "prompt.md"
    prompt_file.write_text(prompt)
    return backend.run(prompt_file=prompt_file, workdir=work, task_id=task_id, agent_id=agent_id,
                       env=user_env() if env is None else env, log_path=tmp_path / "logs" / "run.log",
                       timeout_s=timeout_s)


# the command backend ---------------------------------------------------------------------------
def test_command_backend_runs_a_script_that_edits_a_file_and_reads_its_summary(tmp_path):
    backend = script_backend(tmp_path, """
        import json, os, pathlib, sys
        prompt_file, task_id, workdir, agent_id = sys.argv[1:]
        pathlib.Path("calc.py").write_text("fixed\\n")
        pathlib.Path("seen.json").write_text(json.dumps({
            "argv": sys.argv[1:], "cwd": os.getcwd(), "prompt": pathlib.Path(prompt_file).read_text(),
            "env": {k: os.environ.get(k) for k in ("CLUDE_AGENT_ID", "CLUDE_TASK_ID")}}))
        print("working...", file=sys.stderr)
        print("Fixed calc.py: mean() divides by len(values).")
    """, args="{prompt_file} {task_id} {workdir} {agent_id}")
    result = run(backend, tmp_path, task_id="TASK-007", agent_id="w3")
    work = tmp_path / "work"
    assert (result.exit_code, result.signal, result.timed_out, result.infra) == (0, None, False, None)
    assert (work / "calc.py").read_text() == "fixed\n"
    seen = json.loads((work / "seen.json").read_text())
    assert seen["argv"] == [str(tmp_path / "prompt.md"), "TASK-007", str(work), "w3"]
    assert Path(seen["cwd"]) == work and seen["prompt"] == "Fix the bug.\n"
    assert seen["env"] == {"CLUDE_AGENT_ID": "w3", "CLUDE_TASK_ID": "TASK-007"}
    assert result.summary.endswith("Fixed calc.py: mean() divides by len(values).")
    assert result.cost_usd is None and result.duration_s > 0
    assert result.log_path == tmp_path / "logs" / "run.log"
    assert "working..." in result.log_path.read_text()


def test_placeholders_are_filled_in_each_word_and_others_are_left_alone(tmp_path):
    backend = get_backend("command", command="sh -c 'echo {task_id}-{agent_id} {x} >out' --dir={workdir} "
                                             "\"{prompt}\" {python}")
    argv = backend.argv(prompt_file=tmp_path / "p.md", workdir=tmp_path / "w", task_id="T-1",
                        agent_id="a2", prompt="do it")
    assert argv == ["sh", "-c", "echo T-1-a2 {x} >out", f"--dir={tmp_path / 'w'}", "do it", sys.executable]
    listed = get_backend("mine", {"mine": BackendConfig(command=["tool", "--file={prompt_file}"])})
    assert listed.argv(prompt_file=Path("/p.md"), workdir=Path("/w"), task_id="T", agent_id="a") == [
        "tool", "--file=/p.md"]


def test_the_prompt_reaches_the_agent_on_stdin_or_as_an_argument(tmp_path):
    body = """
        import sys
        print(f"stdin: {sys.stdin.read().strip()} | args: {' '.join(sys.argv[1:])}".strip())
    """
    by_stdin = script_backend(tmp_path, body, args="", prompt_via="stdin")
    assert run(by_stdin, tmp_path, prompt="hello agent\n").summary == "stdin: hello agent | args:"
    by_arg = script_backend(tmp_path, body, args="{prompt}", prompt_via="arg")
    assert run(by_arg, tmp_path, prompt="hello agent").summary == "stdin:  | args: hello agent"
    too_long = run(by_arg, tmp_path, prompt="x" * 200_000)
    assert too_long.infra.kind == "start_failed" and 'prompt_via = "stdin"' in too_long.infra.message


def test_a_program_not_on_path_is_found_before_anything_runs(tmp_path):
    backend = get_backend("command", command="no-such-agent-cli {prompt_file}")
    result = run(backend, tmp_path)
    assert result.infra == InfraFailure(kind="command_not_found", name="no-such-agent-cli",
                                        message=result.infra.message)
    assert "no-such-agent-cli is not on PATH" in result.infra.message
    assert result.exit_code is None and result.duration_s == 0
    assert "no-such-agent-cli is not on PATH" in result.log_path.read_text()
    assert backend.check(user_env())[0].kind == "command_not_found"
    missing = get_backend("claude").check(user_env(PATH=str(tmp_path)))
    assert any(p.kind == "command_not_found" and "npm install -g @anthropic-ai/claude-code" in p.message
               for p in missing)


def test_a_shell_that_cannot_find_the_agent_is_command_not_found(tmp_path):
    result = run(get_backend("command", command="sh -c 'no-such-agent-xyz {prompt_file}'"), tmp_path)
    assert result.exit_code == 127
    assert (result.infra.kind, result.infra.name) == ("command_not_found", "no-such-agent-xyz")
    assert "[backends.command] command" in result.infra.message


def test_a_script_whose_interpreter_is_gone_is_an_interpreter_failure(tmp_path):
    script = tmp_path / "agent"
    script.write_text("#!/gone/venv/bin/python\nprint('hi')\n")
    script.chmod(0o755)
    result = run(get_backend("command", command=f"{script} {{prompt_file}}"), tmp_path)
    assert result.infra.kind == "interpreter_missing" and "#!/gone/venv/bin/python" in result.infra.message


def test_a_missing_required_variable_is_named_and_no_value_is_shown(tmp_path):
    marker = tmp_path / "ran"
    backend = script_backend(tmp_path, f"open({str(marker)!r}, 'w').close()",
                             required_env=["MY_AGENT_KEY", "ALPHA_TOKEN|BETA_TOKEN"])
    env = user_env(OTHER_API_KEY=SECRET, BETA_TOKEN="beta-token-value-1234", MY_AGENT_KEY="   ")
    problems = backend.check(env)
    assert [(p.kind, p.name) for p in problems] == [("missing_env", "MY_AGENT_KEY")]
    assert "MY_AGENT_KEY is not set" in problems[0].message
    result = run(backend, tmp_path, env=env)
    assert result.infra.kind == "missing_env" and result.infra.name == "MY_AGENT_KEY"
    assert not marker.exists()  # nothing ran
    for text in (result.infra.message, result.summary, result.log_path.read_text()):
        assert SECRET not in text and "beta-token-value" not in text
    none_set = backend.check(user_env(MY_AGENT_KEY="k" * 12))
    assert [p.name for p in none_set] == ["ALPHA_TOKEN|BETA_TOKEN"]
    assert "none of ALPHA_TOKEN or BETA_TOKEN is set" in none_set[0].message


# failures read from the output -------------------------------------------------------------------
def test_an_agent_saying_a_variable_is_missing_is_missing_env(tmp_path):
    backend = script_backend(tmp_path, """
        import sys
        print("ERROR: Missing environment variable: `OPENAI_API_KEY`.", file=sys.stderr)
        sys.exit(1)
    """)
    result = run(backend, tmp_path)
    assert result.exit_code == 1
    assert (result.infra.kind, result.infra.name) == ("missing_env", "OPENAI_API_KEY")
    assert result.summary == "ERROR: Missing environment variable: `OPENAI_API_KEY`."
    assert "OPENAI_API_KEY" in result.infra.message


def test_rate_limited_output_gives_the_wait_it_asks_for(tmp_path):
    backend = script_backend(tmp_path, """
        import sys
        print("Request failed: 429 Too Many Requests (rate_limit_error)", file=sys.stderr)
        print("retry-after: 42", file=sys.stderr)
        sys.exit(2)
    """)
    result = run(backend, tmp_path)
    assert result.infra.kind == "rate_limited" and result.infra.retry_after_s == 42


def test_auth_and_network_failures_in_the_output(tmp_path):
    auth = script_backend(tmp_path, """
        import sys
        sys.exit('Error: 401 {"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}')
    """, name="auth")
    assert run(auth, tmp_path).infra.kind == "auth"
    network = script_backend(tmp_path, """
        import sys
        sys.exit("fetch failed: getaddrinfo ENOTFOUND api.anthropic.com")
    """, name="net")
    found = run(network, tmp_path).infra
    assert found.kind == "network" and "ENOTFOUND" in found.message


def test_an_agent_that_exits_0_is_never_infra_unless_it_could_not_authenticate(tmp_path):
    backend = script_backend(tmp_path, """
        print("Added retries for 429 Too Many Requests and Connection refused errors.")
    """)
    assert run(backend, tmp_path).infra is None


CLASSIFY = [
    # (output, exit code, kind or None, name)
    ("ERROR: Missing environment variable: `OPENAI_API_KEY`.", 1, "missing_env", "OPENAI_API_KEY"),
    ("Model gpt-4o: Missing these environment variables:\n- OPENAI_API_KEY\n", 1, "missing_env",
     "OPENAI_API_KEY"),
    ("openai.OpenAIError: The api_key client option must be set either by passing api_key to the client "
     "or by setting the OPENAI_API_KEY environment variable", 1, "missing_env", "OPENAI_API_KEY"),
    ("the model cannot be used: openai model 'm' at https://x/v1: no API key: the environment variable "
     "MY_KEY is not set or empty", 4, "missing_env", "MY_KEY"),
    ("When using Gemini API, you must specify the GEMINI_API_KEY environment variable.", 1, "missing_env",
     "GEMINI_API_KEY"),
    ("Traceback (most recent call last):\n  File \"agent.py\", line 3, in <module>\nKeyError: 'ANTHROPIC_API_KEY'",
     1, "missing_env", "ANTHROPIC_API_KEY"),
    ("bash: codex: command not found", 127, "command_not_found", "codex"),
    ("sh: 1: gemini: not found", 127, "command_not_found", "gemini"),
    ("zsh: command not found: aider", 127, "command_not_found", "aider"),
    ("python3: can't open file '/w/agent.py': [Errno 2] No such file or directory", 2, "command_not_found",
     "/w/agent.py"),
    ("bash: ./agent.sh: No such file or directory", 127, "command_not_found", "./agent.sh"),
    ("sh: 1: ./agent.sh: Permission denied", 126, "start_failed", "./agent.sh"),
    ("bash: ./agent.sh: /usr/bin/python9: bad interpreter: No such file or directory", 126,
     "interpreter_missing", "./agent.sh"),
    ("/usr/bin/env: 'node': No such file or directory", 127, "interpreter_missing", "node"),
    ('{"type":"result","subtype":"success","is_error":true,"api_error_status":401,'
     '"result":"Invalid API key · Fix external API key"}', 1, "auth", None),
    ('{"type":"result","subtype":"success","is_error":true,"result":"Not logged in · Please run /login"}',
     0, "auth", None),
    ("litellm.AuthenticationError: AnthropicException - invalid x-api-key", 1, "auth", None),
    ("openai.AuthenticationError: Error code: 401 - {'error': {'message': 'Incorrect API key provided: "
     "sk-abc*****xyz.'}}", 1, "auth", None),
    ("[API Error: API key not valid. Please pass a valid API key.]", 1, "auth", None),
    ("unexpected status 401 Unauthorized: Missing bearer or basic authentication in header", 1, "auth", None),
    ("API Error: Request rejected (429) · Number of request tokens has exceeded your per-minute rate limit",
     1, "rate_limited", None),
    ("Rate limit reached for gpt-4o in organization org-x on tokens per min. Please try again in 6m0s.", 1,
     "rate_limited", None),
    ('API Error: 529 {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}', 1,
     "rate_limited", None),
    ('{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [{"retryDelay": "30s"}]}}', 1,
     "rate_limited", None),
    ("API Error: Connection refused — a firewall or proxy may be blocking it (ECONNREFUSED)", 1, "network",
     None),
    ("stream error: error sending request for url (https://api.openai.com/v1/responses); retrying 5/5", 1,
     "network", None),
    ("fatal: unable to access 'https://github.com/x/y/': Could not resolve host: github.com", 128, "network",
     None),
    ("the model cannot be used: openai model 'm' at http://127.0.0.1:9/v1: gave up after 5 attempts over "
     "31.0 s; last: connection error (ConnectError: [Errno 111] Connection refused)", 4, "network", None),
    # not infrastructure: the agent ran, and its work (or the tests it ran) failed
    ("FAILED test_client.py::test_reconnect - AssertionError: Connection refused was not retried\n"
     "=========== 1 failed, 4 passed in 0.31s ===========", 1, None, None),
    ("    def test_connect():\n>       assert client.connect() == 'ok'\n"
     "E       ConnectionRefusedError: [Errno 111] Connection refused\n"
     "========== 1 failed in 0.10s ==========", 1, None, None),
    ("ERROR: test_fetch (tests.test_api.ApiTest)\nTraceback (most recent call last):\n"
     "  File \"tests/test_api.py\", line 9, in test_fetch\n"
     "urllib.error.URLError: <urlopen error [Errno -2] Name or service not known>\n\n"
     "----------------------------------------------------------------------\nRan 3 tests in 0.012s\n\n"
     "FAILED (errors=1)", 1, None, None),
    ("ERROR tests/test_http.py:14 test_status — AssertionError: expected 429, got 200\n"
     "3 passed, 0 failed, 1 errors, 0 skipped (report: .clude/reports/x.log)", 1, None, None),
    ("  ✕ retries on 429 Too Many Requests (12 ms)\nTests:       1 failed, 9 passed, 10 total", 1, None, None),
    ("Implemented the rate limit handler; the test for invalid API keys still fails.", 0, None, None),
    ("I could not finish: the tests for the connection pool still fail.", 1, None, None),
    ("Traceback (most recent call last):\nFileNotFoundError: [Errno 2] No such file or directory: 'data.csv'",
     1, None, None),
    ("step 1\nstep 2\nstep 3\nstep 4\nstep 5\nstep 6\nsh: 1: pytest: not found", 127, None, None),
    ("cat: data.csv: No such file or directory", 1, None, None),
    ("Error: not found", 1, None, None),
    ("", 1, None, None),
    ("", None, None, None),
]


@pytest.mark.parametrize("output, exit_code, kind, name", CLASSIFY)
def test_classify(output, exit_code, kind, name):
    found = classify(output, exit_code)
    if kind is None:
        assert found is None, found
        return
    assert found is not None and found.kind == kind, found
    if name is not None:
        assert found.name == name
    assert "\n" not in found.message and len(found.message) < 400


def test_classify_reads_only_the_end_and_keys_stay_out_of_messages():
    old = "API Error: Connection refused (ECONNREFUSED)\n" + "working on it\n" * 300
    assert classify(old, 1) is None
    found = classify("Error: Incorrect API key provided: sk-" + "abcdefghijklmnopqrstuvwxyz012345", 1)
    assert found.kind == "auth" and "sk-abcdefghij" not in found.message
    waits = {text: classify(text, 1).retry_after_s for text in (
        "429 Too Many Requests; Retry-After: 20", "Rate limit reached. Please try again in 1.5s.",
        "Rate limit reached. Please try again in 6m0s.", "rate limited, retrying in 30 seconds",
        "HTTP 429 Too Many Requests")}
    assert list(waits.values()) == [20, 1.5, 360, 30, None]


# the environment, the timeout, the log --------------------------------------------------------
def test_agent_env_is_explicit(tmp_path):
    env = {"PATH": "/usr/bin", "HOME": "/home/u", "LANG": "C.UTF-8", "AWS_SECRET_ACCESS_KEY": SECRET,
           "GITHUB_TOKEN": "ghp_" + "x" * 36, "ANTHROPIC_API_KEY": "sk-ant-key-123456789",
           "ANTHROPIC_BASE_URL": "http://127.0.0.1:1", "OPENAI_API_KEY": "sk-openai-123456789",
           "MY_SETTING": "1", "CLUDE_TASK_ID": "stale"}
    claude = agent_env(get_backend("claude"), env, agent_id="a1", task_id="TASK-002")
    identity = {f"GIT_{who}_{what}": value for who in ("AUTHOR", "COMMITTER")
                for what, value in (("NAME", "a1"), ("EMAIL", "a1@clude.localhost"))}
    assert claude == {"PATH": "/usr/bin", "HOME": "/home/u", "LANG": "C.UTF-8",
                      "ANTHROPIC_API_KEY": "sk-ant-key-123456789", "ANTHROPIC_BASE_URL": "http://127.0.0.1:1",
                      "CLUDE_AGENT_ID": "a1", "CLUDE_TASK_ID": "TASK-002", "CLAUDE_CODE_MAX_RETRIES": "4",
                      **identity}
    configured = get_backend("claude", {"claude": BackendConfig(env=["MY_SETTING", "NOT_SET_ANYWHERE"])})
    mine = agent_env(configured, env, agent_id="a1", task_id="T")
    assert mine["MY_SETTING"] == "1" and "NOT_SET_ANYWHERE" not in mine and "OPENAI_API_KEY" not in mine
    bare = agent_env(get_backend("command", command="x"), {}, agent_id="a", task_id="t")
    # nothing invented, no default paths: the ids, and a commit identity (~/.gitconfig is hidden)
    assert set(bare) == {"CLUDE_AGENT_ID", "CLUDE_TASK_ID", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL",
                         "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"}
    assert set(BASE_ENV) >= {"PATH", "HOME", "TMPDIR"}
    # and in a real run: a secret that is not forwarded is absent
    backend = script_backend(tmp_path, """
        import json, os
        print(json.dumps(sorted(os.environ)))
    """, env=["MY_SETTING"])
    result = run(backend, tmp_path, env=user_env(AWS_SECRET_ACCESS_KEY=SECRET, MY_SETTING="1"))
    names = set(json.loads(result.summary)) - {"PWD"}
    assert {"MY_SETTING", "CLUDE_AGENT_ID", "CLUDE_TASK_ID", "PATH"} <= names
    assert "AWS_SECRET_ACCESS_KEY" not in names
    assert names <= set(BASE_ENV) | {"MY_SETTING", "CLUDE_AGENT_ID", "CLUDE_TASK_ID", "LC_CTYPE"} | set(identity)



def test_the_timeout_kills_the_whole_group(tmp_path):
    backend = script_backend(tmp_path, """
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        open("child.pid", "w").write(str(child.pid))
        print("started", flush=True)
        time.sleep(300)
    """)
    result = run(backend, tmp_path, timeout_s=1)
    assert result.timed_out and result.exit_code is None and result.signal == signal.SIGTERM
    assert 1 <= result.duration_s < 60
    assert exits_within(int((tmp_path / "work" / "child.pid").read_text()), 30)
    assert "started" in result.log_path.read_text()


def test_the_log_and_the_summary_are_redacted(tmp_path):
    backend = script_backend(tmp_path, """
        import os, sys
        key = os.environ["MY_API_KEY"]
        print("using key", key, file=sys.stderr)
        print("a key-shaped string: sk-ant-api03-" + "q" * 30)
        print("done with", key)
    """, required_env=["MY_API_KEY"])
    result = run(backend, tmp_path, env=user_env(MY_API_KEY=SECRET))
    log = result.log_path.read_text()
    assert SECRET not in log and "[redacted $MY_API_KEY]" in log and "q" * 30 not in log
    assert SECRET not in result.summary and "done with [redacted $MY_API_KEY]" in result.summary


def test_a_stopped_worker_stops_its_agent_and_is_told(tmp_path):
    """SIGTERM to the worker while its agent runs: the agent's group is stopped, the log redacted, and
    run() raises KeyboardInterrupt so the worker releases its task."""
    backend = script_backend(tmp_path, """
        import os, signal, sys, time
        print("secret", os.environ["MY_API_KEY"], flush=True)
        os.kill(os.getppid(), signal.SIGTERM)
        time.sleep(300)
    """, required_env=["MY_API_KEY"])
    with pytest.raises(KeyboardInterrupt):
        run(backend, tmp_path, env=user_env(MY_API_KEY=SECRET))
    log = (tmp_path / "logs" / "run.log").read_text()
    assert "secret [redacted $MY_API_KEY]" in log


# building backends --------------------------------------------------------------------------
def test_get_backend_names_the_known_ones_and_merges_clude_toml():
    with pytest.raises(ValueError) as unknown:
        get_backend("cursor")
    for name in ("clude", "claude", "codex", "aider", "gemini", "command"):
        assert name in str(unknown.value)
    with pytest.raises(ValueError, match=r"\[backends.mine\] command"):
        get_backend("mine", {"mine": BackendConfig(env=["X"])})
    with pytest.raises(ValueError, match="--command TEMPLATE"):
        get_backend("command")
    mine = get_backend("mine", {"mine": BackendConfig(command="./agent {prompt_file}", required_env=["K"])})
    assert mine.name == "mine" and mine.required_env() == ["K"] and mine.spec.result == "text"
    claude = get_backend("claude", {"claude": BackendConfig(required_env=[], env=["EXTRA"],
                                                            timeout_s=30)})
    assert claude.required_env() == [] and "EXTRA" in claude.forwarded_env()
    assert "ANTHROPIC_BASE_URL" in claude.forwarded_env() and claude.spec.timeout_s == 30
    assert get_backend("claude").required_env() == ["ANTHROPIC_API_KEY|CLAUDE_CODE_OAUTH_TOKEN|"
                                                    "ANTHROPIC_AUTH_TOKEN"]
    assert get_backend("codex").spec.command[:2] == ("codex", "exec")
    flagged = get_backend("command", {"command": BackendConfig(command="old")}, command="new {task_id}")
    assert flagged.spec.command == ("new", "{task_id}")
    with pytest.raises(ValueError, match="cannot be split"):
        get_backend("command", command="sh -c 'unclosed")


def test_version_for_doctor(tmp_path):
    assert get_backend("clude").version(user_env()).startswith("clude, version ")
    missing = get_backend("gemini").version(user_env(PATH=str(tmp_path)))
    assert isinstance(missing, InfraFailure) and missing.kind == "command_not_found"
    assert get_backend("command", command="./agent.sh").version(user_env()) == "(no version command)"


# roles -------------------------------------------------------------------------------------
def test_role_prompts_are_files_a_roles_dir_can_replace(tmp_path):
    for role in ROLES:
        text = role_prompt(role)
        assert text.startswith(f"# Role: {role}") and "clude test" in text and len(text) > 800
    (tmp_path / "docs.md").write_text("Our own docs role.\n")
    (tmp_path / "security.md").write_text("Look for injection.\n")
    assert role_prompt("docs", tmp_path) == "Our own docs role.\n"
    assert role_prompt("security", tmp_path) == "Look for injection.\n"
    assert role_prompt("critic", tmp_path) == role_prompt("critic")
    with pytest.raises(ValueError) as unknown:
        role_prompt("security")
    assert all(role in str(unknown.value) for role in ROLES)
    with pytest.raises(ValueError, match="security"):
        role_prompt("nope", tmp_path)
    with pytest.raises(ValueError):
        role_prompt("../secret", tmp_path)


# clude's own agent, end to end -----------------------------------------------------------------
def test_clude_backend_end_to_end_with_the_scripted_model(tmp_path):
    root = sample_project(tmp_path / "p")
    fix = call("edit_file", path="calc.py", search="(len(values) + 1)", replace="len(values)")
    (root / "script.json").write_text(json.dumps([plan("Fix", ("fix", "Fix mean")), fix,
                                                  done("fixed mean: divide by len(values)")]))
    with open(root / "clude.toml", "a") as f:
        f.write('[model]\nprovider = "scripted"\nscript = "script.json"\n')
    prompt = tmp_path / "TASK-001.md"
    prompt.write_text("Fix mean() in calc.py.\n")
    result = get_backend("clude").run(prompt_file=prompt, workdir=root, task_id="TASK-001", agent_id="a1",
                                      env=user_env(), log_path=tmp_path / "run.log", timeout_s=120)
    assert result.exit_code == 0 and result.infra is None, result.log_path.read_text()
    assert result.summary.splitlines()[0].startswith("done")
    assert "- fix Fix mean [done]: fixed mean: divide by len(values)" in result.summary
    assert (root / "calc.py").read_text() == CALC_FIXED
    log = result.log_path.read_text()
    assert '"status":"done"' in log.replace(" ", "")
    assert result.tokens and result.tokens["input_tokens"] > 0 and result.tokens["output_tokens"] > 0


def test_clude_backend_without_its_model_key_is_missing_env(tmp_path):
    root = sample_project(tmp_path / "p")
    with open(root / "clude.toml", "a") as f:
        f.write('[model]\nprovider = "openai"\nname = "gpt-x"\nbase_url = "https://api.example.com/v1"\n')
    prompt = tmp_path / "TASK-001.md"
    prompt.write_text("Fix mean() in calc.py.\n")
    result = get_backend("clude").run(prompt_file=prompt, workdir=root, task_id="TASK-001", agent_id="a1",
                                      env=user_env(), log_path=tmp_path / "run.log", timeout_s=120)
    assert result.exit_code == 4
    assert (result.infra.kind, result.infra.name) == ("missing_env", "OPENAI_API_KEY")
    assert result.summary.startswith("error: the model cannot be used")


# the real Claude Code CLI, end to end ---------------------------------------------------------
@pytest.fixture(scope="session")
def claude_bin() -> Path:
    """The real Claude Code CLI (skips without npm or the registry)."""
    return install_claude()


def claude_user_env(claude: Path, tmp_path: Path, base_url: str) -> dict[str, str]:
    """A worker's environment where `claude` on PATH is the installed CLI, against the stub."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "claude").symlink_to(claude)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = claude_env(home, base_url)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["UNRELATED_SECRET_TOKEN"] = SECRET
    return env


FINAL = "Created hello.txt with the greeting."


def test_claude_backend_end_to_end_with_the_real_cli(claude_bin, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    target = work / "hello.txt"
    prompt = tmp_path / "prompt.md"
    prompt.write_text("Create hello.txt containing a greeting.\n")
    seen_env: list[dict] = []

    def script(messages, tools):
        if "Write" not in {tool["function"]["name"] for tool in tools or []}:
            return "Stub side answer"  # a side request (title, topic): plain text
        if not any(message["role"] == "tool" for message in messages):
            seen_env.append(messages)
            return {"text": "I'll create hello.txt.", "tool_calls": [
                {"id": "toolu_stub_write1", "name": "Write",
                 "arguments": write_arguments(tools, target, "Hello!\n")}]}
        return FINAL

    with AnthropicStub(script) as stub:
        env = claude_user_env(claude_bin, tmp_path, stub.base_url)
        backend = get_backend("claude")
        assert backend.check(env) == []
        result = backend.run(prompt_file=prompt, workdir=work, task_id="TASK-001", agent_id="a1", env=env,
                             log_path=tmp_path / "run.log", timeout_s=120)
        failures = list(stub.failures)
    assert not failures, failures
    assert result.exit_code == 0, result.log_path.read_text()[-2000:]
    assert target.read_text() == "Hello!\n"
    assert result.summary == FINAL and result.infra is None
    assert result.cost_usd is None or result.cost_usd >= 0
    assert any("Create hello.txt" in (m["content"] or "") for m in seen_env[0] if m["role"] == "user")
    assert SECRET not in result.log_path.read_text()


def test_claude_backend_with_a_rejected_key_is_an_auth_failure(claude_bin, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    prompt = tmp_path / "prompt.md"
    prompt.write_text("Create hello.txt.\n")
    rejected = {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}
    with AnthropicStub(lambda messages, tools: {"raw": rejected, "status": 401}) as stub:
        env = claude_user_env(claude_bin, tmp_path, stub.base_url)
        result = get_backend("claude").run(prompt_file=prompt, workdir=work, task_id="TASK-001",
                                           agent_id="a1", env=env, log_path=tmp_path / "run.log",
                                           timeout_s=120)
        tries = [r for r in stub.requests if r["path"] == "/v1/messages"]
    # a bad key never heals: the CLI's own retries are cut (env_defaults), so the worker hears of it
    # within 30 s instead of after ~3 minutes of 11 tries
    assert 1 <= len(tries) <= 5 and result.duration_s < 30, (len(tries), result.duration_s)
    assert result.exit_code != 0
    assert result.infra is not None and result.infra.kind == "auth", (result.infra, result.summary)
    assert "Invalid API key" in result.infra.message
    assert not list(work.iterdir())


def test_a_backends_env_defaults_reach_the_agent_unless_the_user_sets_the_name():
    from clude.team.backends.base import agent_env

    claude = get_backend("claude")
    assert agent_env(claude, {}, agent_id="a1", task_id="T")["CLAUDE_CODE_MAX_RETRIES"] == "4"
    mine = agent_env(claude, {"CLAUDE_CODE_MAX_RETRIES": "9"}, agent_id="a1", task_id="T")
    assert mine["CLAUDE_CODE_MAX_RETRIES"] == "9"
    assert "CLAUDE_CODE_MAX_RETRIES" not in agent_env(get_backend("codex"), {}, agent_id="a1", task_id="T")


# result readers of the CLIs not installed here, from the formats their docs give ----------------
CODEX_OK = "\n".join([
    '{"type":"thread.started","thread_id":"t1"}',
    '{"type":"item.completed","item":{"id":"i1","type":"command_execution","command":"pytest"}}',
    '{"type":"item.completed","item":{"id":"i2","type":"agent_message","text":"Fixed mean()."}}',
    '{"type":"turn.completed","usage":{"input_tokens":10,"output_tokens":5}}'])
CODEX_AUTH = '{"type":"error","message":"unexpected status 401 Unauthorized: Incorrect API key provided"}'
GEMINI_OK = '{"response": "Done: mean() fixed.", "stats": {"models": {}}}'
GEMINI_429 = '{"error": {"type": "ApiError", "message": "Quota exceeded, retry after 30s", "code": 429}}'


@pytest.mark.parametrize("fmt, stdout, exit_code, summary, kind", [
    ("codex", CODEX_OK, 0, "Fixed mean().", None),
    ("codex", CODEX_AUTH, 1, "", "auth"),
    ("gemini", GEMINI_OK, 0, "Done: mean() fixed.", None),
    ("gemini", GEMINI_429, 1, "", "rate_limited"),
    ("aider", "", 0, "", None),
])
def test_result_readers_of_codex_gemini_and_aider(fmt, stdout, exit_code, summary, kind):
    from clude.team.backends.results import read_result

    outcome = read_result(fmt, stdout, stdout or "Applied edit to calc.py\n", exit_code)
    if summary:
        assert outcome.summary == summary
    assert (outcome.infra.kind if outcome.infra else None) == kind


@pytest.mark.parametrize("name, login", [("codex", ".codex/auth.json"), ("claude", ".claude/.credentials.json"),
                                         ("gemini", ".gemini/oauth_creds.json")])
def test_a_clis_own_login_file_stands_for_the_key(tmp_path, name, login):
    """A user logged in with the CLI itself (no key variable) is not refused: its login file is enough,
    and the folder it is in is one the agent keeps inside the sandbox."""
    backend = get_backend(name)
    home = tmp_path / "home"
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "")}
    missing = [p for p in backend._problems(env, tmp_path) if p.kind == "missing_env"]
    assert len(missing) == 1 and f"~/{login}" in missing[0].message
    (home / login).parent.mkdir(parents=True)
    (home / login).write_text("{}")
    assert not [p for p in backend._problems(env, tmp_path) if p.kind == "missing_env"]
    assert login.split("/")[0] in backend.spec.sandbox_home
