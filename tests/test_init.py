"""`clude init`: real stub servers on loopback (their ephemeral ports given with --probe or
$CLUDE_INIT_PROBE), a fake agent CLI on PATH, the real CLI in a temp git repository, clude.toml read
back with the project's own loader; and the messages of doctor and `clude run` without a model."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent_helpers import CALC
from clude.cli.main import main
from clude.config import load_settings
from clude.config.discover import load_table, probe_servers
from clude.config.proposal import (FoundKey, FoundTests, ModelChoice, Refusal, identify, model_url, probe_address,
                                   render, variable_name)
from clude.doctor.model import NOT_CONFIGURED
from clude.llm.stubs import OpenAIStub
from conftest import write_files

SECRET = "sk-init-" + "s3cr3tv4lue" * 4
TEMPLATE = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}<|assistant|>"
TESTS = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
KEY_PREFIXES = ("CLUDE_", "PYTEST_", "ANTHROPIC_", "CLAUDE_", "OPENAI_", "CODEX_", "GEMINI_", "GOOGLE_",
                "OPENROUTER_", "DEEPSEEK_", "MISTRAL_")


class OllamaStub(OpenAIStub):
    """Ollama: its model list at /api/tags, its OpenAI-compatible API under /v1."""

    def handle(self, exchange) -> None:
        if exchange.method == "GET" and exchange.path == "/api/tags":
            exchange.send_json(200, {"models": [{"name": self.model, "model": self.model, "size": 1}]})
        else:
            super().handle(exchange)


def project(tmp_path: Path, **files: str) -> Path:
    """A committed git project with one passing pytest test and no clude configuration."""
    root = write_files(tmp_path / "p", {"calc.py": CALC,
                                        "test_calc.py": TESTS, **files})
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "start"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    return root


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_env(tmp_path: Path, *, probe: str | None = None, bin_dir: Path | None = None, **extra: str) -> dict:
    """For CliRunner: no key or clude variable from outside, HOME in tmp_path (no real CLI login),
    this interpreter's virtualenv active (detection finds its pytest), only `probe` probed."""
    unset = {k: None for k in os.environ if k.startswith(KEY_PREFIXES)}
    path = os.pathsep.join([*([str(bin_dir)] if bin_dir else []), os.path.dirname(sys.executable),
                            os.environ.get("PATH", os.defpath)])
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {**unset, "HOME": str(home), "VIRTUAL_ENV": sys.prefix, "PATH": path,
            "CLUDE_INIT_PROBE": probe if probe is not None else f"127.0.0.1:{closed_port()}", **extra}


def init(root: Path, *args: str, env: dict, input: str | None = None):
    return CliRunner().invoke(main, ["init", "-C", str(root), *args], env=env, input=input,
                              catch_exceptions=False)


def fake_cli(tmp_path: Path, name: str = "claude", version: str = "2.1.330 (Claude Code)") -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    program = bin_dir / name
    program.write_text(f"#!/bin/sh\necho '{version}'\n")
    program.chmod(0o755)
    return bin_dir


def written(root: Path) -> dict:
    """clude.toml as tomllib reads it; the project's loader must accept it too."""
    data = tomllib.loads((root / "clude.toml").read_text(encoding="utf-8"))
    settings, source = load_settings(root)
    assert source == root / "clude.toml"
    return data


