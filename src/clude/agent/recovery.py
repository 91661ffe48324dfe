"""The recovery rule: after a failed step, a replan request or a failed verification, what to do next."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from clude.agent.session import SessionState
from clude.config.settings import AgentConfig


@dataclass
class Decision:
    action: Literal["retry", "fix", "replan", "continue", "give_up"]
    reason: str
    steps: list[str] = field(default_factory=list)  # retry: the steps to run again
    fail: list[str] = field(default_factory=list)   # continue: the steps that stay failed for good


def _first_line(text: str, limit: int = 200) -> str:
    line = next((part for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[: limit - 3] + "..."


def decide_recovery(state: SessionState, config: AgentConfig) -> Decision:
    """Pure: retry within max_step_retries, then replan within max_replans, then give up."""
    recovery = state.recovery
    if recovery is None:
        return Decision("continue", "nothing to recover from")
    replans_left = state.replans < config.max_replans
    tries = 1 + config.max_step_retries  # runs a step may have
    if recovery.kind == "verify_failed":
        if state.verify_fixes < config.max_step_retries:
            return Decision("fix", f"tests fail; adding fix step {state.verify_fixes + 1} of "
                                   f"{config.max_step_retries}: {_first_line(recovery.reason)}")
        if replans_left:
            return Decision("replan", f"tests still fail after {state.verify_fixes} fix steps; "
                                      f"replan {state.replans + 1} of {config.max_replans}: "
                                      f"{recovery.reason}")
        return Decision("give_up", f"the tests still fail after {state.verify_fixes} fix steps and "
                                   f"{state.replans} replans: {_first_line(recovery.reason)}")
    if recovery.kind == "replan":
        if replans_left:
            return Decision("replan", f"step {recovery.step} asked for a new plan (replan "
                                      f"{state.replans + 1} of {config.max_replans}): {recovery.reason}")
        record = state.steps.get(recovery.step or "")
        if record is not None and record.attempts < tries:
            return Decision("retry", f"step {recovery.step} asked for a new plan but no replans are "
                                     f"left ([agent] max_replans = {config.max_replans}); retrying it",
                            steps=[recovery.step])
        return Decision("continue", f"step {recovery.step} asked for a new plan and neither replans nor "
                                    "retries are left; it fails", fail=[recovery.step])
    failed = [step_id for step_id, record in state.steps.items() if record.status == "failed"]
    retry = [s for s in failed if state.steps[s].attempts < tries]
    if retry:
        attempts = ", ".join(f"{s} (attempt {state.steps[s].attempts + 1} of {tries})" for s in retry)
        return Decision("retry", f"retrying {attempts}: {_first_line(recovery.reason)}", steps=retry)
    if replans_left and failed:
        return Decision("replan", f"step {recovery.step} failed {state.steps[recovery.step].attempts} "
                                  f"times; replan {state.replans + 1} of {config.max_replans}: "
                                  f"{recovery.reason}" if recovery.step in state.steps else recovery.reason)
    return Decision("continue", f"step {recovery.step} failed after {tries} attempts; the steps that do "
                                "not depend on it go on", fail=failed)
