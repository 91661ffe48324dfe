"""`clude doctor` and the pre-flight of `clude run` / `clude team run`: real git, real test commands,
real processes in tmp_path; the model is scripted or a loopback stub."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent_helpers import sample_project
from clude.cli.main import main
from clude.config import load_settings
from clude.llm.stubs import OpenAIStub
from clude.doctor import Check, ask_model, probe_model, run_checks
from team_helpers import team_project

SCRIPTED = '[model]\nprovider = "scripted"\nscript = "script.json"\n'
SECRET = "sk-doctor-" + "s3cr3t" * 6
MISSING_VENV = '[test]\ncommand = ".venv/bin/python -m pytest -q"\n' + SCRIPTED


def clean_env(**extra: str | None) -> dict[str, str | None]:
    """For CliRunner: no variable of an outer clude or pytest run, no key of a real backend, plus `extra`."""
    unset = {k: None for k in os.environ
             if k.startswith(("CLUDE_", "PYTEST_", "ANTHROPIC_", "CLAUDE_", "OPENAI_", "CODEX_"))}
    return {**unset, **extra}


def doctor(root: Path, *args: str, env: dict | None = None):
    return CliRunner().invoke(main, ["doctor", "-C", str(root), *args], env=clean_env(**(env or {})),
                              catch_exceptions=False)


def scripted_project(tmp_path: Path, **files: str) -> Path:
    """The sample project (2 tests) with a scripted model; `files` added or replaced before its commit."""
    if "clude.toml" not in files:
        command = json.dumps([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"])
        files["clude.toml"] = f"[test]\ncommand = {command}\n{SCRIPTED}"
    return sample_project(tmp_path / "p", **{"script.json": "[]", **files})


def lines_of(output: str, kind: str, name: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(f"{kind} {name} — ")]


# a healthy project ------------------------------------------------------------------------------
def test_a_healthy_pytest_project_is_all_ok_with_the_tests_counted(tmp_path):
    root = scripted_project(tmp_path)
    result = doctor(root, "--scope", "run")
    assert result.exit_code == 0, result.output
    assert not lines_of(result.output, "ERROR", "")
    names = [line.split(" — ")[0] for line in result.output.splitlines()]
    assert names == ["OK git", "OK model", "OK tests", "OK sandbox", "OK disk"]
    assert "2 tests collected" in lines_of(result.output, "OK", "tests")[0]
    assert "scripted model" in lines_of(result.output, "OK", "model")[0]
    assert "(pytest: [test] command in clude.toml): " in lines_of(result.output, "OK", "tests")[0]  # as --explain


def test_a_healthy_team_is_all_ok_and_json_has_the_documented_shape(tmp_path):
    root, upstream = team_project(tmp_path, team=SCRIPTED, files={"script.json": "[]"})
    result = doctor(root, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {"ok", "checks"} and data["ok"] is True
    assert all(set(c) == {"name", "ok", "detail", "warn"} and c["ok"] and not c["warn"] for c in data["checks"])
    found = {c["name"]: c["detail"] for c in data["checks"]}
    assert list(found) == ["git", "upstream", "upstream push", "upstream protection", "backend clude", "model",
                           "tests", "sandbox", "disk"]
    assert "refuses force pushes and deleting branches" in found["upstream protection"]
    assert "bubblewrap" in found["sandbox"] and "network shared" in found["sandbox"]
    assert upstream in found["upstream"] and "main at" in found["upstream"]
    assert "clude, version" in found["backend clude"]
    assert "GiB free" in found["disk"]


# the tests --------------------------------------------------------------------------------------
def test_a_missing_interpreter_is_an_error_and_clude_run_refuses_before_any_session(tmp_path):
    root = scripted_project(tmp_path, **{"clude.toml": MISSING_VENV})
    result = doctor(root)
    assert result.exit_code == 4
    [line] = lines_of(result.output, "ERROR", "tests")
    assert ".venv/bin/python does not exist" in line and "python3 -m venv .venv" in line
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLUDE_", "PYTEST_"))}
    run = subprocess.run([sys.executable, "-m", "clude", "run", "--headless", "--json", "x", "-C", str(root)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 4, run.stdout + run.stderr
    out = json.loads(run.stdout)
    assert out["status"] == "error" and out["session_id"] is None and ".venv/bin/python" in out["reason"]
    assert "ERROR tests — " in run.stderr and "--no-doctor" in run.stderr
    assert not (root / ".clude" / "sessions").exists()


def test_a_conftest_with_a_syntax_error_is_an_error_naming_the_file(tmp_path):
    root = scripted_project(tmp_path, **{"conftest.py": "def broken(:\n"})
    result = doctor(root, "--scope", "run")
    assert result.exit_code == 4
    [line] = lines_of(result.output, "ERROR", "tests")
    assert "conftest.py" in line and "SyntaxError" in line


def test_a_test_module_that_cannot_be_imported_is_named_with_its_error(tmp_path):
    root = scripted_project(tmp_path, **{"test_more.py": "import no_such_module_here\n"})
    [check] = [c for c in checks_of(root, "run") if c.name == "tests"]
    assert not check.ok
    assert "collecting test_more.py failed" in check.detail and "no_such_module_here" in check.detail


def test_no_tests_is_an_error_for_a_team_and_a_warning_for_one_agent(tmp_path):
    root = scripted_project(tmp_path, **{"test_calc.py": "# no tests any more\n"})
    settings, _ = load_settings(root)
    from clude.doctor.suite import tests_check

    strict = tests_check(root, settings.test, os.environ, strict=True)
    lenient = tests_check(root, settings.test, os.environ, strict=False)
    assert not strict.ok and "collects no tests" in strict.detail and "verify nothing" in strict.detail
    assert lenient.ok and lenient.detail.startswith("WARNING") and "will not be verified" in lenient.detail


def test_unittest_suites_are_loaded_and_counted_without_running(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text(
        "import unittest\n\nclass T(unittest.TestCase):\n    def test_one(self):\n        open('ran', 'w')\n\n"
        "    def test_two(self):\n        pass\n")
    (tmp_path / "clude.toml").write_text(
        f'[test]\ncommand = {json.dumps([sys.executable, "-m", "unittest", "discover", "-s", "tests"])}\n')
    [check] = [c for c in checks_of(tmp_path, "run") if c.name == "tests"]
    assert check.ok and "2 tests collected" in check.detail
    assert "(unittest: [test] command in clude.toml)" in check.detail
    assert not (tmp_path / "ran").exists()
    (tmp_path / "tests" / "test_b.py").write_text("import no_such_module_here\n")
    [check] = [c for c in checks_of(tmp_path, "run") if c.name == "tests"]
    assert not check.ok and "test_b" in check.detail and "no_such_module_here" in check.detail


def checks_of(root: Path, scope: str, **kw) -> list[Check]:
    settings, _ = load_settings(root)
    return run_checks(root, settings, env=kw.pop("env", os.environ), scope=scope, **kw)


# git --------------------------------------------------------------------------------------------
def test_no_repository_is_fine_for_one_agent_but_not_for_parallel_steps(tmp_path):
    root = scripted_project(tmp_path)
    shutil.rmtree(root / ".git")
    [git] = [c for c in checks_of(root, "run") if c.name == "git"]
    assert git.ok and "not a git repository" in git.detail
    with open(root / "clude.toml", "a") as f:
        f.write("[agent]\nparallel = 2\n")
    [git] = [c for c in checks_of(root, "run") if c.name == "git"]
    assert not git.ok and "git init" in git.detail


# backends ---------------------------------------------------------------------------------------
def test_a_backend_whose_program_is_not_on_path_says_how_to_install_it(tmp_path):
    root, _ = team_project(tmp_path, fast=True,
                           team='[backends.claude]\ncommand = ["claude-not-installed-here", "-p"]')
    result = doctor(root, "--backend", "claude", env={"ANTHROPIC_API_KEY": SECRET})
    assert result.exit_code == 4
    [line] = lines_of(result.output, "ERROR", "backend claude")
    assert "claude-not-installed-here is not on PATH" in line
    assert "npm install -g @anthropic-ai/claude-code" in line
    assert SECRET not in result.output
    command = doctor(root, "--scope", "team", "--command", "no-such-agent-cli {prompt_file}")
    [line] = lines_of(command.output, "ERROR", "backend command")
    assert "no-such-agent-cli is not on PATH" in line and "--command" in line


def test_a_cli_of_another_version_than_its_command_was_tried_with_is_said(tmp_path):
    """doctor names the version it found and the one clude's command for it was tried with."""
    fake = tmp_path / "bin" / "codex"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'codex-cli 9.9.9'\n")
    fake.chmod(0o755)
    root, _ = team_project(tmp_path, fast=True)
    env = {"OPENAI_API_KEY": SECRET, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}"}
    result = doctor(root, "--backend", "codex", env=env)
    [line] = lines_of(result.output, "OK", "backend codex")
    assert "codex-cli 9.9.9" in line and "was tried with 0.171.0" in line and "[backends.codex] command" in line
    assert SECRET not in result.output