# finding a server and writing it ------------------------------------------------------------------
def test_a_llama_server_on_a_probed_port_is_found_written_and_doctor_ends_it(tmp_path):
    root = project(tmp_path)
    with OpenAIStub(["OK"], chat_template=TEMPLATE, model="qwen2.5-coder-7b") as stub:
        port = stub.port
        env = init_env(tmp_path, probe=f"127.0.0.1:{closed_port()} 127.0.0.1:{port}")
        result = init(root, "--yes", env=env)
    assert result.exit_code == 0, result.output
    assert f"llama.cpp at http://127.0.0.1:{port}/v1: qwen2.5-coder-7b" in result.output
    data = written(root)
    assert data["model"] == {"provider": "openai", "name": "qwen2.5-coder-7b",
                             "base_url": f"http://127.0.0.1:{port}/v1"}
    assert data["team"] == {"backend": "clude"} and "test" not in data  # the tests stay detected
    settings, _ = load_settings(root)
    assert settings.model.name == "qwen2.5-coder-7b" and settings.model.api_key_env is None
    # doctor's own lines, from its own code: the model asked, the tests collected
    assert "\nOK model — openai model 'qwen2.5-coder-7b' at http://127.0.0.1:" in result.output
    assert "OK tests — `" in result.output and "1 tests collected" in result.output
    assert len(stub.chats) == 1  # doctor's one-token question
    # the detected test command and its evidence, shown and left in the file as a comment
    text = (root / "clude.toml").read_text()
    assert "Tests: `" in result.output and "(pytest: " in result.output
    assert "# [test]\n# command = " in text and "#   - " in text


def test_ollama_is_known_by_its_api_tags_and_its_v1_is_written(tmp_path):
    root = project(tmp_path)
    with OllamaStub(["OK"], model="qwen2.5-coder:7b") as stub:
        port = stub.port
        result = init(root, "--yes", "--no-doctor", env=init_env(tmp_path, probe=f"127.0.0.1:{port}"))
    assert result.exit_code == 0, result.output
    assert f"Ollama at http://127.0.0.1:{port}/v1: qwen2.5-coder:7b" in result.output
    assert written(root)["model"]["base_url"] == f"http://127.0.0.1:{port}/v1"


def test_what_answers_at_an_address_is_told_by_signature_then_port():
    table = load_table()
    listing = {"/v1/models": (200, {"data": [{"id": "m"}]})}
    assert identify(8000, listing, table).name == "vLLM"
    assert identify(1234, listing, table).name == "LM Studio"
    assert identify(8080, listing, table).name == "OpenAI-compatible server"  # no /props: not llama.cpp
    assert identify(9, {**listing, "/props": (200, {"chat_template": "x"})}, table).name == "llama.cpp"
    assert identify(9, {"/api/tags": (200, {"models": []})}, table).name == "Ollama"
    assert identify(8000, {"/v1/models": (404, {"error": "no"})}, table) is None  # a web app, not a server
    assert {8080, 11434, 8000, 1234} == {k.port for k in table.servers}


def test_probing_asks_every_address_at_once_and_gives_up_quickly(tmp_path):
    """Listening sockets that never answer: 4 addresses x 3 paths, each given up after the table's
    timeout, all at once; one after the other they would take 12 timeouts."""
    table = load_table()
    silent = []
    try:
        for _ in range(4):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen(16)
            silent.append(s)
        start = time.monotonic()
        found = probe_servers([("127.0.0.1", s.getsockname()[1]) for s in silent], table)
        elapsed = time.monotonic() - start
    finally:
        for s in silent:
            s.close()
    assert found == []
    assert table.timeout_s < 1 and elapsed < 6 * table.timeout_s  # one after the other: 12 timeouts


# keys, by name only -----------------------------------------------------------------------------
def test_an_api_key_is_written_by_its_name_and_its_value_never_shown(tmp_path):
    root = project(tmp_path)
    with OpenAIStub(["OK"]) as stub:  # where $OPENAI_BASE_URL sends the requests: doctor stays offline
        env = init_env(tmp_path, OPENAI_API_KEY=SECRET, OPENAI_BASE_URL=stub.base_url)
        result = init(root, "--yes", env=env)
        sent = stub.requests[-1]["headers"].get("authorization")
    assert result.exit_code == 0, result.output
    assert "$OPENAI_API_KEY (OpenAI)" in result.output
    data = written(root)
    assert data["model"] == {"provider": "openai", "name": "gpt-4.1", "api_key_env": "OPENAI_API_KEY"}
    text = (root / "clude.toml").read_text()
    assert SECRET not in result.output and SECRET not in text and SECRET[8:20] not in text
    assert sent == f"Bearer {SECRET}"  # the name written is the one doctor read the key from


