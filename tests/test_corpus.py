"""Runs `clude test` on every project of tests/corpus and checks the Verdict against its expected.json.

expected.json:
  requires   programs that must be on PATH, else the scenario is skipped with the reason
  command    the command to give (else clude detects it); "{python}" is this interpreter
  timeout    seconds; fast {"rate", "seed"} to sample
  expect     status; reason_contains [substrings]; counts {key: exact}; failures_count;
             failures [{id, file, line, kind: exact; reason_contains: substring}] each matching
             one failure; outcomes {id: outcome}; sample {rate, seed, selected, of: exact}
"""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from clude.config import TestConfig
from clude.harness import run_tests
from conftest import CORPUS, project_env

SCENARIOS = sorted(p.parent.relative_to(CORPUS).as_posix() for p in CORPUS.glob("**/expected.json"))


def _command(spec: dict) -> list[str] | None:
    cmd = spec.get("command")
    return [sys.executable if part == "{python}" else part for part in cmd] if cmd else None


def bare(name: str, spec: dict, venv) -> dict[str, str]:
    """unittest projects run where pytest is not installed: with it, pytest would run them (and does)."""
    return {"VIRTUAL_ENV": str(venv)} if name.startswith("unittest/") and not spec.get("command") else {}


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario(name, copy_project, bare_python):
    spec = json.loads((CORPUS / name / "expected.json").read_text(encoding="utf-8"))
    for program in spec.get("requires", []):
        if shutil.which(program) is None:
            pytest.skip(f"{program} is not installed on this machine")
    project = copy_project(name)
    fast = spec.get("fast") or {}
    verdict = run_tests(project, TestConfig(timeout=spec.get("timeout", 120)),
                        command=_command(spec), rate=fast.get("rate"), seed=fast.get("seed"),
                        use_cache=False, env=project_env(**bare(name, spec, bare_python)))
    expect = spec["expect"]
    shown = json.dumps(verdict.public(), indent=1)[:3000]
    assert verdict.status.value == expect["status"], shown
    for part in expect.get("reason_contains", []):
        assert part in (verdict.reason or ""), shown
    for key, value in expect.get("counts", {}).items():
        assert getattr(verdict.counts, key) == value, f"{key}: {shown}"
    if "failures_count" in expect:
        assert len(verdict.failures) == expect["failures_count"], shown
    for wanted in expect.get("failures", []):
        assert any(_matches(f.model_dump(), wanted) for f in verdict.failures), \
            f"no failure matches {wanted}: {shown}"
    if "sample" in expect:
        assert verdict.sample is not None, shown
        for key, value in expect["sample"].items():
            assert getattr(verdict.sample, key) == value, f"sample {key}: {shown}"
    for test_id, outcome in expect.get("outcomes", {}).items():
        assert (verdict.outcomes or {}).get(test_id) == outcome, f"{test_id}: {verdict.outcomes}"
    # every failure an agent reads names a file, a line and a reason that is not the test name
    for failure in verdict.failures:
        assert failure.file and failure.reason, f"incomplete failure {failure}: {shown}"
        assert failure.reason != failure.id.rsplit("::", 1)[-1], shown


def _matches(failure: dict, wanted: dict) -> bool:
    for key, value in wanted.items():
        if key == "reason_contains":
            if value not in failure["reason"]:
                return False
        elif failure.get(key) != value:
            return False
    return True


def test_the_corpus_is_not_empty():
    assert len(SCENARIOS) >= 10
