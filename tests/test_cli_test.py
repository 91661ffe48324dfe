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
    assert lines[1] == "ERROR test_m.py:5 test_m.py::test_b — AssertionError: b is broken " \
                       "assert 'x' == 'y' - y + x"
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
                                 "reason": "AssertionError: b is broken assert 'x' == 'y' - y + x"}]
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


def test_fifty_failures_stay_within_25_lines(tmp_path):
    (tmp_path / "test_many.py").write_text(
        "import pytest\n\n@pytest.mark.parametrize('i', range(50))\n"
        "def test_many(i):\n    assert i < 0, f'value {i} is not negative'\n")
    result = invoke(tmp_path, "--", *PYTEST)
    lines = result.output.splitlines()
    assert len(lines) <= 25
    assert "... and 30 more failures (all of them in the report)" in lines
    assert sum(line.startswith("ERROR test_many.py:5 ") for line in lines) == 20


def test_the_installed_command_runs_as_a_process(project):
    """The console script and `python -m clude` both work end to end."""
    out = subprocess.run([sys.executable, "-m", "clude", "test", "--json", "--", *PYTEST],
                         cwd=project, capture_output=True, text=True, env=project_env())
    assert out.returncode == 1, out.stderr
    assert json.loads(out.stdout)["counts"]["failed"] == 1
    assert os.path.isdir(project / ".clude" / "reports")
