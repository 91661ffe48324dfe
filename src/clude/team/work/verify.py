"""Verifying a task: its acceptance tests pass, and nothing that passes on the upstream fails in the
worker's tree; when the task may change tests, the upstream's tests still judge and the agent's own
new or edited tests must pass too."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping

from clude.config.settings import TestConfig
from clude.harness.compare import PASSING, compare
from clude.harness.report import concise
from clude.harness.runner import choose, run_tests, tests_python
from clude.harness.verdict import Status, Verdict

if TYPE_CHECKING:
    from clude.sandbox import Sandbox

# Statuses of a baseline run that cannot be compared against: the suite does not run on the upstream.
UNUSABLE_BASELINE = frozenset({Status.ERROR, Status.TIMEOUT, Status.CRASHED, Status.INTERRUPTED})
FAILING = frozenset({"failed", "error"})


@dataclass
class Verification:
    ok: bool
    reason: str                      # one line: why not, or what passed
    report: str                      # the concise report(s) the failure record and the agent read
    failures: list[str] = field(default_factory=list)  # "file:line id — reason" lines
    verdict: Verdict | None = None   # the whole suite in the tree
    regressions: dict[str, str] = field(default_factory=dict)
    new_tests: list[str] = field(default_factory=list)  # tests the agent added (allowed test changes)
    flaky: list[str] = field(default_factory=list)  # failed once, then passed on a fresh re-run: not charged


class BaselineUnusable(Exception):
    """The tests cannot run on the upstream itself: an environment problem, not the task's."""


@dataclass(frozen=True)
class Judge:
    """How a worker runs the project's tests: [test], an environment without secrets, the sandbox,
    where reports and the verdict cache live (outside the tree the tests can write), and what the
    tests must not see."""

    config: TestConfig
    env: Mapping[str, str]
    sandbox: Sandbox | None = None
    state_dir: Path | None = None
    hidden: tuple[Path, ...] = ()

    def python(self, workdir: Path) -> str | None:
        """The interpreter the tests of `workdir` run with, when they are Python tests."""
        return tests_python(workdir, self.config, self.env)

    def run(self, workdir: Path, command: list[str] | None = None, *, fresh: bool = False) -> Verdict:
        """run_tests, except that a run stopped by SIGINT/SIGTERM stops the worker (never a verdict);
        `fresh`: run even when the machine's cache knows the verdict (and store the new one)."""
        verdict = run_tests(workdir, self.config, command=command, env=dict(self.env), sandbox=self.sandbox,
                            state_dir=self.state_dir, hidden=self.hidden, refresh=fresh)
        if verdict.status is Status.INTERRUPTED:
            raise KeyboardInterrupt()
        return verdict


def baseline(workdir: Path, judge: Judge) -> Verdict:
    """The whole suite on the upstream's tree (cached by tree)."""
    verdict = judge.run(workdir)
    if verdict.status in UNUSABLE_BASELINE:
        raise BaselineUnusable(f"the tests cannot run on the upstream: {verdict.status.value}: "
                               f"{verdict.reason or verdict.counts.summary()} (report: {verdict.report_path})")
    return verdict


def acceptance_command(workdir: Path, judge: Judge, selector: str) -> list[str] | None:
    """The test command narrowed to a task's acceptance tests: the command + the selector's words."""
    chosen = choose(workdir, judge.config, None, {**judge.env, **judge.config.env})
    if isinstance(chosen, str):
        return None
    _, argv = chosen
    return argv + shlex.split(selector)


def verify_task(workdir: Path, judge: Judge, base: Verdict, *, tests: str | None,
                checkout: Callable[[str], None] | None = None, judged: str = "", own: str = "",
                whole_suite: bool = True, restore: Callable[[], None] | None = None) -> Verification:
    """Acceptance first (cheap, and the point of the task), then the regression check — unless not
    `whole_suite`: then the merge queue runs the whole suite on the change (team/queue/lander.py).

    With `checkout` (the task may change tests and did): the upstream's tests judge `judged` (the
    change with every test file as the upstream has it) for regressions; then `own` (the change as the
    agent made it) must pass the acceptance tests and add no failure the judged run lacks: the tests
    the agent added or edited must pass. A test that fails is run once more, fresh, on the tree made
    anew (`restore`, or `checkout`): one that then passes is flaky, named and never charged."""
    if checkout is None:
        return _verify(workdir, judge, base, tests, whole_suite=whole_suite, restore=restore)
    checkout(judged)
    judged_result = _verify(workdir, judge, base, None, restore=lambda: checkout(judged))
    if not judged_result.ok:
        return judged_result
    checkout(own)
    own_result = _verify(workdir, judge, base, tests, regressions=False, restore=lambda: checkout(own))
    if not own_result.ok:
        return own_result
    introduced = {t: o for t, o in own_result.verdict.outcomes.items()
                  if o in FAILING and judged_result.verdict.outcomes.get(t) not in FAILING}
    report = f"{judged_result.report}\n\nwith the agent's tests:\n{own_result.report}"
    if introduced:
        shown = ", ".join(f"{t} ({o})" for t, o in list(introduced.items())[:10])
        return Verification(False, f"{len(introduced)} of the agent's own new or edited test(s) do not pass: "
                                   f"{shown}", report, failure_lines(own_result.verdict, introduced),
                            own_result.verdict, introduced)
    new = sorted(set(own_result.verdict.outcomes) - set(base.outcomes))
    return Verification(True, f"{own_result.reason}; the upstream's tests: {judged_result.reason}", report,
                        [], own_result.verdict, new_tests=new)


