"""Asks the model for a plan and sends the exact validation errors back until it is valid, or gives up."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Callable, Collection

from clude.agent.plan import Plan, PlanError, parse_plan, plan_schema_text
from clude.agent.prompts import render
from clude.agent.step import BudgetExceeded
from clude.agent.tools.box import Toolbox
from clude.llm.base import ChatModel, Message, Reply

MAX_FILES = 80  # files of the project listed for the planner
_SKIP_DIRS = {".git", ".clude", "__pycache__", "node_modules", ".venv", "venv", ".tox", "target"}


class PlanningFailed(Exception):
    """No valid plan after the allowed attempts; the message has the last errors."""


def project_files(root: Path, limit: int = MAX_FILES) -> list[str]:
    """The project's files for the planner: git's tracked and new files, else a walk."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                             cwd=root, capture_output=True, text=True, timeout=30)
        if out.returncode == 0:
            files = [line for line in out.stdout.splitlines() if line and not line.startswith(".clude/")]
            return sorted(set(files))[:limit]
    except (OSError, subprocess.SubprocessError):
        pass
    found: list[str] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        found.extend(str((Path(folder) / n).relative_to(root)) for n in sorted(names))
        if len(found) >= limit:
            break
    return found[:limit]


def plan_request(root: Path, goal: str) -> list[Message]:
    return [{"role": "system", "content": render("planner_system", root=str(root),
                                                 schema=plan_schema_text())},
            {"role": "user", "content": render("planner_user", goal=goal, files=project_files(root))}]


def replan_request(root: Path, reason: str, overview: str) -> list[Message]:
    return [{"role": "system", "content": render("planner_system", root=str(root),
                                                 schema=plan_schema_text())},
            {"role": "user", "content": render("replan_user", reason=reason, overview=overview)}]


def ask_for_plan(model: ChatModel, messages: list[Message], *, attempts: int, done_ids: Collection[str] = (),
                 check_budget: Callable[[], str | None] = lambda: None,
                 on_reply: Callable[[Reply], None] = lambda reply: None,
                 on_invalid: Callable[[int, PlanError], None] = lambda n, e: None,
                 parse: Callable[[str], Plan] | None = None, reader: Toolbox | None = None,
                 max_reads: int = 0) -> Plan:
    """A valid plan from the conversation `messages` (extended in place). Raises PlanningFailed
    after `attempts` invalid plans, BudgetExceeded, or ModelError. `parse`: how a reply's text becomes
    a plan (raising PlanError), when not parse_plan's. `reader`: read-only tools the model may call,
    up to `max_reads` turns, before it answers with the plan."""
    parse = parse or (lambda text: parse_plan(text, done_ids=done_ids))
    last: PlanError | None = None
    for attempt in range(1, attempts + 1):
        over = check_budget()
        if over:
            raise BudgetExceeded(over)
        reply = _read_then_reply(model, messages, reader, max_reads, on_reply) if reader else model.chat(messages)
        on_reply(reply)
        messages.append(reply.as_message() if not reply.tool_calls else
                        {"role": "assistant", "content": _reply_text(reply)})
        try:
            return parse(_reply_text(reply))
        except PlanError as error:
            last = error
            on_invalid(attempt, error)
            messages.append({"role": "user", "content": render("plan_invalid", errors=error.errors)})
    raise PlanningFailed(f"no valid plan after {attempts} attempt{'s' if attempts != 1 else ''}; "
                         f"the last one: {'; '.join(last.errors) if last else 'no reply'}")


def _read_then_reply(model: ChatModel, messages: list[Message], reader: Toolbox, max_reads: int,
                     on_reply: Callable[[Reply], None]) -> Reply:
    """The model reads the workspace with `reader`'s tools as long as it calls them (up to max_reads
    turns; their results go back to it), then its reply without a call: the plan."""
    tools = reader.specs()
    for _ in range(max_reads):
        reply = model.chat(messages, tools)
        if not reply.tool_calls:
            return reply
        on_reply(reply)
        messages.append(reply.as_message())
        for call in reply.tool_calls:
            result = reader.call(call.name, call.arguments)
            messages.append({"role": "tool", "tool_call_id": call.id, "name": call.name, "content": result.text})
    messages.append({"role": "user", "content": render("plan_now")})
    return model.chat(messages)


def _reply_text(reply: Reply) -> str:
    """The plan's text: the reply's text, or the arguments of a tool call the model made anyway."""
    if reply.text.strip() or not reply.tool_calls:
        return reply.text
    try:
        return json.dumps(json.loads(reply.tool_calls[0].arguments))
    except ValueError:
        return reply.tool_calls[0].arguments
