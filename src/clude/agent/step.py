"""One step's tool loop: the model acts through tools until it signals done or replan, or is stopped."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Literal

from clude.agent.guard import RepetitionGuard, marker_summary, signal_in
from clude.agent.prompts import render
from clude.agent.tools import Toolbox
from clude.llm.base import ChatModel, Message, Reply, ToolCall
from clude.llm.text_tools import problems_message

# The two control tools every step has besides the toolbox: how the model ends a step.
CONTROL_TOOLS = [
    {"type": "function", "function": {
        "name": "step_done",
        "description": "Call when the step you were given is complete.",
        "parameters": {"type": "object", "properties": {
            "summary": {"type": "string", "description": "one line: what you did"}},
            "required": ["summary"]}}},
    {"type": "function", "function": {
        "name": "replan",
        "description": "Call when the step cannot be done as planned: the plan must change.",
        "parameters": {"type": "object", "properties": {
            "reason": {"type": "string", "description": "why, and what the plan misses"}},
            "required": ["reason"]}}},
]


class BudgetExceeded(Exception):
    """The run used its token, cost or time budget."""


@dataclass
class StepOutcome:
    status: Literal["done", "failed", "replan"]
    reason: str     # done: the model's summary; failed: why; replan: the model's reason
    iterations: int


def iterations_in(messages: list[Message]) -> int:
    """Model turns so far in a step's conversation (a resumed step keeps counting)."""
    return sum(1 for m in messages if m.get("role") == "assistant")


def run_step(model: ChatModel, toolbox: Toolbox, messages: list[Message], *, max_iterations: int,
             repeat_limit: int = 3, check_budget: Callable[[], str | None] = lambda: None,
             on_reply: Callable[[Reply], None] = lambda reply: None,
             on_turn: Callable[[list[Message]], None] = lambda messages: None) -> StepOutcome:
    """Run the conversation in `messages` (system + step prompt, or a saved one) to the step's end.

    `on_reply` hears every reply (usage); `on_turn` gets the conversation after every turn (saving).
    Raises BudgetExceeded, and lets ModelError through (the model cannot be reached or used).
    """
    tools = toolbox.specs() + CONTROL_TOOLS
    guard = RepetitionGuard(same_action_limit=repeat_limit, same_error_limit=repeat_limit,
                            idle_limit=repeat_limit)
    turns = iterations_in(messages)
    ended = ended_already(messages)  # a resumed step whose last reply had finished it
    if ended is not None:
        return StepOutcome(ended[0], " ".join(ended[1].split()), turns)
    while turns < max_iterations:
        over = check_budget()
        if over:
            raise BudgetExceeded(over)
        reply = model.chat(messages, tools)
        turns += 1
        on_reply(reply)
        messages.append(reply.as_message())
        ended, stop = _act(reply, toolbox, messages, guard)
        on_turn(messages)
        if ended is not None:
            return StepOutcome(ended[0], " ".join(ended[1].split()), turns)  # one line
        if stop:
            return StepOutcome("failed", f"stopped: {stop}", turns)
    return StepOutcome("failed", f"reached the iteration cap ({max_iterations} model turns) "
                                 "without signalling done", turns)


def _act(reply: Reply, toolbox: Toolbox, messages: list[Message],
         guard: RepetitionGuard) -> tuple[tuple[str, str] | None, str | None]:
    """Carry out one reply: run its tool calls, answer its problems. Returns (end, stop):
    end = ("done" | "replan", text) when the step ends; stop = why the guard stops it."""
    end: tuple[str, str] | None = None
    stop: str | None = None
    for call in reply.tool_calls:
        if call.name in ("step_done", "replan"):
            end = end or _control(call)
            messages.append(_result(call, "ok"))
            continue
        result = toolbox.call(call.name, call.arguments)
        messages.append(_result(call, result.text))
        stop = stop or guard.record(Toolbox.action_key(call.name, call.arguments), result.text,
                                    result.is_error)
    acted = any(call.name not in ("step_done", "replan") for call in reply.tool_calls)
    if end is None and reply.stop != "max_tokens" and not acted:
        # a marker in its text ends the step unless the reply was cut there (the sentence went on) or
        # also acts (a plan listing the marker as its last item; it says so again after the results)
        end = ended_already([reply.as_message()])
    if end is not None:
        return end, None
    if reply.stop == "max_tokens" and not reply.tool_calls:  # asked again with more room already (llm)
        cut = next((p for p in reversed(reply.problems) if "max_tokens" in p), "cut off at the max_tokens limit")
        messages.append({"role": "user", "content": render("cut_off", problem=cut)})
        return None, guard.record_cut(cut)
    if reply.problems and not reply.tool_calls:
        # the answer shows the way its calls were read: fenced blocks only for the text protocol
        text = (problems_message(reply.problems) if reply.protocol == "text" else
                render("call_problems", problems=reply.problems))
        messages.append({"role": "user", "content": text})
        return None, guard.record("(unreadable tool calls)", "\n".join(reply.problems), True)
    if not reply.tool_calls:
        messages.append({"role": "user", "content": render("nudge")})
        return None, guard.record_idle()
    return None, stop


def ended_already(messages: list[Message]) -> tuple[str, str] | None:
    """("done" | "replan", text) when the conversation's last reply ended the step (a run killed
    before it recorded that), else None."""
    last = next((m for m in reversed(messages) if m.get("role") == "assistant"), None)
    if last is None:
        return None
    for raw in last.get("tool_calls") or []:
        function = raw.get("function") or {}
        if function.get("name") in ("step_done", "replan"):
            return _control(ToolCall(id=str(raw.get("id") or ""), name=function["name"],
                                     arguments=str(function.get("arguments") or "{}")))
    text = last.get("content") if isinstance(last.get("content"), str) else ""
    said = signal_in(text)
    if said is None:
        return None
    return said, marker_summary(text) or ("done" if said == "done" else "no reason given")


def _control(call: ToolCall) -> tuple[str, str]:
    try:
        args = json.loads(call.arguments or "{}")
    except ValueError:
        args = {}
    key = "summary" if call.name == "step_done" else "reason"
    text = str(args.get(key) or "").strip() if isinstance(args, dict) else ""
    return ("done" if call.name == "step_done" else "replan",
            text or ("done" if call.name == "step_done" else "no reason given"))


def _result(call: ToolCall, text: str) -> Message:
    return {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": text}
