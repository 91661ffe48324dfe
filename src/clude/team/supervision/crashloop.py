"""The crash-loop rules, pure: when to restart a worker that exited, how long to wait, when to give up;
and when a worker's own failures point at its environment rather than its tasks."""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Sequence
from typing import Literal

from clude.backoff import backoff
from clude.exits import WORKER_INFRA, WORKER_SETTLED, WORKER_UPSTREAM
from clude.team.backends.infra import InfraFailure
from clude.team.logs.logread import normalize_error

MAX_INFRA_IN_A_ROW = 3  # failures alike in a row (attempts on different tasks, or agent runs ending before
                        # any change: work/blame.py) that stop a worker: its environment is the suspect
# Exit codes a worker ends with (clude.exits) that say restarting cannot help.
SETTLED, UPSTREAM_REFUSES, INFRA_BLOCKED = WORKER_SETTLED, WORKER_UPSTREAM, WORKER_INFRA


@dataclass(frozen=True)
class Policy:
    k: int = 3                 # failures before any work, in a row, that make a crash loop
    window_s: float = 600.0    # ... within this long
    base_s: float = 1.0        # first restart delay; doubled after each failure
    cap_s: float = 60.0        # longest delay
    healthy_s: float = 120.0   # a run this long (or one that did work) resets the backoff


@dataclass(frozen=True)
class Run:
    """One life of a worker process."""

    started: float
    ended: float
    exit_code: int | None      # None: killed by a signal
    worked: bool               # an agent run of it was judged (a task done or an attempt recorded)
    reason: str                # why it ended, classified from its output (or its own last words)
    claimed: bool = False      # it claimed a task (its agent ran, whatever came of it)


@dataclass(frozen=True)
class Decision:
    action: Literal["restart", "blocked", "done"]
    delay_s: float = 0.0
    reason: str = ""


def decide(runs: list[Run], policy: Policy = Policy()) -> Decision:
    """What to do after the last of `runs` ended."""
    last = runs[-1]
    if last.exit_code == SETTLED:
        return Decision("done", reason="no task left")
    if last.exit_code == UPSTREAM_REFUSES or (last.exit_code == INFRA_BLOCKED and (last.worked or last.claimed)):
        # an upstream refusing pushes, or a worker whose last agent runs all failed with the same
        # error across tasks: the environment is the suspect, restarting cannot help
        return Decision("blocked", reason=last.reason or f"exited with {last.exit_code}")
    streak = failures_in_a_row(runs, policy)
    if in_a_loop([run.ended for run in streak], policy.k, policy.window_s):
        return Decision("blocked", reason=f"crash loop: {len(streak)} starts failed before doing any "
                                          f"work: {last.reason or 'no reason given'}")
    delay = backoff(max(1, len(streak)), first=policy.base_s, cap=policy.cap_s)
    return Decision("restart", delay_s=delay, reason=last.reason)


def in_a_loop(times: Sequence[float | None], k: int, window_s: float) -> bool:
    """The crash-loop rule, for the monitor and for `team logs analyze` alike: k failures in a row, the
    first and the k-th of them within window_s of each other (a time not known counts in)."""
    for i in range(len(times) - k + 1):
        first, last = times[i], times[i + k - 1]
        if first is None or last is None or last - first <= window_s:
            return True
    return False


def failures_in_a_row(runs: list[Run], policy: Policy = Policy()) -> list[Run]:
    """The runs since the last healthy one (did work, or lived healthy_s) that ended badly."""
    streak: list[Run] = []
    for run in reversed(runs):
        healthy = run.worked or (run.ended - run.started) >= policy.healthy_s
        if healthy or run.exit_code == SETTLED:
            break
        streak.append(run)
    return list(reversed(streak))


def error_signature(text: str) -> str:
    """An error's text with what varies between occurrences (numbers, ids, paths) taken out."""
    return normalize_error(text)


def environment_suspect(infra: list[InfraFailure], failed: list[tuple[str, str]],
                        k: int = MAX_INFRA_IN_A_ROW) -> dict | None:
    """When the environment, not the tasks, is failing this worker: its last agent run could not work
    for a reason of its environment (backends/infra.py: a variable, a program, a key, the upstream's
    tests: retrying cannot heal it), or its last k failed attempts, on different tasks, failed with the
    same error. None otherwise (transient failures wait; unknown ones are weighed by work/blame.py)."""
    if infra and infra[-1].category == "environment":
        return {"cause": infra[-1].kind, "reason": infra[-1].message}
    recent = failed[-k:]
    if len(recent) == k and len({sig for _, sig in recent}) == 1 and len({t for t, _ in recent}) > 1:
        return {"cause": "same_failure", "reason": f"the last {k} attempts, on different tasks, failed "
                                                    f"alike: {recent[-1][1][:200]}"}
    return None