def test_a_key_the_clude_backend_does_not_forward_is_added_to_its_env(tmp_path):
    root = project(tmp_path)
    result = init(root, "--yes", "--no-doctor", env=init_env(tmp_path, OPENROUTER_API_KEY=SECRET))
    assert result.exit_code == 0, result.output
    data = written(root)
    assert data["model"]["api_key_env"] == "OPENROUTER_API_KEY"
    assert data["model"]["base_url"] == "https://openrouter.ai/api/v1"
    assert data["backends"]["clude"]["env"] == ["OPENROUTER_API_KEY"]
    assert SECRET not in result.output and SECRET not in (root / "clude.toml").read_text()


def test_local_servers_come_before_keys_and_a_choice_is_asked_or_refused(tmp_path):
    root = project(tmp_path)
    with OpenAIStub(["OK"]) as stub:
        env = init_env(tmp_path, probe=f"127.0.0.1:{stub.port}", ANTHROPIC_API_KEY=SECRET)
        refused = init(root, "--no-doctor", env=env)  # no terminal, two choices, no --yes
        assert refused.exit_code == 2 and "--yes" in refused.output and "2 choices for the model" in refused.output
        assert not (root / "clude.toml").exists()
        asked = init(root, "--ask", "--no-doctor", env=env, input="2\n")
    assert asked.exit_code == 0, asked.output
    assert "1. stub-model — OpenAI-compatible server at 127.0.0.1:" in asked.output
    assert "2. claude-sonnet-4-5 — $ANTHROPIC_API_KEY (Anthropic)" in asked.output
    assert written(root)["model"] == {"provider": "anthropic", "name": "claude-sonnet-4-5",
                                      "api_key_env": "ANTHROPIC_API_KEY"}
    assert SECRET not in asked.output + refused.output


# agent CLIs -------------------------------------------------------------------------------------
def test_an_agent_cli_on_path_is_listed_and_taken_without_a_model(tmp_path):
    root = project(tmp_path)
    env = init_env(tmp_path, bin_dir=fake_cli(tmp_path), CLAUDE_CODE_OAUTH_TOKEN=SECRET)
    result = init(root, "--yes", env=env)
    assert result.exit_code == 0, result.output
    assert f"claude  {tmp_path / 'bin' / 'claude'} — $CLAUDE_CODE_OAUTH_TOKEN set" in result.output
    data = written(root)
    assert "model" not in data and data["team"] == {"backend": "claude"}
    assert "OK backend claude — " in result.output and "2.1.330 (Claude Code)" in result.output
    # doctor does not ask for a [model] the claude backend never uses
    assert "OK model — none configured; the claude backend needs none" in result.output
    assert SECRET not in result.output


def test_nothing_found_says_what_was_looked_for_and_writes_nothing(tmp_path):
    root = project(tmp_path)
    env = init_env(tmp_path, PATH=str(tmp_path / "empty"))
    result = init(root, "--yes", env=env)
    assert result.exit_code == 4
    assert "found no model server" in result.output and "OPENAI_API_KEY" in result.output
    assert "--model-url URL --model NAME" in result.output and not (root / "clude.toml").exists()


# explicit choices -------------------------------------------------------------------------------
def test_model_url_asks_the_server_for_its_models(tmp_path):
    root = project(tmp_path)
    with OpenAIStub(["OK"], model="served-model") as stub:
        url = stub.base_url
        result = init(root, "--model-url", url + "/", "--no-doctor", env=init_env(tmp_path))
    assert result.exit_code == 0, result.output
    assert written(root)["model"] == {"provider": "openai", "name": "served-model", "base_url": url}


