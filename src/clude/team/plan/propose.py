"""The team's planner: the model proposes tasks for a goal (ids, dependencies, roles, acceptance tests,
the files each will touch); the reply is checked with `clude run`'s plan rules (unique ids, known
dependencies, no cycles) and the team's own (known roles), and what is wrong goes back to the model."""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Collection
from pathlib import Path
from typing import Any

from pydantic import field_validator

from clude.agent.plan import NO_STEPS, Plan, PlanError, Step, parse_plan, plan_schema_text
from clude.agent.planner import ask_for_plan, project_files
from clude.agent.prompts import render
from clude.agent.tools.box import Toolbox
from clude.llm.base import ChatModel, Message
from clude.team.board.overlap import learned

MADE_BY = "plan"
MAX_READS = 12  # turns of reading the project (read_file, list_files, grep) before the planner must answer


class GoalReached(Exception):
    """The planner answered with no task at all ({"steps": []}): nothing is left to do for the goal."""


class TeamStep(Step):
    """A proposed task: a plan's step with the team's fields."""

    role: str | None = None
    tests: str | None = None
    files: list[str] = []
    priority: int = 0

    @field_validator("role", "tests", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        if isinstance(value, list):  # "tests": ["a::b", "c::d"] is read as one selector
            value = " ".join(str(v) for v in value)
        return (value.strip() or None) if isinstance(value, str) else value

    @field_validator("tests", mode="after")
    @classmethod
    def _no_options(cls, value: str | None) -> str | None:
        """Test ids or paths, appended to the project's test command: never an option of it."""
        try:
            words = shlex.split(value or "")
        except ValueError as error:
            raise ValueError(f"cannot be split into test ids: {error}") from None
        options = [w for w in words if w.startswith("-")]
        if options:
            raise ValueError(f"names test ids or paths, not options of the test command: {' '.join(options)}")
        return value

    @field_validator("files", mode="before")
    @classmethod
    def _files(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            return [p for p in re.split(r"[\s,]+", value) if p]
        return value


def parse_team_plan(text: str, *, roles: Collection[str], board: Collection[str] = (),
                    may_end: bool = False) -> Plan:
    """The plan in a reply, with every problem listed at once (PlanError): `clude run`'s rules, and a
    role that is not one of `roles`. A dependency may name a task already on the board (`board`).
    `may_end`: a plan without steps raises GoalReached."""
    known = list(roles)

    class Checked(TeamStep):
        @field_validator("role", mode="after")
        @classmethod
        def _known_role(cls, value: str | None) -> str | None:
            if value is not None and value not in known:
                raise ValueError(f"role {value!r} is not a role of this team (the roles: {', '.join(known)})")
            return value

    try:
        return parse_plan(text, step=Checked, done_ids=board)
    except PlanError as error:  # the plan's own "steps" is empty, and that is all that is wrong with it
        if may_end and len(error.errors) == 1 and error.errors[0].startswith(NO_STEPS):
            raise GoalReached() from None
        raise


def plan_request(root: Path, goal: str, *, roles: Collection[str], tasks: list[str]) -> list[Message]:
    return [{"role": "system", "content": render("team_planner_system", root=str(root), roles=list(roles),
                                                 schema=plan_schema_text())},
            {"role": "user", "content": render("team_planner_user", goal=goal, files=project_files(root),
                                               tasks=tasks)}]


def propose(model: ChatModel, root: Path, goal: str, *, roles: Collection[str], board: dict[str, str],
            attempts: int = 3, may_end: bool = False) -> Plan:
    """A valid plan of tasks for `goal` (`board`: the tasks on the board, id -> title). Raises
    PlanningFailed after `attempts` invalid replies, the model's error, or (`may_end`) GoalReached."""
    messages = plan_request(root, goal, roles=roles, tasks=[f"{tid}: {title}" for tid, title in board.items()])
    # it reads the upstream's tree; nothing runs, nothing is written; what it reads loses this environment's
    # secrets before it goes to the model
    reader = Toolbox(root, read_only=True, env=dict(os.environ))
    return ask_for_plan(model, messages, attempts=attempts, reader=reader, max_reads=MAX_READS,
                        parse=lambda text: parse_team_plan(text, roles=roles, board=board, may_end=may_end))


def cut(plan: Plan, limit: int | None = None) -> list[Step]:
    """The proposed tasks kept, at most `limit`: in the plan's order, a task only after the proposed tasks
    it depends on, so that a cut plan never names a task it dropped."""
    proposed = {s.id for s in plan.steps}
    chosen: list[Step] = []
    while limit is None or len(chosen) < limit:
        taken = {s.id for s in chosen}
        step = next((s for s in plan.steps if s.id not in taken
                     and all(d in taken for d in s.dependencies if d in proposed)), None)
        if step is None:
            break
        chosen.append(step)
    return chosen


def task_fields(plan: Plan, *, max_attempts: int, goal: str, limit: int | None = None) -> list[dict]:
    """The board's fields of the tasks `cut` keeps, in its order. A dependency on another proposed task
    is written "#N" (its place here: admin.add_tasks gives it its id), one on a board task by its id."""
    chosen = cut(plan, limit)
    place = {s.id: n for n, s in enumerate(chosen, 1)}
    out = []
    for s in chosen:
        extra = s if isinstance(s, TeamStep) else TeamStep(id=s.id, title=s.title)
        body = (s.description.strip() + "\n\n" if s.description.strip() else "") + f"Part of the goal: {goal.strip()}"
        deps = [f"#{place[d]}" if d in place else d for d in s.dependencies]
        out.append({"title": s.title, "body": body, "deps": deps,
                    "role": extra.role, "tests": extra.tests, "files": learned([], extra.files),
                    "priority": extra.priority, "made_by": MADE_BY, "max_attempts": max_attempts})
    return out


def shown(plan: Plan) -> list[dict]:
    """The plan as `team plan` shows it (and prints with --json)."""
    return [{"id": s.id, "title": s.title, "deps": list(s.dependencies), "role": getattr(s, "role", None),
             "tests": getattr(s, "tests", None), "files": list(getattr(s, "files", [])),
             "description": s.description} for s in plan.steps]
