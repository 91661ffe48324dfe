"""Reads what an agent CLI reports when it ends: its summary, its cost, and whether the output shows an
infrastructure failure — one reader per result format (clude, claude, codex, gemini, text)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable

from clude.harness.inject.clude_events import strip_ansi
from clude.team.backends.infra import InfraFailure, classify, retry_after

SUMMARY_CHARS = 4000  # the agent's final words kept in AgentRun.summary (and failure records)
MESSAGE_CHARS = 300  # the agent's own error text quoted in an InfraFailure message


@dataclass
class Outcome:
    summary: str
    cost_usd: float | None = None
    infra: InfraFailure | None = None
    read: bool = True  # the format's result was found: it alone says whether the agent could work
    gave_up: str | None = None  # the agent ran and ended saying it could not do the task (its words)
    tokens: dict[str, int] | None = None  # the token counts it reported, by its own names


def read_result(fmt: str, stdout: str, output: str, exit_code: int | None) -> Outcome:
    """What the run reported. `stdout`: the standard output alone (JSON formats); `output`: everything
    the run printed (the log). A structured result, when there is one, alone says whether the agent
    could work (what it printed while working is not searched); otherwise the whole output is."""
    reader = READERS.get(fmt, _text)
    outcome = reader(stdout, output, exit_code)
    if not outcome.read:
        outcome.infra = classify(output, exit_code)
    outcome.summary = cut(strip_ansi(outcome.summary).strip())
    return outcome


def cut(text: str, limit: int = SUMMARY_CHARS) -> str:
    """At most `limit` characters: the start and the end of a longer text (the end weighs more)."""
    if len(text) <= limit:
        return text
    head = limit // 4
    return text[:head].rstrip() + "\n[…]\n" + text[-(limit - head - 5):].lstrip()


def json_objects(text: str) -> list[dict]:
    """Every JSON object in `text` that starts a line (one per line, or pretty-printed), in order."""
    decoder = json.JSONDecoder()
    found: list[dict] = []
    position = 0
    for match in re.finditer(r"(?m)^[ \t]*\{", text):
        if match.start() < position:
            continue  # inside an object already read
        start = text.index("{", match.start())
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
            position = end
    return found


def _text(stdout: str, output: str, exit_code: int | None) -> Outcome:
    return Outcome(summary=_tail(stdout if stdout.strip() else output), read=False)


def _tail(text: str) -> str:
    """The end of what a program printed, with carriage-return progress lines collapsed."""
    lines = [line.rsplit("\r", 1)[-1] for line in text[-4 * SUMMARY_CHARS:].splitlines()]
    return "\n".join(lines).strip()


def _clude(stdout: str, output: str, exit_code: int | None) -> Outcome:
    """`clude run --headless --json`: the RunResult (status, reason, steps, cost_usd)."""
    result = next((o for o in reversed(json_objects(stdout)) if "status" in o), None)
    if result is None:
        return Outcome(summary=_tail(output), read=False)
    status, reason = str(result.get("status")), str(result.get("reason") or "")
    lines = [f"{status}: {reason}" if reason else status]
    for step in result.get("steps") or []:
        if isinstance(step, dict):
            said = step.get("summary") or step.get("reason") or ""
            lines.append(f"- {step.get('id')} {step.get('title', '')} [{step.get('status')}]"
                         + (f": {said}" if said else ""))
    usage = result.get("usage") if isinstance(result.get("usage"), dict) else {}
    outcome = Outcome(summary="\n".join(lines), cost_usd=_number(result.get("cost_usd")),
                      tokens=_tokens([{k: usage.get(k) for k in ("input_tokens", "output_tokens")}]))
    if status in ("blocked", "failed") and reason:  # clude ran, and found the task undoable (no valid plan...)
        outcome.gave_up = reason
    if status == "error":  # exit 4: the model or the environment cannot be used, never the task's fault
        why = reason.split("; once fixed, continue with:")[0]
        outcome.infra = classify(why, exit_code if exit_code else 4) or InfraFailure(
            kind="start_failed", message=f"clude could not work: {_short(why)}")
    return outcome


def _claude(stdout: str, output: str, exit_code: int | None) -> Outcome:
    """`claude -p --output-format json`: {"type": "result", "subtype", "is_error", "result",
    "total_cost_usd", "api_error_status", "terminal_reason", ...}."""
    result = next((o for o in reversed(json_objects(stdout))
                   if o.get("type") == "result" or "is_error" in o), None)
    if result is None:
        return Outcome(summary=_tail(output), read=False)
    text = result.get("result")
    text = text if isinstance(text, str) else ""
    cost = _number(result.get("total_cost_usd", result.get("cost_usd")))
    outcome = Outcome(summary=text or str(result.get("subtype") or ""), cost_usd=cost,
                      tokens=_tokens([result.get("usage")]))
    if result.get("is_error") is True:
        status = result.get("api_error_status")
        said = _short(text or str(result.get("api_error_type") or result.get("subtype") or ""))
        if status in (401, 403):
            outcome.infra = InfraFailure(kind="auth", message=f"claude could not authenticate ({said}): "
                                         "check ANTHROPIC_API_KEY (or the token it is given)")
        elif status in (429, 529):
            wait = retry_after(text)
            outcome.infra = InfraFailure(kind="rate_limited", message=f"claude is rate limited ({said})",
                                         retry_after_s=wait)
        elif isinstance(status, int) and 500 <= status <= 599:
            outcome.infra = InfraFailure(kind="server_error", message=f"claude's API failed ({said})",
                                         retry_after_s=retry_after(text))
        else:
            outcome.infra = classify(text, exit_code if exit_code else 1)
            if outcome.infra is None and result.get("terminal_reason") == "api_error":
                outcome.infra = InfraFailure(kind="start_failed",
                                             message=f"claude stopped on an API error: {said}")
    if outcome.infra is None and result.get("subtype") == "error_max_turns":
        outcome.gave_up = "the agent used up its turns (claude's --max-turns) before finishing"
    return outcome


def _codex(stdout: str, output: str, exit_code: int | None) -> Outcome:
    """`codex exec --json`: JSONL events; the final words are the last agent_message item
    ({"type": "item.completed", "item": {"type": "agent_message", "text"}}, or the older
    {"msg": {"type": "agent_message", "message"}}); errors are "error" and "turn.failed" events; each
    "turn.completed" has the turn's usage (input_tokens, cached_input_tokens, output_tokens, ...)."""
    final, errors, usages = "", [], []
    events = json_objects(stdout)
    if not events:
        return Outcome(summary=_tail(output), read=False)
    for event in events:
        kind = event.get("type")
        item = event.get("item") if isinstance(event.get("item"), dict) else {}
        msg = event.get("msg") if isinstance(event.get("msg"), dict) else {}
        if kind == "item.completed" and item.get("type") == "agent_message":
            final = str(item.get("text") or final)
        elif msg.get("type") == "agent_message":
            final = str(msg.get("message") or final)
        elif msg.get("type") == "task_complete" and msg.get("last_agent_message"):
            final = str(msg["last_agent_message"])
        elif kind == "error" or msg.get("type") == "error":
            errors.append(str(event.get("message") or msg.get("message") or ""))
        elif kind == "turn.failed":
            error = event.get("error") if isinstance(event.get("error"), dict) else {}
            errors.append(str(error.get("message") or ""))
        elif kind == "turn.completed":
            usages.append(event.get("usage"))
    outcome = Outcome(summary=final or "\n".join(errors) or _tail(output), tokens=_tokens(usages))
    if errors and exit_code != 0:
        outcome.infra = classify("\n".join(errors), exit_code)
    return outcome