def test_model_url_with_a_name_and_a_key_variable_needs_no_server(tmp_path):
    root = project(tmp_path)
    result = init(root, "--model-url", "https://llm.example.com/v1", "--model", "big-1",
                  "--api-key-env", "MY_LLM_KEY", "--backend", "clude", "--no-doctor", env=init_env(tmp_path))
    assert result.exit_code == 0, result.output
    data = written(root)
    assert data["model"]["api_key_env"] == "MY_LLM_KEY" and data["model"]["base_url"] == "https://llm.example.com/v1"
    assert data["backends"]["clude"]["env"] == ["MY_LLM_KEY"]


def test_model_picks_the_server_that_lists_it_and_an_unlisted_name_is_refused(tmp_path):
    root = project(tmp_path)
    with OpenAIStub(["OK"], model="a-model") as stub:
        env = init_env(tmp_path, probe=f"127.0.0.1:{stub.port}")
        unknown = init(root, "--model", "b-model", "--no-doctor", env=env)
        known = init(root, "--model", "a-model", "--no-doctor", env=env)
    assert unknown.exit_code == 2 and "--model 'b-model': no server found lists it" in unknown.output
    assert "a-model" in unknown.output
    assert known.exit_code == 0, known.output
    assert written(root)["model"]["name"] == "a-model"


@pytest.mark.parametrize("args, said", [
    (["--probe", "example.com:80"], "--probe 'example.com:80': only this machine is probed"),
    (["--probe", "127.0.0.1:99999"], "--probe '127.0.0.1:99999': the port must be a number from 1 to 65535"),
    (["--probe", "8080"], "--probe '8080': give HOST:PORT"),
    (["--model-url", "ftp://host/v1"], "--model-url 'ftp://host/v1': give the server's http:// or https:// URL"),
    (["--model-url", "http://127.0.0.1:8080/v1", "--model", " "], "--model ' ': give the model's name"),
    (["--backend", "copilot"], "--backend 'copilot': use one of clude, claude, codex, aider, gemini"),
    (["--provider", "anthropic"], "--provider anthropic: it goes with --model-url URL"),
    (["--api-key-env", "NOT_SET_HERE"], "--api-key-env NOT_SET_HERE: not among the key variables found set"),
    (["--backend", "clude"], "--backend clude: clude's own agent needs a model"),
])
def test_bad_input_is_refused_naming_the_option_and_value(tmp_path, args, said):
    root = project(tmp_path)
    result = init(root, *args, "--yes", env=init_env(tmp_path, PATH=str(tmp_path / "empty")))
    assert result.exit_code == 2, result.output
    assert said in result.output and not (root / "clude.toml").exists()


def test_a_key_given_where_its_name_belongs_is_refused_without_echoing_it(tmp_path):
    root = project(tmp_path)
    secret_url = f"http://user:{SECRET}@127.0.0.1:8080/v1"
    for args in (["--api-key-env", SECRET], ["--model-url", secret_url]):
        result = init(root, *args, env=init_env(tmp_path))
        assert result.exit_code == 2 and SECRET not in result.output, result.output
        assert "--api-key-env" in result.output
    bad_env = init(root, env=init_env(tmp_path, probe="10.0.0.1:8080"))
    assert bad_env.exit_code == 2 and "--probe '10.0.0.1:8080'" in bad_env.output


# an existing configuration ----------------------------------------------------------------------
def test_an_existing_configuration_is_named_and_kept_unless_forced(tmp_path):
    root = project(tmp_path, **{"clude.toml": "[agent]\nparallel = 2\n"})
    env = init_env(tmp_path, OPENAI_API_KEY=SECRET)
    kept = init(root, "--yes", "--no-doctor", env=env)
    assert kept.exit_code == 2 and f"{root / 'clude.toml'} exists" in kept.output and "--force" in kept.output
    assert (root / "clude.toml").read_text() == "[agent]\nparallel = 2\n"
    forced = init(root, "--yes", "--no-doctor", "--force", env=env)
    assert forced.exit_code == 0, forced.output
    assert written(root)["model"]["api_key_env"] == "OPENAI_API_KEY"
    other = project(tmp_path / "o", **{"pyproject.toml": "[tool.clude.agent]\nparallel = 2\n"})
    named = init(other, "--yes", "--no-doctor", env=env)
    assert named.exit_code == 2 and f"{other / 'pyproject.toml'} [tool.clude] already configures" in named.output


