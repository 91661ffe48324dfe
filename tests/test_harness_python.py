"""The pytest and unittest side of the harness where the corpus format cannot look: repeated runs,
signals to clude itself, the full report on disk, broken virtualenvs and the raw event stream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clude.config import TestConfig
from clude.harness import Status, concise, run_tests
from clude.harness.events import read_events
from clude.harness.inject.clude_events import strip_ansi
from conftest import project_env, write_files


def _run(project: Path, command: list[str] | None = None, **kwargs):
    kwargs.setdefault("env", project_env())
    return run_tests(project, TestConfig(timeout=60), command=command, use_cache=False, **kwargs)


@pytest.mark.parametrize("scenario, command", [
    ("pytest/fast-sample", None),
    ("unittest/fast-sample", ["{python}", "-m", "unittest"]),
])
def test_a_seed_selects_the_same_tests_every_run_and_another_seed_others(copy_project, scenario,
                                                                         command):
    project = copy_project(scenario)
    argv = [sys.executable if part == "{python}" else part for part in command] if command else None
    first = _run(project, argv, rate=0.3, seed="alpha")
    again = _run(project, argv, rate=0.3, seed="alpha")
    other = _run(project, argv, rate=0.3, seed="beta")
    for verdict in (first, again, other):
        assert verdict.status is Status.PASSED, verdict.public()
        assert verdict.sample is not None and verdict.sample.selected == len(verdict.outcomes)
        assert verdict.sample.of > verdict.sample.selected > 0
    assert set(first.outcomes) == set(again.outcomes)
    assert set(first.outcomes) != set(other.outcomes)
    assert (first.sample.seed, other.sample.seed) == ("alpha", "beta")


def test_ctrl_c_to_clude_stops_the_run_and_names_the_running_test(tmp_path):
    # The test sends SIGINT to its parent, the process running clude (here: this test), as a
    # terminal's Ctrl-C would; clude passes it on to the test process group and reports
    # `interrupted`. The test then waits until that SIGINT reaches it.
    project = write_files(tmp_path / "proj", {
        "conftest.py": "",
        "test_wait.py": (
            "import os, signal, threading\n\n"
            "def test_first():\n    pass\n\n"
            "def test_presses_ctrl_c_on_clude():\n"
            "    os.kill(os.getppid(), signal.SIGINT)\n"
            "    threading.Event().wait()\n"),
    })
    verdict = _run(project)
    assert verdict.status is Status.INTERRUPTED, verdict.public()
    assert "test_wait.py::test_presses_ctrl_c_on_clude" in verdict.reason
    assert verdict.outcomes == {"test_wait.py::test_first": "passed"}


def test_the_report_holds_all_5_mb_of_output_while_the_concise_report_stays_short(copy_project):
    project = copy_project("pytest/huge-output")
    verdict = _run(project)
    assert verdict.status is Status.FAILED, verdict.public()
    report = project / verdict.report_path
    assert report.stat().st_size > 5 * 1024 * 1024
    with open(report, "rb") as f:
        lines = sum(1 for line in f if line == b"x" * 99 + b"\n")
    assert lines >= 52_429  # every line the failing test printed, as pytest shows it
    text = concise(verdict)
    assert len(text.splitlines()) <= 25 and len(text) < 2000, text
    assert "FAILED test_loud.py:13 test_loud.py::test_prints_five_megabytes_then_fails" in text
    assert verdict.report_path in text


def test_a_virtualenv_whose_python_is_a_broken_symlink_is_an_error_naming_it(tmp_path):
    project = write_files(tmp_path / "proj", {"conftest.py": "", "test_a.py": "def test_a():\n    pass\n"})
    (project / ".venv" / "bin").mkdir(parents=True)
    (project / ".venv" / "bin" / "python").symlink_to("/nonexistent/clude/python3.99")
    env = {k: v for k, v in project_env().items() if k != "VIRTUAL_ENV"}
    for command in (None, [".venv/bin/python", "-m", "pytest"]):
        verdict = _run(project, command, env=env)
        assert verdict.status is Status.ERROR, verdict.public()
        assert ".venv/bin/python" in verdict.reason
        assert "/nonexistent/clude/python3.99" in verdict.reason
        assert verdict.counts.total == 0 and verdict.failures == []


def test_a_script_whose_interpreter_is_gone_is_an_error_naming_the_interpreter(tmp_path):
    project = write_files(tmp_path / "proj", {"conftest.py": "", "test_a.py": "def test_a():\n    pass\n",
                                         ".venv/bin/pytest": "#!/nonexistent/clude/bin/python\n"})
    os.chmod(project / ".venv" / "bin" / "pytest", 0o755)
    verdict = _run(project, [".venv/bin/pytest"])
    assert verdict.status is Status.ERROR, verdict.public()
    assert "#!/nonexistent/clude/bin/python" in verdict.reason


def test_an_interpreter_without_pytest_is_an_error_saying_so(tmp_path):
    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   capture_output=True, timeout=60)
    project = write_files(tmp_path / "proj", {"conftest.py": "", "test_a.py": "def test_a():\n    pass\n"})
    verdict = _run(project, [str(venv / "bin" / "python"), "-m", "pytest"])
    assert verdict.status is Status.ERROR, verdict.public()
    assert "pytest is not installed" in verdict.reason
    assert str(venv / "bin" / "python") in verdict.reason


def test_a_run_started_from_inside_another_clude_run_reports_for_itself(copy_project):
    # clude's variables of an outer run (its events owner, its sampling) must not leak in
    project = copy_project("pytest/fast-sample")
    env = project_env(CLUDE_EVENTS_OWNER="1", CLUDE_SAMPLE_RATE="0.1", CLUDE_SAMPLE_SEED="outer",
                      CLUDE_EVENTS_FILE=str(project / "outer-events.jsonl"))
    verdict = _run(project, env=env)
    assert verdict.status is Status.PASSED, verdict.public()
    assert verdict.counts.passed == 40 and verdict.sample is None
    assert not (project / "outer-events.jsonl").exists()


def test_the_event_reader_tolerates_junk_and_a_torn_line_and_cleans_undecodable_text(tmp_path):
    events = tmp_path / "events.jsonl"
    lines = [
        json.dumps({"ev": "start"}),
        "not json at all",
        json.dumps([1, 2]),
        json.dumps({"ev": "begin", "id": "t.py::test_a"}),
        json.dumps({"ev": "result", "id": "t.py::test_a", "outcome": "failed", "file": "t.py",
                    "line": 3, "reason": "OSError: caf\udce9"}),
        json.dumps({"ev": "begin", "id": "t.py::test_b"}),
        '{"ev": "result", "id": "t.py::te',  # the process died while writing
    ]
    events.write_text("\n".join(lines), encoding="utf-8")
    facts = read_events(events)
    assert facts.started and not facts.finished
    assert facts.outcomes == {"t.py::test_a": "failed"}
    assert facts.running == "t.py::test_b"
    assert facts.failures[0].reason == "OSError: caf\\xe9"
    assert read_events(tmp_path / "missing.jsonl").started is False


@pytest.mark.parametrize("on_ci", ["", "true"])
def test_a_project_that_forces_colour_gets_reasons_without_escape_codes(tmp_path, on_ci):
    """`--color=yes` in the project's own settings: pytest colours its text; no reason carries it. With
    CI=true pytest prints the whole coloured diff of two values: the reason keeps its summary only."""
    write_files(tmp_path, {"pytest.ini": "[pytest]\naddopts = --color=yes\n",
                           "tests/test_c.py": "def test_red():\n    assert {'a': 1} == {'a': 2}\n\n\n"
                                              "def test_raises():\n    raise ValueError('boom')\n"})
    env = {k: v for k, v in project_env().items() if k != "CI"}
    verdict = _run(tmp_path, env=dict(env, CI=on_ci) if on_ci else env)
    assert verdict.status == Status.FAILED and len(verdict.failures) == 2
    log = (tmp_path / verdict.report_path).read_text()
    assert "\x1b[" in log  # pytest did colour its output
    assert [f.reason for f in verdict.failures] == [
        "assert {'a': 1} == {'a': 2} Differing items: {'a': 1} != {'a': 2}", "ValueError: boom"]
    assert "\x1b" not in concise(verdict)


@pytest.mark.parametrize("text, plain", [
    ("x\x1b[1;31mred\x1b[0m", "xred"), ("\x1b]0;title\x07t", "t"), ("cut \x1b[39;", "cut "),
    ("cut \x1b", "cut "), ("a\x1b[2Kb", "ab")])
def test_escapes_are_taken_out_whole_or_cut_off(text, plain):
    assert strip_ansi(text) == plain


def test_a_verdict_says_whether_its_counts_are_complete(tmp_path):
    """A run stopped at the first failure (-x) counted only what ran before it; a whole run all of it."""
    write_files(tmp_path, {"tests/test_s.py": "def test_a():\n    assert 0\n\n\ndef test_b():\n    pass\n"})
    whole = _run(tmp_path)
    assert (whole.counts.total, whole.counts_complete) == (2, True)
    stopped = _run(tmp_path, [sys.executable, "-m", "pytest", "-x"])
    assert (stopped.counts.total, stopped.counts_complete) == (1, False), stopped.public()
    assert stopped.public()["counts_complete"] is False
    assert "1 failed, 0 errors, 0 skipped (incomplete: the run stopped before every test ran)" in concise(stopped)
    assert "incomplete" not in concise(whole)


def test_a_unittest_doctest_failure_is_located_at_its_example(tmp_path, bare_python):
    """Doctests that unittest runs (load_tests with DocTestSuite) fail at the example that went wrong,
    in the project's file, with what it expected and got: never at the standard library's doctest.py."""
    write_files(tmp_path, {
        "calc.py": 'def double(n):\n    """Twice n.\n\n    >>> double(2)\n    4\n    >>> double(3)\n    7\n    '
                   '"""\n    return n * 2\n\n\ndef half(n):\n    """\n    >>> half(0)\n    0\n    >>> half("x")\n'
                   '    1\n    """\n    return n // 2\n',
        "tests/__init__.py": "",
        "tests/test_calc.py": "import doctest\nimport unittest\n\nimport calc\n\n\ndef load_tests(loader, tests, "
                              "ignore):\n    tests.addTests(doctest.DocTestSuite(calc))\n    return tests\n\n\n"
                              "class T(unittest.TestCase):\n    def test_ok(self):\n"
                              "        self.assertEqual(calc.double(1), 2)\n"})
    verdict = _run(tmp_path, env=project_env(VIRTUAL_ENV=str(bare_python)))
    assert verdict.framework == "unittest" and verdict.counts.failed == 2, verdict.public()
    where = {f.id: (f.file, f.line, f.reason) for f in verdict.failures}
    assert where["calc.double"] == ("calc.py", 6, "doctest >>> double(3) expected 7, got 6")
    assert where["calc.half"][:2] == ("calc.py", 16)
    assert where["calc.half"][2].startswith("doctest >>> half(\"x\") raised TypeError: unsupported operand")