def _gemini(stdout: str, output: str, exit_code: int | None) -> Outcome:
    """`gemini --output-format json`: {"session_id", "response", "stats": {"models": {NAME: {"tokens":
    {"input", "prompt", "candidates", "total", "cached", "thoughts", "tool"}, ...}}, ...}} on stdout, no
    cost; a failure is {"session_id", "error": {"type", "message", "code"}} on stderr (so in `output`),
    code being an HTTP status or the exit code (41: no usable auth). The untrusted-folder exit (55)
    is plain text."""
    result = _gemini_result(stdout) or _gemini_result(output)
    if result is None:
        outcome = Outcome(summary=_tail(output), read=False)
        if exit_code == GEMINI_UNTRUSTED or "not running in a trusted directory" in output:
            outcome.infra = InfraFailure(
                kind="missing_env", name="GEMINI_CLI_TRUST_WORKSPACE", message="gemini refused to work in a "
                f"folder it does not trust (exit {exit_code}): give it GEMINI_CLI_TRUST_WORKSPACE=true (the "
                "gemini backend's default, unless the workers' environment sets it otherwise)")
            outcome.read = True
        return outcome
    response = result.get("response")
    stats = result.get("stats") if isinstance(result.get("stats"), dict) else {}
    models = stats.get("models") if isinstance(stats.get("models"), dict) else {}
    outcome = Outcome(summary=response if isinstance(response, str) else "",
                      tokens=_tokens([model.get("tokens") for model in models.values() if isinstance(model, dict)]))
    error = result.get("error") if isinstance(result.get("error"), dict) else None
    if error:
        message = str(error.get("message") or error.get("type") or "")
        outcome.summary = outcome.summary or message
        code = error.get("code")
        if code == GEMINI_NO_AUTH and "Invalid auth method" in message:
            outcome.infra = InfraFailure(kind="auth", message=f"gemini found no auth method it accepts "
                                         f"({_short(message)}): with GOOGLE_GEMINI_BASE_URL set it needs "
                                         f'{GEMINI_KEY_SETTING} in ~/.gemini/settings.json')
        elif code in (401, 403, GEMINI_NO_AUTH):
            outcome.infra = InfraFailure(kind="auth", message=f"gemini could not authenticate "
                                         f"({_short(message)}): check GEMINI_API_KEY or GOOGLE_API_KEY")
        elif code == 429:
            outcome.infra = InfraFailure(kind="rate_limited", message=f"gemini is rate limited "
                                         f"({_short(message)})", retry_after_s=retry_after(message))
        elif isinstance(code, int) and 500 <= code <= 599:
            outcome.infra = InfraFailure(kind="server_error", message=f"gemini's API failed ({_short(message)})",
                                         retry_after_s=retry_after(message))
        else:
            outcome.infra = classify(message, exit_code if exit_code else 1)
    return outcome


