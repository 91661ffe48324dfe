"""A ChatModel that replays scripted replies in process, and the script handling the stub servers share."""

from __future__ import annotations

import copy
import json
import threading
from typing import Any, Callable, Union

from clude.llm.base import Message, ModelError, ModelUnavailable, Reply, ToolCall, ToolSpec, Usage

# One scripted response: a Reply, a plain text, or a dict
#   {"text": str, "tool_calls": [{"name", "arguments": dict | JSON text, "id"?}],
#    "stop"?: "end" | "max_tokens" | ..., "usage"?: {"input_tokens", "output_tokens"}}
# Stub servers also accept {"status": 429, "retry_after": 1, "message"?: str} (an HTTP error),
# {"raw": body, "status"?: 200} (a JSON body sent verbatim) and "cut": N | true in a reply dict
# (the reply breaks off: a stream after N events, 3 for true; a JSON body halfway).
Response = Union[Reply, str, dict]
ScriptFunction = Callable[[list[Message], "list[ToolSpec] | None"], Response]


class ScriptExhausted(ModelError):
    """More requests arrived than responses were scripted."""


def estimate_tokens(text: str) -> int:
    """The rough token count used when a script gives none: a token per four characters."""
    return len(text) // 4


def messages_text(messages: list[Message]) -> str:
    """All the text in a conversation (contents and tool-call arguments), for token estimates."""
    parts: list[str] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(part.get("text", "")) for part in content if isinstance(part, dict))
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            parts.append(str(function.get("name", "")) + str(function.get("arguments", "")))
    return "\n".join(parts)


def is_error_entry(entry: Any) -> bool:
    """Whether a script entry asks for an HTTP error rather than a reply."""
    return isinstance(entry, dict) and "status" in entry


class Script:
    """Responses consumed in order (a list) or computed per request (a function of messages, tools)."""

    def __init__(self, responses: list[Response] | ScriptFunction, id_prefix: str = "call_"):
        if not callable(responses) and not isinstance(responses, (list, tuple)):
            raise TypeError("a script is a list of responses or a function (messages, tools) -> response")
        self._responses = responses
        self._position = 0
        self._next_id = 0
        self._id_prefix = id_prefix
        self._lock = threading.Lock()

    @property
    def remaining(self) -> int | None:
        """How many listed responses are left (None for a function script)."""
        if callable(self._responses):
            return None
        return len(self._responses) - self._position

    def next_entry(self, messages: list[Message], tools: list[ToolSpec] | None) -> Response:
        """The raw script entry for this request (a reply, a text, a dict or an error entry)."""
        if callable(self._responses):
            entry = self._responses(messages, tools)
            if entry is None:
                raise ModelError("the script function returned None instead of a response")
            return entry
        with self._lock:
            if self._position >= len(self._responses):
                count = len(self._responses)
                raise ScriptExhausted(
                    f"scripted model ran out of responses: {count} response{'s' if count != 1 else ''}"
                    f" scripted, request {self._position + 1} has none")
            entry = self._responses[self._position]
            self._position += 1
            return entry

    def new_id(self) -> str:
        with self._lock:
            self._next_id += 1
            return f"{self._id_prefix}{self._next_id}"

    def to_reply(self, entry: Response, messages: list[Message]) -> Reply:
        """Turn a non-error script entry into a Reply, estimating the usage it does not state."""
        if isinstance(entry, Reply):
            reply = entry.model_copy(deep=True)
            if reply.usage.requests == 0:
                reply.usage.requests = 1
            return reply
        if isinstance(entry, str):
            entry = {"text": entry}
        if not isinstance(entry, dict):
            raise TypeError(f"a scripted response is a Reply, a str or a dict, not {type(entry).__name__}")
        if is_error_entry(entry):
            raise TypeError("an error entry has no reply")
        unknown = set(entry) - {"text", "tool_calls", "stop", "usage", "input_tokens", "output_tokens"}
        if unknown:
            raise ValueError(f"unknown keys in scripted response: {sorted(unknown)}")
        text = entry.get("text") or ""
        calls = [self._tool_call(call) for call in entry.get("tool_calls") or []]
        stop = entry.get("stop") or ("tool_calls" if calls else "end")
        usage = dict(entry.get("usage") or {})
        for key in ("input_tokens", "output_tokens"):
            if key in entry:
                usage[key] = entry[key]
        out_text = text + "".join(call.name + call.arguments for call in calls)
        return Reply(text=text, tool_calls=calls, stop=stop, usage=Usage(
            input_tokens=usage.get("input_tokens", estimate_tokens(messages_text(messages))),
            output_tokens=usage.get("output_tokens", estimate_tokens(out_text)),
            requests=1))

    def _tool_call(self, call: Any) -> ToolCall:
        if isinstance(call, ToolCall):
            return call
        if not isinstance(call, dict) or "name" not in call:
            raise ValueError(f"a scripted tool call is a dict with a name, got {call!r}")
        arguments = call.get("arguments", {})
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        return ToolCall(id=call.get("id") or self.new_id(), name=call["name"], arguments=arguments)


def error_for_entry(entry: dict, model: str) -> ModelError:
    """The exception a scripted HTTP error stands for in process."""
    status = int(entry["status"])
    message = entry.get("message") or f"scripted HTTP {status} from model {model!r}"
    if status in (400, 401, 403, 404):
        return ModelError(message)
    return ModelUnavailable(message)


class ScriptedModel:
    """A ChatModel replaying a script: a list of responses in order, or a function of the request."""

    def __init__(self, responses: list[Response] | ScriptFunction, name: str = "scripted"):
        self.name = name
        self.script = Script(responses)
        self.requests: list[dict[str, Any]] = []
        self.usage = Usage()

    def chat(self, messages: list[Message], tools: list[ToolSpec] | None = None) -> Reply:
        messages = copy.deepcopy(messages)
        tools = copy.deepcopy(tools)
        self.requests.append({"messages": messages, "tools": tools})
        entry = self.script.next_entry(copy.deepcopy(messages), copy.deepcopy(tools))
        if is_error_entry(entry):
            raise error_for_entry(entry, self.name)
        reply = self.script.to_reply(entry, messages)
        self.usage = self.usage + reply.usage
        return reply
