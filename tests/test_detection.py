"""Which runner a project's tests are run with, and the evidence shown for it (`clude test --explain`),
on real files in temp dirs and real interpreters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from clude.config import TestConfig
from clude.harness import Status, run_tests
from clude.harness.runner import explain
from conftest import project_env, write_files

CLUDE = [sys.executable, "-m", "clude"]


def lines(root: Path, env: dict[str, str] | None = None, config: TestConfig | None = None) -> list[str]:
    found, said = explain(root, config or TestConfig(), None, env or project_env())
    assert found, said
    return said


def test_a_plain_pytest_layout_is_pytest_because_pytest_is_installed(tmp_path):
    """tests/test_x.py with bare test functions: no import of pytest, no configuration."""
    write_files(tmp_path, {"tests/test_x.py": "def test_one():\n    assert 1 + 1 == 2\n",
                           "tests/test_y.py": "def test_two():\n    assert 'a'.upper() == 'A'\n"})
    said = lines(tmp_path)
    assert said[1] == "framework: pytest" and said[0].endswith("-m pytest")
    assert "2 test file(s) named test_*.py or *_test.py" in said[3] and "pytest is installed for" in said[4]
    verdict = run_tests(tmp_path, TestConfig(), env=project_env(), use_cache=False)
    assert (verdict.status, verdict.counts.passed) == (Status.PASSED, 2)


def test_unittest_classes_and_doctests_in_a_project_that_declares_pytest_run_with_pytest(tmp_path):
    write_files(tmp_path, {
        "pyproject.toml": '[project]\nname = "p"\nversion = "1"\n[project.optional-dependencies]\n'
                          'test = ["pytest>=8", "pytest-cov"]\n',
        "tests/__init__.py": "",
        "tests/test_case.py": "import unittest\n\n\nclass T(unittest.TestCase):\n    def test_a(self):\n"
                              "        self.assertEqual(1, 1)\n",
        ".github/workflows/ci.yml": "jobs:\n  test:\n    steps:\n      - run: python -m pytest -q\n"})
    said = lines(tmp_path)
    assert said[1] == "framework: pytest"
    assert "  - pyproject.toml: pytest in the dependency group 'test'" in said
    assert "  - .github/workflows/ci.yml runs pytest" in said


@pytest.mark.parametrize("files, reason", [
    ({"pytest.ini": "[pytest]\n"}, "pytest.ini"),
    ({"tests/conftest.py": ""}, "tests/conftest.py"),
    ({"setup.cfg": "[tool:pytest]\naddopts = -q\n"}, "setup.cfg [tool:pytest]"),
    ({"pyproject.toml": "[tool.pytest.ini_options]\naddopts = '-q'\n"}, "pyproject.toml [tool.pytest.ini_options]"),
    ({"requirements-dev.txt": "black\npytest==8.3.0\n"}, "requirements-dev.txt: pytest"),
    ({"pyproject.toml": '[dependency-groups]\ndev = ["pytest"]\n'},
     "pyproject.toml: pytest in the dependency group 'dev'"),
    ({"pyproject.toml": "[tool.poetry.group.dev.dependencies]\npytest = '^8'\n"},
     "pyproject.toml: pytest in poetry's 'dev'"),
    ({"tox.ini": "[testenv]\ncommands = pytest {posargs}\n"}, "tox.ini mentions pytest"),
    ({"noxfile.py": "def tests(session):\n    session.run('pytest')\n"}, "noxfile.py mentions pytest"),
])
def test_what_a_project_declares_is_the_evidence(tmp_path, bare_python, files, reason):
    """Declared pytest wins even where pytest is not installed (the run then says it is missing)."""
    write_files(tmp_path, {"tests/test_a.py": "import unittest\n", **files})
    said = lines(tmp_path, project_env(VIRTUAL_ENV=str(bare_python)))
    assert said[1] == "framework: pytest" and f"  - {reason}" in said


def test_unittest_only_when_nothing_points_to_pytest_and_imports_resolve_from_the_root(tmp_path, bare_python):
    """A package with relative imports in its tests: discovered with the project's root as top level."""
    write_files(tmp_path, {
        "pkg/__init__.py": "", "pkg/core.py": "def double(x):\n    return 2 * x\n",
        "tests/__init__.py": "", "tests/helpers.py": "EXPECTED = 4\n",
        "tests/test_core.py": "import unittest\n\nfrom pkg.core import double\n\nfrom .helpers import EXPECTED\n\n\n"
                              "class T(unittest.TestCase):\n    def test_double(self):\n"
                              "        self.assertEqual(double(2), EXPECTED)\n"})
    env = project_env(VIRTUAL_ENV=str(bare_python))
    said = lines(tmp_path, env)
    assert said[1] == "framework: unittest" and said[0].endswith("-m unittest discover -s tests -t .")
    assert "  - tests/test_core.py imports unittest" in said
    assert any(line.startswith("  - nothing points to pytest (not installed for") for line in said)
    verdict = run_tests(tmp_path, TestConfig(), env=env, use_cache=False)
    assert (verdict.status, verdict.counts.passed) == (Status.PASSED, 1), verdict.reason


