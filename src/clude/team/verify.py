"""Verifying a task: its acceptance tests pass, and nothing that passes on the upstream fails in the clone."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from clude.config.settings import TestConfig
from clude.harness.compare import compare
from clude.harness.report import concise
from clude.harness.runner import choose, run_tests
from clude.harness.verdict import Status, Verdict

# Statuses of a baseline run that cannot be compared against: the suite does not run on the upstream.
UNUSABLE_BASELINE = frozenset({Status.ERROR, Status.TIMEOUT, Status.CRASHED, Status.INTERRUPTED})


@dataclass
class Verification:
    ok: bool
    reason: str                      # one line: why not, or what passed
    report: str                      # the concise report(s) the failure record and the agent read
    failures: list[str] = field(default_factory=list)  # "file:line id — reason" lines
    verdict: Verdict | None = None   # the whole suite in the clone
    regressions: dict[str, str] = field(default_factory=dict)


class BaselineUnusable(Exception):
    """The tests cannot run on the upstream itself: an environment problem, not the task's."""


def _run(workdir: Path, config: TestConfig, env: Mapping[str, str], command: list[str] | None = None) -> Verdict:
    """run_tests, except that a run stopped by SIGINT/SIGTERM stops the worker too (never a verdict)."""
    verdict = run_tests(workdir, config, command=command, env=dict(env))
    if verdict.status is Status.INTERRUPTED:
        raise KeyboardInterrupt()
    return verdict


def baseline(workdir: Path, config: TestConfig, env: Mapping[str, str]) -> Verdict:
    """The whole suite on the upstream's tree (the clone before the agent works; cached by tree)."""
    verdict = _run(workdir, config, env)
    if verdict.status in UNUSABLE_BASELINE:
        raise BaselineUnusable(f"the tests cannot run on the upstream: {verdict.status.value}: "
                               f"{verdict.reason or verdict.counts.summary()} (report: {verdict.report_path})")
    return verdict


def acceptance_command(workdir: Path, config: TestConfig, selector: str,
                       env: Mapping[str, str]) -> list[str] | None:
    """The test command narrowed to a task's acceptance tests: the command + the selector's words."""
    chosen = choose(workdir, config, None, {**env, **config.env})
    if isinstance(chosen, str):
        return None
    _, argv = chosen
    return argv + shlex.split(selector)


def verify_task(workdir: Path, config: TestConfig, base: Verdict, *, tests: str | None,
                env: Mapping[str, str]) -> Verification:
    """Acceptance first (cheap, and the point of the task), then the regression check."""
    reports: list[str] = []
    failures: list[str] = []
    if tests:
        argv = acceptance_command(workdir, config, tests, env)
        if argv is None:
            return Verification(False, f"no test command to run the acceptance tests {tests!r}", "")
        accepted = _run(workdir, config, env, argv)
        reports.append(f"acceptance tests ({tests}):\n{concise(accepted)}")
        if accepted.status is not Status.PASSED:
            failures += _lines(accepted)
            return Verification(False, f"the acceptance tests {tests} did not pass: {accepted.status.value}, "
                                       f"{accepted.counts.summary()}", "\n\n".join(reports), failures,
                                accepted)
    verdict = _run(workdir, config, env)
    comparison = compare(base, verdict)
    reports.append(f"whole suite:\n{concise(verdict)}")
    if comparison.regressions:
        shown = ", ".join(f"{t} ({o})" for t, o in list(comparison.regressions.items())[:10])
        failures += [line for line in _lines(verdict)
                     if any(t in line for t in comparison.regressions)] or \
            [f"{t} — {o} (passed on the upstream)" for t, o in comparison.regressions.items()]
        return Verification(False, f"{len(comparison.regressions)} test(s) that pass on the upstream "
                                   f"do not pass now: {shown}", "\n\n".join(reports), failures,
                            verdict, comparison.regressions)
    if verdict.status in UNUSABLE_BASELINE:
        failures += _lines(verdict)
        return Verification(False, f"the whole suite does not run any more: {verdict.status.value}: "
                                   f"{verdict.reason}", "\n\n".join(reports), failures, verdict)
    fixed = f", {len(comparison.fixes)} fixed" if comparison.fixes else ""
    what = f"acceptance tests {tests} pass; " if tests else ""
    return Verification(True, f"{what}no regression ({verdict.counts.summary()}{fixed})",
                        "\n\n".join(reports), [], verdict)


def _lines(verdict: Verdict) -> list[str]:
    out = []
    for failure in verdict.failures[:20]:
        where = f"{failure.file or '?'}" + (f":{failure.line}" if failure.line else "")
        out.append(f"{where} {failure.id} — {failure.reason or failure.kind}")
    return out
