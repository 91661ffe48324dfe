"""`clude test` from the command line: report, --json, exit codes, --compare, configuration errors."""

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from clude.cli.main import main
from clude.harness import EXIT_CODES, Status
from conftest import project_env

PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]


def invoke(project, *args):
    runner = CliRunner()
    return runner.invoke(main, ["test", "-C", str(project), *args], env=project_env(),
                         catch_exceptions=False)


@pytest.fixture
def project(tmp_path):
    (tmp_path / "test_m.py").write_text(
        "def test_a():\n    assert 1 == 1\n\n"
        "def test_b():\n    assert 'x' == 'y', 'b is broken'\n\n"
        "def test_c():\n    assert True\n")
    return tmp_path


def test_report_lines_and_exit_code(project):
    result = invoke(project, "--", *PYTEST)
    lines = result.output.splitlines()
    assert result.exit_code == EXIT_CODES[Status.FAILED] == 1
    assert lines[0].startswith("FAILED · pytest")
    assert lines[1] == "FAILED test_m.py:5 test_m.py::test_b — AssertionError: b is broken " \
                       "assert 'x' == 'y'"
    assert lines[2] == "2 passed, 1 failed, 0 errors, 0 skipped"
    assert lines[3].startswith("report: .clude/reports/") and lines[3].endswith("output.log")
    assert len(lines) == 4


def test_json_is_the_verdict(project):
    result = invoke(project, "--json", "--", *PYTEST)
    data = json.loads(result.output)
    assert result.exit_code == 1
    assert data["status"] == "failed" and data["exit_code"] == 1 and data["framework"] == "pytest"
    assert data["counts"] == {"passed": 2, "failed": 1, "errors": 0, "skipped": 0, "xfailed": 0,
                              "xpassed": 0, "total": 3}
    assert data["failures"] == [{"id": "test_m.py::test_b", "file": "test_m.py", "line": 5,
                                 "kind": "failure",
                                 "reason": "AssertionError: b is broken assert 'x' == 'y'"}]
    assert "outcomes" not in data and data["cached"] is False and data["sample"] is None
    saved = json.loads((project / data["report_path"]).with_name("verdict.json").read_text())
    assert saved["outcomes"] == {"test_m.py::test_a": "passed", "test_m.py::test_b": "failed",
                                 "test_m.py::test_c": "passed"}


def test_passed_is_exit_zero(tmp_path):
    (tmp_path / "test_ok.py").write_text("def test_ok():\n    pass\n")
    assert invoke(tmp_path, "--", *PYTEST).exit_code == 0


def test_no_tests_has_its_own_exit_code(tmp_path):
    (tmp_path / "test_empty.py").write_text("x = 1\n")
    result = invoke(tmp_path, "--", *PYTEST)
    assert result.exit_code == EXIT_CODES[Status.NO_TESTS] == 4
    assert result.output.startswith("NO_TESTS")


def test_compare_reports_regressions_and_fixes(project):
    invoke(project, "--", *PYTEST)
    base = next((project / ".clude" / "reports").glob("*/verdict.json"))
    base_copy = project.parent / "base.json"
    base_copy.write_text(base.read_text())
    (project / "test_m.py").write_text(
        "def test_a():\n    assert 1 == 2\n\n"
        "def test_b():\n    assert True\n\n"
        "def test_c():\n    assert True\n")
    result = invoke(project, "--compare", str(base_copy), "--", *PYTEST)
    assert result.exit_code == 7
    assert "1 regressions, 1 fixes against the base (3 tests)" in result.output
    assert "REGRESSION test_m.py::test_a — passed before, failed now" in result.output
    data = json.loads(invoke(project, "--json", "--compare", str(base_copy), "--", *PYTEST).output)
    assert data["comparison"]["regressions"] == {"test_m.py::test_a": "failed"}
    assert data["comparison"]["fixes"] == {"test_m.py::test_b": "failed"}


def test_save_keeps_a_verdict_compare_reads_even_from_the_cache(project):
    """--save writes the Verdict with every outcome; a second --save, answered by the cache, writes
    the same outcomes; a file that cannot be written is named."""
    first, second = project.parent / "first.json", project.parent / "second.json"
    assert invoke(project, "--save", str(first), "--", *PYTEST).exit_code == 1
    assert invoke(project, "--save", str(second), "--", *PYTEST).exit_code == 1
    kept = [json.loads(p.read_text()) for p in (first, second)]
    assert kept[0]["outcomes"] and kept[0]["outcomes"] == kept[1]["outcomes"] and kept[1]["cached"]
    result = invoke(project, "--compare", str(first), "--", *PYTEST)
    assert result.exit_code == 0 and "0 regressions, 0 fixes" in result.output
    bad = invoke(project, "--save", str(project.parent / "missing" / "v.json"), "--", *PYTEST)
    assert bad.exit_code == 2 and "cannot write" in bad.output and "--save" in bad.output