def test_a_missing_variable_is_named_and_no_value_is_ever_shown(tmp_path):
    mine = (f'[backends.mine]\ncommand = {json.dumps([sys.executable, "-c", "pass"])}\n'
            'required_env = ["MINE_TOKEN", "OTHER_TOKEN"]\n')
    root, _ = team_project(tmp_path, fast=True, team=mine)
    env = {"OTHER_TOKEN": SECRET, "OPENAI_API_KEY": SECRET}
    for args in ((), ("--json",)):
        result = doctor(root, "--backend", "mine", *args, env=env)
        assert result.exit_code == 4
        assert "MINE_TOKEN is not set" in result.output and SECRET not in result.output
    assert "OTHER_TOKEN is not set" not in result.output
    claude = doctor(root, "--backend", "claude", env=env)
    assert "none of ANTHROPIC_API_KEY, CLAUDE_CODE_OAUTH_TOKEN or ANTHROPIC_AUTH_TOKEN is set" in claude.output
    assert SECRET not in claude.output


def test_team_run_refuses_before_starting_any_worker(tmp_path):
    root, _ = team_project(tmp_path, fast=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLUDE_", "PYTEST_"))}
    run = subprocess.run([sys.executable, "-m", "clude", "team", "run", "--backend", "command", "--command",
                          "no-such-agent-cli {prompt_file}", "-C", str(root)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 4, run.stdout + run.stderr
    assert "ERROR backend command — no-such-agent-cli is not on PATH" in run.stderr
    assert "started 3 workers" not in run.stderr and not (root / ".clude" / "agents").exists()


# the upstream -----------------------------------------------------------------------------------
def test_an_upstream_that_does_not_exist_is_an_error(tmp_path):
    root, _ = team_project(tmp_path, fast=True, team=SCRIPTED, files={"script.json": "[]"})
    result = doctor(root, "--upstream", str(tmp_path / "nowhere.git"))
    assert result.exit_code == 4
    [line] = lines_of(result.output, "ERROR", "upstream")
    assert "nowhere.git does not exist" in line and "clude team init" in line
    unreachable = doctor(root, "--upstream", f"file://{tmp_path}/nowhere.git")
    [line] = lines_of(unreachable.output, "ERROR", "upstream")
    assert "cannot reach the upstream" in line


def test_a_dry_run_push_to_a_healthy_upstream_url_is_ok(tmp_path):
    root, upstream = team_project(tmp_path, fast=True, team=SCRIPTED, files={"script.json": "[]"})
    before = subprocess.run(["git", "--git-dir", upstream, "for-each-ref"], capture_output=True, text=True).stdout
    checks = {c.name: c for c in checks_of(root, "team", upstream=f"file://{upstream}")}
    assert checks["upstream push"].ok and "accepts pushes (dry run)" in checks["upstream push"].detail
    after = subprocess.run(["git", "--git-dir", upstream, "for-each-ref"], capture_output=True, text=True).stdout
    assert after == before  # nothing was pushed


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_upstream_whose_refs_are_not_writable_is_an_error(tmp_path):
    root, upstream = team_project(tmp_path, team=SCRIPTED, files={"script.json": "[]"})
    refs = Path(upstream) / "refs"
    refs.chmod(0o555)
    try:
        checks = {c.name: c for c in checks_of(root, "team")}
    finally:
        refs.chmod(0o755)
    assert not checks["upstream push"].ok and "not writable" in checks["upstream push"].detail


# the model --------------------------------------------------------------------------------------
def test_a_scripted_model_without_its_script_is_an_error(tmp_path):
    root = scripted_project(tmp_path)
    (root / "script.json").unlink()
    result = doctor(root, "--scope", "run")
    assert result.exit_code == 4
    [line] = lines_of(result.output, "ERROR", "model")
    assert "script.json" in line and "cannot be read" in line
    (root / "script.json").write_text('{"not": "a list"}')
    [line] = lines_of(doctor(root, "--scope", "run").output, "ERROR", "model")
    assert "must hold a JSON list" in line


def test_the_model_is_asked_by_doctor_and_only_probed_before_a_run(tmp_path):
    root = sample_project(tmp_path / "p")
    with OpenAIStub(["OK"]) as stub:
        with open(root / "clude.toml", "a") as f:
            f.write(f'[model]\nprovider = "openai"\nname = "stub-model"\nbase_url = "{stub.base_url}"\n')
        settings, _ = load_settings(root)
        asked = ask_model(settings.model, root, {})
        probed = probe_model(settings.model, root, {})
        posts = [r for r in stub.requests if r["method"] == "POST"]
    assert "answered in" in str(asked) and asked.usage.output_tokens >= 0
    assert "answers in" in probed and "not among" not in probed
    assert len(posts) == 1  # the probe asked for the model list only: no reply of the script taken
    injected = checks_of(root, "run", model_check=lambda config, where, env: f"injected {config.name}")
    assert [c.detail for c in injected if c.name == "model"] == ["injected stub-model"]


def test_a_team_whose_test_interpreter_is_not_committed_is_refused(tmp_path):
    root, _ = team_project(tmp_path, team=SCRIPTED, files={"script.json": "[]"})
    (root / "venv" / "bin").mkdir(parents=True)
    (root / "venv" / "bin" / "python").symlink_to(sys.executable)
    (root / "clude.toml").write_text('[test]\ncommand = "venv/bin/python -m pytest -q"\n' + SCRIPTED)
    run = checks_of(root, "run")
    team = checks_of(root, "team")
    assert [c.ok for c in run if c.name == "tests"] == [True]  # one agent works in the project itself
    [check] = [c for c in team if c.name == "tests"]
    assert not check.ok and "venv/bin/python, which is not committed to git" in check.detail
    assert str(root / "venv" / "bin" / "python") in check.detail


# what keeps agents contained ----------------------------------------------------------------------
def test_a_missing_bubblewrap_is_an_error_with_the_command_that_installs_it(tmp_path):
    root = scripted_project(tmp_path)
    result = doctor(root, "--scope", "run", env={"CLUDE_BWRAP": str(tmp_path / "no-bwrap")})
    assert result.exit_code == 4
    line = lines_of(result.output, "ERROR", "sandbox")[0]
    assert "bubblewrap (bwrap) is not installed" in line and "install" in line and "--sandbox off" in line


def test_a_sandbox_turned_off_is_a_warning_not_an_error(tmp_path):
    root = scripted_project(tmp_path, **{"clude.toml": '[sandbox]\nmode = "off"\n' + SCRIPTED})
    result = doctor(root, "--scope", "run")
    assert result.exit_code == 0, result.output
    assert "credentials" in lines_of(result.output, "WARN", "sandbox")[0]


def test_an_upstream_that_allows_force_pushes_and_deletions_is_a_warning_with_the_fix(tmp_path):
    root, upstream = team_project(tmp_path, team=SCRIPTED, files={"script.json": "[]"})
    subprocess.run(["git", "--git-dir", upstream, "config", "receive.denyDeletes", "false"], check=True)
    result = doctor(root)
    assert result.exit_code == 0, result.output
    line = lines_of(result.output, "WARN", "upstream protection")[0]
    assert "deleting branches" in line and f"git -C {upstream} config receive.denyDeletes true" in line
