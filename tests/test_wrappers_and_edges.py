"""Commands clude does not run directly, odd programs, pytest options that run nothing, and stops."""

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from clude.config import TestConfig
from clude.harness import EXIT_CODES, Status, run_tests
from conftest import project_env, write_files

MAKEFILE = ".PHONY: test\ntest:\n\t{}\n"


def _run(project, command=None, env=None, **kw):
    return run_tests(project, TestConfig(timeout=60), command=command, use_cache=False,
                     env=env or project_env(), **kw)


def test_make_test_in_a_pytest_project_is_read_exactly(tmp_path):
    project = write_files(tmp_path, {
        "conftest.py": "",
        "test_a.py": "def test_ok():\n    pass\n\ndef test_bad():\n    assert 1 == 2\n",
        "Makefile": MAKEFILE.format(f"{sys.executable} -m pytest -p no:cacheprovider")})
    verdict = _run(project, ["make", "test"])
    assert (verdict.framework, verdict.status) == ("pytest", Status.FAILED), verdict.public()
    assert (verdict.counts.passed, verdict.counts.failed) == (1, 1)
    assert verdict.failures[0].file == "test_a.py" and verdict.failures[0].line == 5


def test_make_test_in_a_unittest_project_is_left_alone_and_explained(tmp_path, bare_python):
    """(Where pytest is not installed: with it, the project is pytest's, which runs unittest classes.)"""
    project = write_files(tmp_path, {
        "tests/test_u.py": "import unittest\n\nclass T(unittest.TestCase):\n"
                           "    def test_x(self):\n        self.assertEqual(1, 2)\n",
        "Makefile": MAKEFILE.format(f"{sys.executable} -m unittest discover -s tests")})
    verdict = _run(project, ["make", "test"], env=project_env(VIRTUAL_ENV=str(bare_python)))
    assert verdict.status is Status.ERROR, verdict.public()
    assert "cannot read the results of `make test`" in verdict.reason
    log = (project / verdict.report_path).read_text()
    assert "FAILED (failures=1)" in log  # make really ran unittest, unchanged


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_make_test_in_a_node_project_is_read_through_node_options(tmp_path):
    project = write_files(tmp_path, {
        "test/a.test.js": "const test = require('node:test');\nconst assert = require('node:assert');\n"
                          "test('ok', () => {});\ntest('bad', () => { assert.strictEqual(1, 2); });\n",
        "Makefile": MAKEFILE.format("node --test")})
    verdict = _run(project, ["make", "test"])
    assert (verdict.framework, verdict.status) == ("node", Status.FAILED), verdict.public()
    assert (verdict.counts.passed, verdict.counts.failed) == (1, 1)


@pytest.mark.parametrize("option", ["--setup-only", "--setup-plan"])
def test_pytest_options_that_run_no_test_are_not_a_pass(tmp_path, option):
    project = write_files(tmp_path, {"test_a.py": "def test_a():\n    assert False\n"})
    verdict = _run(project, [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", option])
    assert verdict.status is Status.NO_TESTS, verdict.public()


def test_fast_samples_what_minus_k_selects(tmp_path):
    project = write_files(tmp_path, {"test_k.py": "".join(
        f"def test_t{i}():\n    pass\n\n" for i in range(40))})
    for seed in ("a", "b", "c"):
        verdict = _run(project, [sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                                 "-k", "t7"], rate=0.1, seed=seed)
        assert list(verdict.outcomes) == ["test_k.py::test_t7"], verdict.public()
        assert (verdict.sample.selected, verdict.sample.of) == (1, 1)


def test_a_directory_or_a_file_the_kernel_cannot_run_is_an_error(tmp_path):
    (tmp_path / "somedir").mkdir()
    verdict = _run(tmp_path, ["./somedir"])
    assert verdict.status is Status.ERROR and "is not a file" in verdict.reason
    script = tmp_path / "run-tests"
    script.write_text("echo no shebang line\n")
    script.chmod(0o755)
    verdict = _run(tmp_path, ["./run-tests"])
    assert verdict.status is Status.ERROR and "Exec format error" in verdict.reason


def test_sigterm_to_clude_stops_the_tests_and_still_gives_a_verdict(tmp_path):
    fifo = tmp_path / "ready"
    os.mkfifo(fifo)
    project = write_files(tmp_path / "p", {"test_wait.py": (
        "import os, threading\n\n"
        "def test_waits():\n"
        f"    open({str(tmp_path / 'pid')!r}, 'w').write(str(os.getpid()))\n"
        f"    open({str(fifo)!r}, 'w').write('ready\\n')\n"
        "    threading.Event().wait()\n")})
    clude = subprocess.Popen([sys.executable, "-m", "clude", "test", "--json", "--", sys.executable,
                              "-m", "pytest", "-p", "no:cacheprovider"], cwd=project,
                             stdout=subprocess.PIPE, text=True, env=project_env())
    with open(fifo) as ready:  # blocks until the test is running
        assert ready.readline() == "ready\n"
    clude.send_signal(signal.SIGTERM)
    out, _ = clude.communicate(timeout=60)
    assert clude.returncode == EXIT_CODES[Status.INTERRUPTED]
    verdict = json.loads(out)
    assert verdict["status"] == "interrupted" and "test_wait.py::test_waits" in verdict["reason"]
    test_pid = int((tmp_path / "pid").read_text())
    try:
        fd = os.pidfd_open(test_pid)
    except ProcessLookupError:
        return  # already gone and reaped
    import select
    try:
        assert select.select([fd], [], [], 30)[0], "the test process outlived clude"
    finally:
        os.close(fd)
