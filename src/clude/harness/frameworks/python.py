"""pytest and unittest: results come from clude's own plugin and runner (inject/), loaded by PYTHONPATH."""

from __future__ import annotations

import configparser
import os
import tomllib
from pathlib import Path

from clude.harness.diagnostics import explain
from clude.harness.events import read_events
from clude.harness.frameworks.base import (Framework, Plan, RunContext, find_files, project_python,
                                           runs_module)
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


def _uses_pytest(root: Path) -> bool:
    if (root / "pytest.ini").exists() or (root / "conftest.py").exists():
        return True
    pyproject = root / "pyproject.toml"
    if pyproject.exists():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            if "pytest" in data.get("tool", {}):
                return True
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            pass
    for name, section in (("tox.ini", "pytest"), ("setup.cfg", "tool:pytest")):
        cfg = root / name
        if cfg.exists():
            parser = configparser.ConfigParser()
            try:
                parser.read(cfg, encoding="utf-8")
            except configparser.Error:
                continue
            if parser.has_section(section):
                return True
    return any("pytest" in _head(root / f) for f in _python_test_files(root)[:50])


def _python_test_files(root: Path) -> list[str]:
    return find_files(root, ("test_*.py", "*_test.py", "tests/**/*.py", "test/**/*.py"))


def _head(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[:4000]
    except OSError:
        return ""


class Pytest(Framework):
    name = "pytest"

    def recognizes(self, argv: list[str], root: Path) -> bool:
        return runs_module(argv, "pytest") or runs_module(argv, "py.test")

    def detect(self, root: Path, env: dict[str, str]) -> list[str] | None:
        if not _uses_pytest(root):
            return None
        return [project_python(root, env, needs_module="pytest"), "-m", "pytest"]

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
            facts.framework_reason = explain(tail, plan.argv[0], str(ctx.root))
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

    def detect(self, root: Path, env: dict[str, str]) -> list[str] | None:
        files = _python_test_files(root)
        if not any("unittest" in _head(root / f) for f in files[:50]):
            return None
        argv = [project_python(root, env), "-m", "unittest"]
        for start in ("tests", "test"):
            if (root / start).is_dir():
                return argv + ["discover", "-s", start]
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

