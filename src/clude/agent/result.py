"""What a finished (or stopped) run reports: the headless JSON result and its exit code."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from clude import exits
from clude.agent.session import SessionState

# Exit codes of `clude run` / `clude resume`, one per outcome (clude.exits, docs/exit-codes.md).
EXIT_CODES = {"done": exits.RUN_DONE, "failed": exits.RUN_FAILED, "blocked": exits.RUN_BLOCKED,
              "error": exits.RUN_ERROR, "interrupted": exits.INTERRUPTED, "running": exits.INTERRUPTED}


class StepResult(BaseModel):
    id: str
    title: str
    status: str
    attempts: int
    summary: str = ""
    reason: str = ""


class RunResult(BaseModel):
    status: Literal["done", "failed", "blocked", "error", "interrupted"]
    reason: str
    session_id: str
    session_path: str
    goal: str
    state: str
    plan_title: str | None
    steps: list[StepResult]
    verdict: dict | None
    usage: dict
    cost_usd: float | None
    duration_s: float
    replans: int

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]


def result_of(state: SessionState, session_path: str) -> RunResult:
    plan = state.plan or {}
    steps = []
    for step in plan.get("steps", []):
        record = state.steps.get(step["id"])
        if record is None:
            continue
        steps.append(StepResult(id=step["id"], title=step["title"], status=record.status,
                                attempts=record.attempts, summary=record.summary, reason=record.reason))
    status = "interrupted" if state.outcome == "running" else state.outcome
    return RunResult(
        status=status, reason=state.reason, session_id=state.id, session_path=session_path,
        goal=state.goal, state=state.state.value, plan_title=plan.get("title"), steps=steps,
        verdict=state.verdict, cost_usd=state.usage.cost_usd, duration_s=round(state.elapsed_s, 3),
        usage=state.usage.model_dump(exclude={"cost_usd"}), replans=state.replans)
