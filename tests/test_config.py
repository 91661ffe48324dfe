"""clude.toml and [tool.clude]: values read, flags win, and bad input is an error naming file and key."""

import pytest

from clude.config import ConfigError, load_settings


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file(tmp_path):
    (tmp_path / ".git").mkdir()
    settings, source = load_settings(tmp_path)
    assert source is None
    assert settings.test.timeout == 900 and settings.test.argv() is None


def test_clude_toml_is_read_and_a_string_command_is_split(tmp_path):
    write(tmp_path / "clude.toml", '[test]\ncommand = "python -m pytest -q \'tests/a b.py\'"\n'
                                   'timeout = 30\n[test.env]\nFOO = "1"\n')
    settings, source = load_settings(tmp_path)
    assert source == tmp_path / "clude.toml"
    assert settings.test.argv() == ["python", "-m", "pytest", "-q", "tests/a b.py"]
    assert settings.test.timeout == 30 and settings.test.env == {"FOO": "1"}


def test_tool_clude_in_pyproject_and_search_from_a_subdirectory(tmp_path):
    write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n[tool.clude.test]\n'
                                       'command = ["pytest", "-x"]\n')
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    settings, source = load_settings(tmp_path / "pkg" / "sub")
    assert source == tmp_path / "pyproject.toml"
    assert settings.test.argv() == ["pytest", "-x"]


def test_clude_toml_wins_over_pyproject(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool.clude.test]\ntimeout = 1\n')
    write(tmp_path / "clude.toml", '[test]\ntimeout = 2\n')
    assert load_settings(tmp_path)[0].test.timeout == 2


def test_flags_override_the_file(tmp_path):
    write(tmp_path / "clude.toml", '[test]\ntimeout = 30\ncommand = "pytest"\n')
    settings, _ = load_settings(tmp_path, {"test": {"timeout": 5, "command": None}})
    assert settings.test.timeout == 5 and settings.test.argv() == ["pytest"]


def test_unknown_key_names_file_key_and_the_keys_expected(tmp_path):
    cfg = write(tmp_path / "clude.toml", '[test]\ncomand = "pytest"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path)
    message = str(err.value)
    assert str(cfg) in message
    assert "unknown key 'test.comand'" in message
    assert "expected one of: command, framework, timeout, junit, env" in message


def test_unknown_section(tmp_path):
    write(tmp_path / "clude.toml", '[tests]\ncommand = "pytest"\n')
    with pytest.raises(ConfigError, match=r"unknown key .tests. \(expected one of: test, model, agent, team, "
                                          r"sandbox, backends, prices\)"):
        load_settings(tmp_path)


def test_wrong_type_names_key_value_and_expectation(tmp_path):
    write(tmp_path / "clude.toml", '[test]\ntimeout = "soon"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path)
    assert "test.timeout: got 'soon'; input should be a valid number" in str(err.value)


def test_a_value_of_no_allowed_type_gives_one_line(tmp_path):
    write(tmp_path / "clude.toml", '[test]\ncommand = 5\n')
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path)
    lines = str(err.value).splitlines()
    assert len(lines) == 1 and "test.command: got 5" in lines[0]


def test_bad_framework_and_negative_timeout_are_both_reported(tmp_path):
    write(tmp_path / "clude.toml", '[test]\nframework = "mocha"\ntimeout = -1\n')
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path)
    assert "test.framework: got 'mocha'" in str(err.value)
    assert "test.timeout: got -1" in str(err.value)


def test_env_values_must_be_strings(tmp_path):
    write(tmp_path / "clude.toml", '[test.env]\nDEBUG = 1\n')
    with pytest.raises(ConfigError, match=r"test\.env\.DEBUG: got int; "):
        load_settings(tmp_path)


def test_invalid_toml_names_the_file_and_position(tmp_path):
    cfg = write(tmp_path / "clude.toml", '[test\ncommand = "x"\n')
    with pytest.raises(ConfigError, match=rf"{cfg}: not valid TOML: .*line 1"):
        load_settings(tmp_path)


def test_pyproject_errors_say_tool_clude(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool.clude]\ntest = 3\n')
    with pytest.raises(ConfigError, match=r"pyproject.toml \[tool.clude\]: test: got 3"):
        load_settings(tmp_path)


def test_a_value_under_test_env_is_never_echoed(tmp_path):
    write(tmp_path / "clude.toml", '[test]\nenv = "OPENAI_API_KEY=sk-not-to-be-shown"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path)
    assert "sk-not-to-be-shown" not in str(err.value)
    assert "test.env: got str" in str(err.value)


def test_a_broken_pyproject_above_the_project_is_not_its_concern(tmp_path):
    write(tmp_path / "pyproject.toml", "this is [ not toml\n")
    (tmp_path / "child").mkdir()
    write(tmp_path / "child" / "clude.toml", "[test]\ntimeout = 7\n")
    (tmp_path / "other").mkdir()
    assert load_settings(tmp_path / "child")[0].test.timeout == 7
    assert load_settings(tmp_path / "other")[0].test.timeout == 900
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(tmp_path)


def test_model_section(tmp_path):
    write(tmp_path / "clude.toml", '[model]\nprovider = "anthropic"\nname = "claude-x"\n'
                                   'api_key_env = "MY_KEY"\n[[model.quirks]]\npatterns = ["my-*"]\n'
                                   'tool_role = false\n[prices."claude-*"]\ninput = 3\noutput = 15\n')
    settings, _ = load_settings(tmp_path)
    assert (settings.model.provider, settings.model.name, settings.model.api_key_env) == \
        ("anthropic", "claude-x", "MY_KEY")
    assert settings.model.quirks[0].tool_role is False
    assert settings.prices["claude-*"].output == 15


def test_model_section_errors_name_the_key(tmp_path):
    write(tmp_path / "clude.toml", '[model]\nprovider = "gemini"\nmax_tokens = 0\n')
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path)
    assert "model.provider: got 'gemini'" in str(err.value)
    assert "model.max_tokens: got 0" in str(err.value)