def test_compare_with_nothing_regressed_exits_zero_even_if_red(project):
    invoke(project, "--", *PYTEST)
    base = next((project / ".clude" / "reports").glob("*/verdict.json"))
    result = invoke(project, "--no-cache", "--compare", str(base), "--", *PYTEST)
    assert result.exit_code == 0
    assert "0 regressions, 0 fixes" in result.output


def test_compare_refuses_a_json_without_outcomes(project, tmp_path_factory):
    printed = tmp_path_factory.mktemp("b") / "printed.json"
    printed.write_text(invoke(project, "--json", "--", *PYTEST).output)
    result = CliRunner().invoke(main, ["test", "-C", str(project), "--compare", str(printed)],
                                env=project_env())
    assert result.exit_code == 2
    assert "has no per-test outcomes" in result.output


def test_config_error_is_exit_2_and_names_file_and_key(project):
    (project / "clude.toml").write_text("[test]\ntimout = 3\n")
    result = CliRunner().invoke(main, ["test", "-C", str(project)], env=project_env())
    assert result.exit_code == 2
    assert "clude.toml: unknown key 'test.timout'" in result.output


def test_bad_fast_rate_is_a_usage_error(project):
    result = CliRunner().invoke(main, ["test", "-C", str(project), "--fast", "0"], env=project_env())
    assert result.exit_code == 2 and "--fast" in result.output


def test_fifty_failures_stay_within_25_lines_and_2_kb(tmp_path):
    (tmp_path / "test_many.py").write_text(
        "import pytest\n\n@pytest.mark.parametrize('i', range(50))\n"
        "def test_many(i):\n    assert i < 0, f'value {i} is not negative'\n")
    result = invoke(tmp_path, "--", *PYTEST)
    lines = result.output.splitlines()
    assert len(lines) <= 25 and len(result.output.encode()) <= 2000
    shown = [line for line in lines if line.startswith("FAILED test_many.py:5 test_many.py::test_many[")]
    assert 10 <= len(shown) <= 20
    assert f"... and {50 - len(shown)} more failures (all of them in the report)" in lines
    assert all(line.endswith("is not negative assert {0} < 0".format(line.split("[")[1].split("]")[0]))
               for line in shown)


def test_the_installed_command_runs_as_a_process(project):
    """The console script and `python -m clude` both work end to end."""
    out = subprocess.run([sys.executable, "-m", "clude", "test", "--json", "--", *PYTEST],
                         cwd=project, capture_output=True, text=True, env=project_env())
    assert out.returncode == 1, out.stderr
    assert json.loads(out.stdout)["counts"]["failed"] == 1
    assert os.path.isdir(project / ".clude" / "reports")


def test_a_cache_hit_is_answered_without_importing_pydantic_and_says_the_same(project):
    (project / "clude.toml").write_text(
        f'[test]\ncommand = {PYTEST!r}\ntimeout = 60\n[test.env]\nMODE = "x"\n'.replace("'", '"'))
    run = [sys.executable, "-X", "importtime", "-m", "clude", "test", "--json"]
    first = subprocess.run(run, cwd=project, capture_output=True, text=True, env=project_env())
    second = subprocess.run(run, cwd=project, capture_output=True, text=True, env=project_env())
    assert "pydantic" in first.stderr and "pydantic" not in second.stderr
    before, after = json.loads(first.stdout), json.loads(second.stdout)
    assert (before.pop("cached"), after.pop("cached")) == (False, True)
    assert before == after and second.returncode == first.returncode == 1
    report = subprocess.run([sys.executable, "-m", "clude", "test"], cwd=project,
                            capture_output=True, text=True, env=project_env()).stdout
    assert report.splitlines()[0].endswith("cached: tree unchanged")


def test_the_api_and_the_command_line_share_cache_entries(project):
    from clude.config import load_settings
    from clude.harness import run_tests
    (project / "clude.toml").write_text(f"[test]\ncommand = {PYTEST!r}\n".replace("'", '"'))
    assert not json.loads(invoke(project, "--json").output)["cached"]
    settings, _ = load_settings(project)
    assert run_tests(project, settings.test, env=project_env()).cached


def test_a_cached_verdict_whose_interpreter_is_gone_is_not_answered(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages",
                    str(venv)], check=True)
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "test_ok.py").write_text("def test_ok():\n    pass\n")
    command = [str(venv / "bin" / "python"), "-m", "pytest", "-p", "no:cacheprovider"]
    env = {**project_env(), "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    first = CliRunner().invoke(main, ["test", "-C", str(tmp_path / "proj"), "--", *command], env=env)
    assert first.exit_code == 0, first.output
    for link in (venv / "bin").glob("python*"):
        link.unlink()
    again = CliRunner().invoke(main, ["test", "-C", str(tmp_path / "proj"), "--", *command], env=env)
    assert again.exit_code == EXIT_CODES[Status.ERROR]
    assert "venv/bin/python does not exist" in again.output
