"""`clude models check` against loopback stubs of the real wire formats: OK, or the precise error."""

import json
import socket

from click.testing import CliRunner

from clude.cli.main import main
from clude.exits import MODELS_ERROR
from clude.llm.stub_anthropic import AnthropicStub
from clude.llm.stub_openai import OpenAIStub

KEY = "sk-test-" + "k" * 32


def check(tmp_path, *args, env=None):
    return CliRunner().invoke(main, ["models", "check", "-C", str(tmp_path), *args],
                              env=env or {}, catch_exceptions=False)


def test_ok_from_an_openai_compatible_server_configured_in_clude_toml(tmp_path):
    with OpenAIStub(["OK"]) as stub:
        (tmp_path / "clude.toml").write_text(
            f'[model]\nprovider = "openai"\nname = "qwen2.5-coder"\nbase_url = "{stub.base_url}"\n')
        result = check(tmp_path)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK model — openai model 'qwen2.5-coder' at http://127.0.0.1:")


def test_a_server_showing_its_chat_template_is_checked_against_it(tmp_path):
    """llama-server shows its template at /props: the check says which normalization renders it."""
    from test_llm_template_probe import STRICT

    with OpenAIStub(["OK"], chat_template=STRICT) as stub:
        result = check(tmp_path, "--model", "mystery-270m", "--base-url", stub.base_url, "--json")
    data = json.loads(result.output)
    assert result.exit_code == 0 and data["ok"], result.output
    assert "system_role = false" in data["template"]


def test_flags_override_the_file_and_anthropic_works(tmp_path):
    (tmp_path / "clude.toml").write_text('[model]\nprovider = "openai"\nname = "other"\n')
    with AnthropicStub(["OK"]) as stub:
        result = check(tmp_path, "--provider", "anthropic", "--model", "claude-x", "--base-url",
                       stub.base_url, "--api-key-env", "MY_KEY", "--json", env={"MY_KEY": KEY})
    data = json.loads(result.output)
    assert result.exit_code == 0 and data["ok"] and data["where"].startswith("anthropic model 'claude-x'")


def test_a_rejected_key_names_provider_model_and_url_but_never_the_key(tmp_path):
    with OpenAIStub([{"status": 401}]) as stub:
        result = check(tmp_path, "--model", "gpt-x", "--base-url", stub.base_url.replace("127.0.0.1", "localhost"),
                       env={"OPENAI_API_KEY": KEY})
    assert result.exit_code == MODELS_ERROR == 4
    assert result.output.startswith("ERROR model — ") and "gpt-x" in result.output
    assert "OPENAI_API_KEY" in result.output and KEY not in result.output


def test_a_missing_key_variable_is_named(tmp_path):
    result = check(tmp_path, "--provider", "anthropic", "--model", "claude-x",
                   "--api-key-env", "NOT_SET_ANYWHERE")
    assert result.exit_code == MODELS_ERROR == 4
    assert "NOT_SET_ANYWHERE is not set" in result.output


def test_an_unreachable_server_is_an_error_not_a_hang(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = check(tmp_path, "--model", "m", "--base-url", f"http://127.0.0.1:{port}/v1")
    assert result.exit_code == MODELS_ERROR == 4
    assert result.output.startswith("ERROR model — ") and f"127.0.0.1:{port}" in result.output


def test_no_model_name_says_where_to_set_it(tmp_path):
    result = check(tmp_path)
    assert result.exit_code == MODELS_ERROR and "set name in [model]" in result.output
