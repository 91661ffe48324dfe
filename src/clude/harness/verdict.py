"""The Verdict contract (docs/harness.md) and the pure rule that turns a finished test run into one."""

from __future__ import annotations

import signal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from clude.harness.inject.clude_events import strip_ansi
from clude.harness.status import EXIT_CODES, Status

__all__ = ["EXIT_CODES", "Counts", "Failure", "Outcome", "RunFacts", "Sample", "Status", "Verdict",
           "decide"]

Outcome = Literal["passed", "failed", "error", "skipped", "xfailed", "xpassed"]


def without_escapes(text: str | None) -> str | None:
    return strip_ansi(text) if text else text


class Model(BaseModel):
    # Validators are built on first use, not at import: start-up time is part of every `clude test`.
    model_config = ConfigDict(defer_build=True)


class Counts(Model):
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    xfailed: int = 0
    xpassed: int = 0
    total: int = 0

    @classmethod
    def of(cls, outcomes: dict[str, str], collection_errors: int = 0) -> "Counts":
        c = cls()
        for outcome in outcomes.values():
            field = "errors" if outcome == "error" else outcome
            setattr(c, field, getattr(c, field) + 1)
        c.errors += collection_errors
        c.total = len(outcomes) + collection_errors
        return c

    @property
    def ran(self) -> int:
        return self.passed + self.failed + self.errors + self.xfailed + self.xpassed

    def summary(self) -> str:
        return (f"{self.passed} passed, {self.failed} failed, {self.errors} errors, "
                f"{self.skipped} skipped")


class Failure(Model):
    id: str
    file: str | None = None
    line: int | None = None
    kind: Literal["failure", "error"] = "failure"
    reason: str = ""

    @field_validator("reason")
    @classmethod
    def _plain(cls, text: str) -> str:
        return without_escapes(text)


class Sample(Model):
    rate: float
    seed: str
    selected: int
    of: int


class Verdict(Model):
    status: Status
    reason: str | None = None

    @field_validator("reason")
    @classmethod
    def _plain(cls, text: str | None) -> str | None:
        return without_escapes(text)
    counts: Counts = Field(default_factory=Counts)
    # False when the run was cut short and tests it would have run were never counted (a timeout, a
    # signal, an interruption, a stop at the first failure, a report that never finished)
    counts_complete: bool = True
    duration_s: float = 0.0
    framework: str = "unknown"
    command: list[str] = Field(default_factory=list)
    exit_code: int | None = None
    failures: list[Failure] = Field(default_factory=list)
    report_path: str | None = None
    sample: Sample | None = None
    cached: bool = False
    # Every test's outcome (id -> outcome). Saved beside the report; left out of `--json` output.
    outcomes: dict[str, Outcome] | None = None

    def public(self) -> dict:
        """The Verdict as `clude test --json` prints it: everything but the per-test outcomes."""
        return self.model_dump(mode="json", exclude={"outcomes"})


class RunFacts(Model):
    """What the runner observed about one run of a test command, before any judgement."""

    exit_code: int | None = None  # None when the process never started or was killed by a signal
    signal: int | None = None  # the signal that killed the process, if one did
    timed_out: bool = False
    interrupted: bool = False  # the user (or a supervisor) interrupted clude itself
    stray_interrupt: bool = False  # the framework saw an interruption that clude did not send
    timeout_s: float | None = None
    started: bool = False  # the framework began reporting results (its session started)
    finished: bool = False  # the framework finished reporting (results are complete)
    outcomes: dict[str, str] = Field(default_factory=dict)
    failures: list[Failure] = Field(default_factory=list)
    collection_errors: list[Failure] = Field(default_factory=list)
    running: str | None = None  # the test that had started and not finished, if any
    no_tests_exit: bool = False  # the framework's own "no tests collected" exit code
    framework_reason: str | None = None  # what the framework said went wrong (usage error, ...)
    stopped_early: str | None = None  # e.g. "stopped after the first failure (-x)"
    sample: Sample | None = None
    crash_signal: int | None = None  # a signal that killed a test process the command started
    tampered: list[str] = Field(default_factory=list)  # pytest's own reporting code replaced during the run


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