def test_explain_on_the_command_line_names_the_configuration_or_says_nothing_is_found(tmp_path):
    configured = write_files(tmp_path / "configured", {"clude.toml": '[test]\ncommand = ["python3", "-m", "pytest", '
                                                                    '"-q"]\n'})
    done = subprocess.run([*CLUDE, "test", "--explain", "-C", str(configured)], capture_output=True, text=True,
                          env=project_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["command: python3 -m pytest -q", "framework: pytest", "because:",
                                        "  - [test] command in clude.toml"]
    empty = tmp_path / "empty"
    empty.mkdir()
    done = subprocess.run([*CLUDE, "test", "--explain", "-C", str(empty)], capture_output=True, text=True,
                          env=project_env())
    assert done.returncode == 4 and done.stdout.startswith("found no tests to run in")


def test_a_plugin_class_from_an_installed_module_registered_at_run_time_is_no_tampering(tmp_path):
    """pytest registers some of its own plugins as classes during the session (legacypath-tmpdir in
    pytest 9.0): code outside the project is never taken for the tests hooking into pytest."""
    write_files(tmp_path, {"tests/test_x.py": "import json\n\n\ndef test_late(request):\n"
                                              "    request.config.pluginmanager.register(json.JSONDecoder, 'late')\n"})
    verdict = run_tests(tmp_path, TestConfig(), env=project_env(), use_cache=False)
    assert verdict.status == Status.PASSED, verdict.reason


def test_what_tox_runs_pytest_on_is_what_clude_runs(tmp_path):
    """tox.ini's pytest command collects doctest modules from the package and tests/: clude runs the
    same tests tox does (the doctests counted), and says why; coverage and output options stay out."""
    write_files(tmp_path, {
        "tox.ini": "[tox]\nenvlist = py3\n\n[testenv]\ndeps = pytest\ncommands =\n"
                   "    pytest -v --cov-config tox.ini --basetemp={envtmpdir} --doctest-modules \\\n"
                   "        {envsitepackagesdir}/pkg {toxinidir}/tests {posargs:-x --durations=3}\n",
        "src/pkg/__init__.py": 'def inc(n):\n    """\n    >>> inc(1)\n    2\n    """\n    return n + 1\n',
        "tests/test_pkg.py": "import sys\nsys.path.insert(0, 'src')\nfrom pkg import inc\n\n\n"
                             "def test_inc():\n    assert inc(2) == 3\n"})
    said = lines(tmp_path)
    assert said[0].endswith("-m pytest --doctest-modules src/pkg tests"), said
    assert "  - tox.ini's pytest command collects with `--doctest-modules src/pkg tests`: clude runs the same" in said
    verdict = run_tests(tmp_path, TestConfig(), env=project_env(), use_cache=False)
    assert (verdict.status, verdict.counts.passed) == (Status.PASSED, 2), verdict.public()


@pytest.mark.parametrize("commands, args", [
    ("py.test --basetemp={envtmpdir} --cov=pkg {posargs}", []),
    ("{envpython} -m pytest -m 'not slow' --ignore=tests/big --deselect tests/t.py::x tests",
     ["-m", "not slow", "--ignore=tests/big", "--deselect", "tests/t.py::x", "tests"]),
    ("coverage run -m pytest --doctest-glob '*.rst' docs", ["--doctest-glob", "*.rst", "docs"]),
    ("flake8 pkg\n    pytest /etc ../up tests/nowhere {toxinidir}/tests", ["tests"]),
    ("python -m unittest discover", []),
])
def test_tox_pytest_arguments_kept_are_those_that_choose_tests(tmp_path, commands, args):
    from clude.harness.frameworks.toxargs import collect_args
    write_files(tmp_path, {"tests/t.py": "", "docs/a.rst": "", "pkg/__init__.py": ""})
    assert collect_args(tmp_path, f"[testenv]\ncommands =\n    {commands}\n") == args
