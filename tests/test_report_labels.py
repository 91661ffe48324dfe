"""FAILED and ERROR in the concise report mean what pytest means by them: FAILED for a test whose own check
failed, ERROR for setup, teardown, collection or a process that broke; on real runs of every reader."""

from __future__ import annotations

import shutil
import sys

import pytest

from clude.config import TestConfig
from clude.harness import run_tests
from clude.harness.report import concise
from conftest import project_env, write_files


def _lines(root, command, **config) -> list[str]:
    verdict = run_tests(root, TestConfig(timeout=120, **config), command=command, use_cache=False,
                        env=project_env())
    return [line for line in concise(verdict).splitlines()[1:] if line.startswith(("FAILED ", "ERROR "))]


def test_pytest_an_assertion_is_failed_a_broken_fixture_or_module_an_error(tmp_path):
    write_files(tmp_path, {
        "test_p.py": "import pytest\n\n@pytest.fixture\ndef broken():\n    raise RuntimeError('fixture broke')\n\n"
                     "def test_fail():\n    assert 1 == 2\n\ndef test_setup(broken):\n    pass\n",
    })
    lines = _lines(tmp_path, [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"])
    assert sorted(lines) == ["ERROR test_p.py:5 test_p.py::test_setup — RuntimeError: fixture broke",
                             "FAILED test_p.py:8 test_p.py::test_fail — assert 1 == 2"]
    write_files(tmp_path, {"test_q.py": "import no_such_module\n"})  # a collection error
    lines = _lines(tmp_path, [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"])
    assert len(lines) == 1 and lines[0].startswith("ERROR test_q.py")


def test_unittest_a_failed_assertion_is_failed_an_exception_in_setup_an_error(tmp_path):
    write_files(tmp_path, {"test_u.py": (
        "import unittest\n\nclass T(unittest.TestCase):\n    def test_fail(self):\n        self.assertEqual(1, 2)\n\n"
        "class S(unittest.TestCase):\n    def setUp(self):\n        raise RuntimeError('setup broke')\n\n"
        "    def test_x(self):\n        pass\n")})
    lines = _lines(tmp_path, [sys.executable, "-m", "unittest"])
    assert sorted(lines) == ["ERROR test_u.py:9 test_u.S.test_x — RuntimeError: setup broke",
                             "FAILED test_u.py:5 test_u.T.test_fail — AssertionError: 1 != 2"]


def test_junit_failure_is_failed_and_error_is_error(tmp_path):
    xml = ('<testsuite name="s">'
           '<testcase classname="c" name="a" file="a.py" line="3"><failure message="a is wrong"/></testcase>'
           '<testcase classname="c" name="b" file="b.py" line="7"><error message="b could not start"/></testcase>'
           '</testsuite>')
    write_files(tmp_path, {"run.py": "import os, sys\nos.makedirs('out', exist_ok=True)\n"
                                     f"open('out/junit.xml', 'w').write({xml!r})\nsys.exit(1)\n"})
    lines = _lines(tmp_path, [sys.executable, "run.py"], framework="generic", junit="out/junit.xml")
    assert lines == ["FAILED a.py:3 c::a — a is wrong", "ERROR b.py:7 c::b — b could not start"]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_node_a_failed_assertion_is_failed_a_failed_hook_an_error(tmp_path):
    write_files(tmp_path, {"t.test.js": (
        "const test = require('node:test');\nconst assert = require('node:assert');\n"
        "test('adds', () => { assert.strictEqual(1 + 1, 3); });\n"
        "test.describe('group', () => {\n  test.before(() => { throw new Error('setup broke'); });\n"
        "  test('inside', () => {});\n});\n")})
    lines = _lines(tmp_path, ["node", "--test"])
    assert lines[0] == "FAILED t.test.js:3 t.test.js::adds — Expected values to be strictly equal: 2 !== 3"
    assert "ERROR t.test.js:5 t.test.js::group — setup broke" in lines[1:]
    assert all(line.startswith("ERROR ") for line in lines[1:])