GEMINI_NO_AUTH = 41  # gemini's FatalAuthenticationError exit code (and its error's code)
GEMINI_UNTRUSTED = 55  # gemini's FatalUntrustedWorkspaceError exit code
GEMINI_KEY_SETTING = '{"security": {"auth": {"selectedType": "gemini-api-key"}}}'


def _gemini_result(text: str) -> dict | None:
    """The last of gemini's JSON results (a response or an error) in `text`."""
    return next((o for o in reversed(json_objects(text)) if "response" in o or "error" in o), None)


# aider's usage report after each reply: "Tokens: 2.7k sent, 42 received. Cost: $0.0072 message, $0.0072
# session." (no Cost part for a model it knows no prices for; the console wraps it at 80 columns)
_AIDER_COST = re.compile(r"Cost:\s+\$([0-9]+(?:\.[0-9]+)?)\s+message,\s+\$([0-9]+(?:\.[0-9]+)?)\s+session\.")


def _aider(stdout: str, output: str, exit_code: int | None) -> Outcome:
    """aider's plain text: its last words, and the session's cost from its last usage report."""
    costs = _AIDER_COST.findall(output)
    return Outcome(summary=_tail(output), cost_usd=float(costs[-1][1]) if costs else None, read=False)


def _tokens(usages: list[Any]) -> dict[str, int] | None:
    """The token counts of every usage object (their whole-number fields, summed by name), or None."""
    total: dict[str, int] = {}
    for usage in usages:
        for name, value in (usage.items() if isinstance(usage, dict) else ()):
            if isinstance(value, int) and not isinstance(value, bool):
                total[name] = total.get(name, 0) + value
    return total or None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS - 1] + "…"


READERS: dict[str, Callable[[str, str, int | None], Outcome]] = {
    "clude": _clude, "claude": _claude, "codex": _codex, "gemini": _gemini, "aider": _aider, "text": _text}