_SIGNAL_MEANING = {
    signal.SIGSEGV: "segmentation fault",
    signal.SIGABRT: "aborted",
    signal.SIGKILL: "killed (out of memory, or killed from outside)",
    signal.SIGBUS: "bus error",
    signal.SIGFPE: "floating point exception",
    signal.SIGILL: "illegal instruction",
}


def _describe_signal(signum: int) -> str:
    meaning = _SIGNAL_MEANING.get(signum)
    return f"{_signal_name(signum)} ({meaning})" if meaning else _signal_name(signum)


def _while_running(facts: RunFacts) -> str:
    return f" while running {facts.running}" if facts.running else ""


def counts_complete(facts: RunFacts) -> bool:
    """Whether the counts hold every test the command would run (a sampled run: every sampled test)."""
    cut_short = (facts.interrupted or facts.timed_out or facts.signal is not None or facts.stray_interrupt
                 or facts.stopped_early is not None or facts.crash_signal is not None)
    return facts.started and facts.finished and not cut_short


def decide(facts: RunFacts) -> tuple[Status, str | None]:
    """The status of a run and the reason for it. Pure: the whole rule of docs/harness.md lives here.

    `passed` needs a success exit code, zero failed, zero errors and at least one test run. When the
    exit code and the counts disagree the status is `error`, with a reason saying so.
    """
    counts = Counts.of(facts.outcomes, len(facts.collection_errors))
    if facts.interrupted:
        return Status.INTERRUPTED, f"interrupted{_while_running(facts)}"
    if facts.timed_out:
        return Status.TIMEOUT, (f"no result after {facts.timeout_s:g} s; the process group was "
                                f"killed{_while_running(facts)}")
    if facts.signal is not None:  # clude was not interrupted: whoever sent it, the run broke
        return Status.CRASHED, (f"the test process was killed by {_describe_signal(facts.signal)}"
                                f"{_while_running(facts)}")
    if facts.tampered:
        return Status.ERROR, (f"the code under test replaced pytest's own reporting code while the tests ran "
                              f"({', '.join(facts.tampered[:4])}): its results cannot be trusted")
    if facts.stray_interrupt:
        return Status.CRASHED, (f"the test run stopped on an interruption clude did not send "
                                f"(KeyboardInterrupt or SIGINT from inside){_while_running(facts)}")
    if not facts.started:
        why = facts.framework_reason or "no output"
        return Status.ERROR, (f"the test command exited with code {facts.exit_code} before running "
                              f"any test: {why}")
    if not facts.finished:
        how = (f"was killed by {_describe_signal(facts.crash_signal)}" if facts.crash_signal
               else f"exited with code {facts.exit_code}")
        return Status.CRASHED, (f"the test process {how} before it finished reporting"
                                f"{_while_running(facts)}")
    if facts.collection_errors:
        first = facts.collection_errors[0]
        where = f"{first.file}" if first.file else first.id
        more = len(facts.collection_errors) - 1
        extra = f" (and {more} more)" if more else ""
        return Status.ERROR, f"collection error in {where}: {first.reason}{extra}"
    if facts.framework_reason and counts.total == 0:
        return Status.ERROR, facts.framework_reason
    if counts.total == 0 or facts.no_tests_exit:
        if facts.no_tests_exit and counts.ran:
            return Status.ERROR, (f"exit code {facts.exit_code} means no tests were collected, but "
                                  f"{counts.ran} ran: exit code and counts disagree")
        return Status.NO_TESTS, "no tests were collected"
    bad = counts.failed + counts.errors
    if bad:
        if facts.exit_code == 0:
            return Status.ERROR, (f"exit code 0 but {counts.failed} failed and {counts.errors} "
                                  f"errors: exit code and counts disagree")
        return Status.FAILED, facts.stopped_early
    if facts.exit_code != 0:
        why = f" ({facts.framework_reason})" if facts.framework_reason else ""
        return Status.ERROR, (f"exit code {facts.exit_code} but 0 failed and 0 errors: exit code "
                              f"and counts disagree{why}")
    if counts.ran == 0:
        return Status.NO_TESTS, f"all {counts.skipped} tests were skipped; none ran"
    return Status.PASSED, None