# the rules, without I/O -------------------------------------------------------------------------
@pytest.mark.parametrize("name", ['we"ird\\name', "modèle-ünï", "tab\there", "del\x7fchar", "a'b#c"])
def test_render_writes_toml_that_reads_back_as_written(tmp_path, name):
    choice = ModelChoice("openai", name, "http://127.0.0.1:1/v1", None, f"server\nwith {name}")
    tests = FoundTests('python -m "pytest"', "pytest", ("found\nthere",))
    text = render(choice, "clude", tests)
    assert tomllib.loads(text)["model"]["name"] == name
    (tmp_path / "clude.toml").write_text(text, encoding="utf-8")
    assert load_settings(tmp_path)[0].model.name == name


def test_the_option_checks():
    assert probe_address("[::1]:11434") == ("::1", 11434)
    assert probe_address("localhost:1234") == ("localhost", 1234)
    assert model_url("http://127.0.0.1:8080/v1/") == "http://127.0.0.1:8080/v1"
    assert variable_name("MY_KEY") == "MY_KEY"
    with pytest.raises(Refusal, match="never the key itself"):
        variable_name("sk-abc")
    key = load_table().keys[0]
    text = render(None, "claude", None)
    assert "[model]" not in text.replace("No [model]", "") and tomllib.loads(text) == {"team": {"backend": "claude"}}
    assert FoundKey(key).kind.env == "ANTHROPIC_API_KEY"


# doctor and `clude run` without a model ---------------------------------------------------------
def test_doctor_does_not_want_a_model_for_a_team_of_claude_but_run_does(tmp_path):
    from team_helpers import team_project

    root, _ = team_project(tmp_path, fast=True, team='[team]\nbackend = "claude"')
    env = init_env(tmp_path, bin_dir=fake_cli(tmp_path), ANTHROPIC_API_KEY=SECRET)
    team = CliRunner().invoke(main, ["doctor", "-C", str(root)], env=env, catch_exceptions=False)
    assert team.exit_code == 0, team.output
    assert "OK model — none configured; the claude backend needs none" in team.output
    assert "OK backend claude — " in team.output
    run = CliRunner().invoke(main, ["doctor", "-C", str(root), "--scope", "run"], env=env, catch_exceptions=False)
    assert run.exit_code == 4 and f"ERROR model — {NOT_CONFIGURED}" in run.output
    clude = CliRunner().invoke(main, ["doctor", "-C", str(root), "--backend", "clude"], env=env,
                               catch_exceptions=False)
    assert clude.exit_code == 4 and "clude init" in clude.output


def test_clude_run_without_a_model_points_to_clude_init(tmp_path):
    root = project(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(KEY_PREFIXES)}
    checked = subprocess.run([sys.executable, "-m", "clude", "run", "x", "-C", str(root)],
                             capture_output=True, text=True, env=env, timeout=120)
    assert checked.returncode == 4, checked.stderr
    assert f"ERROR model — {NOT_CONFIGURED}" in checked.stderr
    assert "run `clude init`" in checked.stderr.splitlines()[-1] and "--no-doctor" not in checked.stderr
    unchecked = subprocess.run([sys.executable, "-m", "clude", "run", "--headless", "--json", "--no-doctor", "x",
                                "-C", str(root)], capture_output=True, text=True, env=env, timeout=120)
    assert unchecked.returncode == 4, unchecked.stderr
    out = json.loads(unchecked.stdout)
    assert out["session_id"] is None and "clude init" in out["reason"] and "[model]" in out["reason"]
    assert not (root / ".clude" / "sessions").exists()
