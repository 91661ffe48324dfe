"""pytest and unittest: results come from clude's own plugin and runner (inject/), loaded by PYTHONPATH."""

from __future__ import annotations

import os
from pathlib import Path

from clude.harness.diagnostics import explain
from clude.harness.events import read_events
from clude.harness.frameworks.base import (Framework, Plan, RunContext, can_import, find_files,
                                           project_python, runs_module)
from clude.harness.frameworks.pyevidence import HEAD_BYTES, file_text, pytest_evidence
from clude.harness.frameworks.toxargs import collect_args
from clude.harness.inject.clude_events import location_in_text
from clude.harness.verdict import RunFacts

INJECT_DIR = Path(__file__).resolve().parent.parent / "inject"
PYTEST_EXIT_NO_TESTS = 5
PYTEST_EXIT_INTERNAL = 3
PYTEST_EXIT_USAGE = 4


def _inject_env(ctx: RunContext, events: Path) -> dict[str, str]:
    path = ctx.env.get("PYTHONPATH")
    # Set every variable the inject files read, so nothing leaks in from a clude run that started
    # this one (clude run inside a test that clude runs): the events owner is left for the test
    # process to claim, and sampling is off unless asked for.
    env = {"PYTHONPATH": f"{INJECT_DIR}{os.pathsep}{path}" if path else str(INJECT_DIR),
           "CLUDE_EVENTS_FILE": str(events), "CLUDE_EVENTS_OWNER": "",
           "CLUDE_SAMPLE_RATE": "", "CLUDE_SAMPLE_SEED": ""}
    if ctx.rate is not None:
        env.update(CLUDE_SAMPLE_RATE=repr(ctx.rate), CLUDE_SAMPLE_SEED=ctx.seed)
    return env


def _pytest_evidence(root: Path, env: dict[str, str]) -> list[str]:
    """Why this project's tests run with pytest: what the project declares (pyevidence.py), else test
    files named as pytest finds them with pytest installed for the project's Python."""
    declared = pytest_evidence(root, _python_test_files(root))
    if declared:
        return declared
    named = find_files(root, ("test_*.py", "*_test.py"))
    python = project_python(root, env, needs_module="pytest")
    if named and can_import(python, "pytest"):
        return [f"{len(named)} test file(s) named test_*.py or *_test.py ({named[0]}, ...)",
                f"pytest is installed for {python}"]
    return []


def _tox_args(root: Path) -> list[str]:
    """What tox.ini's pytest command collects beyond pytest's defaults (toxargs.py): tox is how the
    project runs its tests (doctest modules, say), so clude runs what tox runs."""
    return collect_args(root, file_text(root / "tox.ini"))


def _python_test_files(root: Path) -> list[str]:
    return find_files(root, ("test_*.py", "*_test.py", "tests/**/*.py", "test/**/*.py"))


def _located(reason: str, tail: str, root: Path) -> str:
    """The reason with the file:line of the project's code it names (a conftest.py that failed to import
    or raised): no test ran, so no failure line carries it. Nothing is counted: pytest counts nothing."""
    file, line = location_in_text(tail, str(root))
    if not file or not line or f"{file}:{line}" in reason:
        return reason
    return reason.replace(file, f"{file}:{line}", 1) if file in reason else f"{reason} (at {file}:{line})"


class Pytest(Framework):
    name = "pytest"

    def recognizes(self, argv: list[str], root: Path) -> bool:
        return runs_module(argv, "pytest") or runs_module(argv, "py.test")

    def evidence(self, root: Path, env: dict[str, str]) -> list[str]:
        found = _pytest_evidence(root, env)
        args = _tox_args(root)
        if found and args:
            found.append(f"tox.ini's pytest command collects with `{' '.join(args)}`: clude runs the same")
        return found

    def detect(self, root: Path, env: dict[str, str]) -> list[str] | None:
        if not _pytest_evidence(root, env):
            return None
        return [project_python(root, env, needs_module="pytest"), "-m", "pytest", *_tox_args(root)]

    def plan(self, argv: list[str], ctx: RunContext) -> Plan:
        events = ctx.run_dir / "events.jsonl"
        env = _inject_env(ctx, events)
        addopts = ctx.env.get("PYTEST_ADDOPTS", "")
        env["PYTEST_ADDOPTS"] = f"{addopts} -p clude_pytest_plugin".strip()
        return Plan(argv=list(argv), env=env, results=events)

    def read(self, plan: Plan, ctx: RunContext, exit_code: int | None, tail: str) -> RunFacts:
        facts = read_events(plan.results)
        facts.no_tests_exit = exit_code == PYTEST_EXIT_NO_TESTS
        if not facts.started:
            facts.framework_reason = _located(explain(tail, plan.argv[0], str(ctx.root)), tail, ctx.root)
        elif exit_code == PYTEST_EXIT_INTERNAL:
            file, line = location_in_text(tail, str(ctx.root))
            where = f" in {file}:{line}" if file else ""
            facts.framework_reason = (f"pytest internal error{where}: "
                                      f"{explain(tail, plan.argv[0], str(ctx.root))}")
        elif exit_code == PYTEST_EXIT_USAGE:
            facts.framework_reason = f"pytest usage error: {explain(tail, plan.argv[0], str(ctx.root))}"
        elif facts.stopped_early and not facts.interrupted and exit_code not in (0, 1):
            facts.framework_reason = facts.stopped_early  # e.g. pytest.exit() ended the session
        return facts


class Unittest(Framework):
    name = "unittest"

    def recognizes(self, argv: list[str], root: Path) -> bool:
        return runs_module(argv, "unittest")

    def evidence(self, root: Path, env: dict[str, str]) -> list[str]:
        """Test files that import unittest, when nothing points to pytest (which runs them too)."""
        files = _python_test_files(root)
        using = next((f for f in files[:50] if "unittest" in file_text(root / f, HEAD_BYTES)), None)
        if using is None or _pytest_evidence(root, env):
            return []
        python = project_python(root, env)
        return [f"{using} imports unittest", f"nothing points to pytest (not installed for {python})"]

    def detect(self, root: Path, env: dict[str, str]) -> list[str] | None:
        if not self.evidence(root, env):
            return None
        argv = [project_python(root, env), "-m", "unittest"]
        for start in ("tests", "test"):
            if (root / start).is_dir():  # a package of tests: its imports resolve from the project's root
                top = ["-t", "."] if (root / start / "__init__.py").is_file() else []
                return argv + ["discover", "-s", start, *top]
        return argv

    def plan(self, argv: list[str], ctx: RunContext) -> Plan:
        if not self.recognizes(argv, ctx.root):  # a wrapper: unittest cannot be reached inside it
            return super().plan(argv, ctx)
        events = ctx.run_dir / "events.jsonl"
        argv = list(argv)
        argv[argv.index("-m") + 1] = "clude_unittest"
        return Plan(argv=argv, env=_inject_env(ctx, events), results=events)

    def read(self, plan: Plan, ctx: RunContext, exit_code: int | None, tail: str) -> RunFacts:
        if plan.results is None or plan.results.name != "events.jsonl":
            return super().read(plan, ctx, exit_code, tail)
        facts = read_events(plan.results)
        if not facts.started:
            facts.framework_reason = explain(tail, plan.argv[0], str(ctx.root))
        return facts