def _verify(workdir: Path, judge: Judge, base: Verdict, tests: str | None, *, regressions: bool = True,
            whole_suite: bool = True, restore: Callable[[], None] | None = None) -> Verification:
    def again(argv: list[str] | None = None) -> Verdict:
        if restore is not None:  # what the failing run left in the tree is gone
            restore()
        return judge.run(workdir, argv, fresh=True)

    reports: list[str] = []
    flaky: list[str] = []
    accepted: Verdict | None = None
    if tests:
        argv = acceptance_command(workdir, judge, tests)
        if argv is None:
            return Verification(False, f"no test command to run the acceptance tests {tests!r}", "")
        accepted = judge.run(workdir, argv)
        if accepted.status is Status.FAILED:  # once more, fresh: a test that then passes is flaky
            failing = {t for t, o in accepted.outcomes.items() if o in FAILING}
            rerun = again(argv)
            flaky += sorted(t for t in failing if rerun.outcomes.get(t) in PASSING)
            accepted = rerun if rerun.status is Status.PASSED or not named_pass(accepted, tests) else accepted
        reports.append(f"acceptance tests ({tests}):\n{concise(accepted)}")
        if not named_pass(accepted, tests):
            return Verification(False, f"the acceptance tests {tests} did not pass: {accepted.status.value}, "
                                       f"{accepted.counts.summary()}", "\n\n".join(reports),
                                failure_lines(accepted), accepted)
    if not whole_suite:
        what = f"acceptance tests {tests} pass" if tests else "no acceptance tests"
        return _flaky(Verification(True, f"{what}; the merge queue runs the whole suite", "\n\n".join(reports),
                                   [], accepted), flaky)
    verdict = judge.run(workdir)
    comparison = compare(base, verdict)
    regressed = dict(comparison.regressions) if regressions else {}
    if regressed:  # once more, fresh: only what fails both times is the change's
        rerun = again()
        flaky += sorted(t for t in regressed if rerun.outcomes.get(t) in PASSING)
        regressed = {t: o for t, o in regressed.items() if rerun.outcomes.get(t) not in PASSING}
    reports.append(f"whole suite:\n{concise(verdict)}")
    report = "\n\n".join(reports)
    if regressed:
        shown = ", ".join(f"{t} ({o})" for t, o in list(regressed.items())[:10])
        failures = failure_lines(verdict, regressed) or \
            [f"{t} — {o} (passed on the upstream)" for t, o in regressed.items()]
        return _flaky(Verification(False, f"{len(regressed)} test(s) that pass on the upstream do not pass "
                                          f"now (twice): {shown}", report, failures, verdict, regressed), flaky)
    if verdict.status in UNUSABLE_BASELINE:
        return Verification(False, f"the whole suite does not run any more: {verdict.status.value}: "
                                   f"{verdict.reason}", report, failure_lines(verdict), verdict)
    if not tests and verdict.counts.passed == 0:
        return Verification(False, "no test passed in the whole suite, so nothing verifies this change: give "
                                   "the task acceptance tests (--tests), or set [team] verify = \"none\"",
                            report, failure_lines(verdict), verdict)
    fixed = f", {len(comparison.fixes)} fixed" if comparison.fixes else ""
    what = f"acceptance tests {tests} pass; " if tests else ""
    return _flaky(Verification(True, f"{what}no regression ({verdict.counts.summary()}{fixed})", report, [],
                               verdict), flaky)


def named_pass(verdict: Verdict, selector: str) -> bool:
    """Whether the acceptance run passed: its verdict, or, when the test command ran more than the
    tests named (a command that takes no test ids), the named tests' own outcomes, each of them seen."""
    if verdict.status is Status.PASSED:
        return True
    words = shlex.split(selector)
    if verdict.status is not Status.FAILED or not words or not all(w in verdict.outcomes for w in words):
        return False
    return all(verdict.outcomes[w] in PASSING for w in words)


def _flaky(verification: Verification, flaky: list[str]) -> Verification:
    """The verification, naming the tests that failed once and passed on a fresh re-run (never charged)."""
    if flaky:
        verification.flaky = list(dict.fromkeys(flaky))
        shown = ", ".join(verification.flaky[:10]) + (" ..." if len(verification.flaky) > 10 else "")
        verification.reason += f"; flaky (failed once, passed on a re-run): {shown}"
    return verification


def failure_lines(verdict: Verdict, only: Mapping[str, str] | None = None) -> list[str]:
    out = []
    for failure in verdict.failures:
        if only is not None and not any(t in failure.id or failure.id in t for t in only):
            continue
        where = f"{failure.file or '?'}" + (f":{failure.line}" if failure.line else "")
        out.append(f"{where} {failure.id} — {failure.reason or failure.kind}")
        if len(out) >= 20:
            break
    return out
