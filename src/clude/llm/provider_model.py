"""The base of the SDK-backed chat models (openai_chat, anthropic_chat): message normalization, tool
modes (native or the text protocol), retries, usage and cost; a subclass sends one request."""

from __future__ import annotations

import json
import threading
from typing import Any, Callable, Mapping

from pydantic import BaseModel

from clude.config.settings import ModelConfig
from clude.llm.base import Message, ModelError, Reply, ToolCall, ToolSpec, Usage
from clude.llm.messages import normalize_for, quirks_for
from clude.llm.prices import cost_of
from clude.llm.retry import Attempts, Transient, connection_failure, parse_retry_after, transient_status
from clude.llm.text_tools import parse_tool_calls, render_tool_call, render_tool_result, tools_prompt

# A reply cut off at max_tokens is asked for again once with this many times the budget: a tool call
# holding a whole file outgrows a small limit. A model that runs on without end is cut off again.
CUT_OFF_GROWTH = 2
DEFAULT_BASE_URL = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}
NO_KEY = "no-key-required"  # sent to local servers when the key variable is unset


class ProviderModel:
    """What every SDK-backed model shares; subclasses send one request and read its reply."""

    provider = "?"

    def __init__(self, config: ModelConfig, *, api_key: str, key_env: str, base_url: str,
                 prices: Mapping | None, sleep: Callable[[float], None], clock: Callable[[], float]):
        self.config = config
        self.name = config.name
        self.base_url = base_url
        self.key_env = key_env
        self._secret = api_key if api_key != NO_KEY else ""
        self.quirks = quirks_for(config.name, [q.model_dump(exclude_none=True) for q in config.quirks])
        self.native_tools = config.tool_mode == "native" or (
            config.tool_mode == "auto" and self.quirks.native_tools)
        self.prices = dict(prices) if prices else None  # model-name glob -> Price (Settings.prices)
        self.usage = Usage()  # everything this model instance has used, failed requests included
        self._sleep, self._clock = sleep, clock
        self._lock = threading.Lock()  # chat() may run in several threads: guards usage and _calls
        self._calls = 0

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(provider={self.provider!r}, name={self.name!r}, "
                f"base_url={self.base_url!r}, key_env={self.key_env!r})")

    @property
    def where(self) -> str:
        return f"{self.provider} model {self.name!r} at {self.base_url}"

    # the request ---------------------------------------------------------------------------
    def chat(self, messages: list[Message], tools: list[ToolSpec] | None = None) -> Reply:
        tools = list(tools or [])
        if self.native_tools:
            prepared, send_tools = normalize_for(messages, self.quirks), tools or None
        else:
            prepared, send_tools = normalize_for(text_protocol(messages, tools), self.quirks), None
        attempts = Attempts(self.config.max_retries, self._sleep, self._clock)  # this call's own
        budget = self.config.max_tokens
        try:
            reply = attempts.run(lambda: self._usable(self._request(prepared, send_tools, budget)), self.where)
        except ModelError:
            self._add_usage(self._priced(attempts.usage))
            raise
        used = attempts.usage
        if reply.stop == "max_tokens":  # cut off: asked again with room to finish
            cut, budget = reply, self.config.max_tokens * CUT_OFF_GROWTH
            try:
                reply = attempts.run(lambda: self._usable(self._request(prepared, send_tools, budget)), self.where)
            except ModelError:  # the larger budget is refused (a context window too small): the cut reply stays
                reply, budget = cut, self.config.max_tokens
            used = used + attempts.usage + (cut.usage + Usage(broken_replies=1) if reply is not cut else Usage())
        reply = self._checked(reply, tools, budget)
        reply.usage = self._priced(used + reply.usage)
        self._add_usage(reply.usage)
        return reply

    def _add_usage(self, usage: Usage) -> None:
        with self._lock:
            self.usage = self.usage + usage

    def _request(self, messages: list[Message], tools: list[ToolSpec] | None) -> Reply:
        raise NotImplementedError

    # replies -------------------------------------------------------------------------------
    @staticmethod
    def _usable(reply: Reply) -> Reply:
        """The reply, unless it has nothing in it: no text, no tool call, nothing to report (retried)."""
        if reply.stop == "end" and not reply.text.strip() and not reply.tool_calls and not reply.problems:
            raise Transient("empty reply (no text and no tool calls)", usage=reply.usage, broken=True)
        return reply

    def not_an_object(self, response: Any, what: str) -> Transient | None:
        """A Transient when the SDK read a body that is not a JSON object (HTML, a list, a string)."""
        if isinstance(response, (BaseModel, dict)):
            return None
        shown = response if isinstance(response, str) else json.dumps(response, default=str)
        return Transient(f"the reply is not a JSON {what}: {self.scrub(shown)[:200]}", broken=True)

    typed_errors = False  # whether the server's error message starts with its kind of error

    def server_message(self, error: Any) -> str:
        """The server's own words in an SDK's HTTP error, from the error body when it has them."""
        body = getattr(error, "body", None)
        if isinstance(body, dict):
            inner = body.get("error") if isinstance(body.get("error"), dict) else body
            if inner.get("message"):
                kind = f"{inner.get('type') or 'error'}: " if self.typed_errors else ""
                return f"{kind}{inner['message']}"
        return str(getattr(error, "message", "") or error)

    def send(self, sdk: Any, create: Callable[..., Any], what: str, **options: Any) -> Any:
        """Call an SDK's create(**options), turning its exceptions into clude's: transient ones to be
        retried, HTTP errors by status. Both SDKs name their exceptions alike."""
        try:
            return create(**options)
        except sdk.APITimeoutError:
            raise Transient(f"timeout after {self.config.timeout:g} s") from None
        except sdk.APIConnectionError as error:
            raise connection_failure(error, self.scrub) from None
        except sdk.APIStatusError as error:
            raise self.http_error(error.status_code, error.response.headers,
                                  self.server_message(error)) from None
        except sdk.APIError as error:  # a body the SDK cannot read
            raise Transient(f"unreadable reply: {self.scrub(error)}", broken=True) from None
        except json.JSONDecodeError as error:  # labelled JSON, but not (an HTML error page, say)
            raise Transient(f"the reply is not a JSON {what}: {self.scrub(error.doc)[:200]}",
                            broken=True) from None

    def _checked(self, reply: Reply, tools: list[ToolSpec], budget: int) -> Reply:
        """The reply with text-protocol calls parsed, call problems listed, max_tokens flagged."""
        problems: list[str] = []
        if not self.native_tools and tools:
            reply.protocol = "text"
        if not self.native_tools and tools and not reply.tool_calls:
            text, calls, problems = parse_tool_calls(reply.text, tools)
            reply.text, reply.tool_calls = text, [self._renumbered(call) for call in calls]
            if reply.tool_calls and reply.stop == "end":
                reply.stop = "tool_calls"
        else:
            problems = call_problems(reply.tool_calls, tools)
        if reply.stop == "max_tokens":
            asked = (f", and again at {budget}" if budget != self.config.max_tokens else "")
            problems.append(f"the reply was cut off at the max_tokens limit ({self.config.max_tokens} tokens"
                            f"{asked}; [model] max_tokens)")
        reply.problems = list(reply.problems) + problems
        if reply.problems:
            reply.usage = reply.usage + Usage(broken_replies=1)
        return reply

    def _renumbered(self, call: ToolCall) -> ToolCall:
        with self._lock:
            self._calls += 1
            number = self._calls
        return ToolCall(id=f"call_text_{number}", name=call.name, arguments=call.arguments)

    def _priced(self, usage: Usage) -> Usage:
        usage = usage.model_copy()
        usage.cost_usd = cost_of(self.name, usage.input_tokens, usage.output_tokens, self.prices)
        return usage

    # errors --------------------------------------------------------------------------------
    def scrub(self, text: Any) -> str:
        """Text from the server with the key removed, should it echo it."""
        text = str(text if text is not None else "")
        if self._secret and len(self._secret) >= 4:
            text = text.replace(self._secret, "***")
        return text[:500]

    def http_error(self, status: int, headers: Mapping[str, str] | None, message: Any) -> Exception:
        """A Transient (to retry) or a ModelError saying what to fix, for an HTTP error status."""
        said = self.scrub(message)
        if transient_status(status):
            return Transient(f"HTTP {status}: {said}", parse_retry_after(headers))
        key = f"${self.key_env}"
        if status == 401:
            fix = (f"the server rejected the API key: put a valid key for this server in {key}"
                   if self._secret else f"the server wants an API key: set {key}")
        elif status == 403:
            fix = (f"the key in {key} is not allowed to use this model: check the key's permissions, "
                   "its account, and the model name")
        elif status == 404:
            fix = (f"unknown model {self.name!r} or wrong base_url: check name and base_url in [model] "
                   f"(the server lists its models at {self.base_url}/models)")
        elif status == 400 and "model" in said.lower():
            fix = f"the server does not accept the model {self.name!r}: check name in [model]"
        else:
            fix = "the server rejected the request"
        return ModelError(f"{self.where}: HTTP {status}: {fix}. The server said: {said}")


def call_problems(calls: list[ToolCall], tools: list[ToolSpec]) -> list[str]:
    """What is wrong with native tool calls: unknown tool names, arguments that are not a JSON object."""
    known = [str((t.get("function") or t).get("name")) for t in tools if isinstance(t, dict)]
    problems = []
    for call in calls:
        label = f"tool call {call.id} ({call.name})"
        if tools and call.name not in known:
            problems.append(f"tool call {call.id}: unknown tool {call.name!r}; known tools: "
                            f"{', '.join(known)}")
            continue
        try:
            value = json.loads(call.arguments) if call.arguments.strip() else {}
        except ValueError as error:
            problems.append(f"{label}: the arguments are not valid JSON ({error}): {call.arguments[:200]}")
            continue
        if not isinstance(value, dict):
            problems.append(f"{label}: the arguments must be a JSON object, got {call.arguments[:200]}")
    return problems


def _plain(content: Any) -> str:
    """Content as text: the text parts of a list joined with a blank line."""
    if content is None:
        return ""
    if isinstance(content, list):
        return "\n\n".join(str(p["text"]) for p in content if isinstance(p, dict) and p.get("text") is not None)
    return str(content)


def count(value: Any) -> int:
    """A token count from a reply's usage; anything but a non-negative integer counts as 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def text_protocol(messages: list[Message], tools: list[ToolSpec]) -> list[Message]:
    """Messages for a model without native tools: calls as fenced blocks, results as user text,
    and the tool instructions after the system text."""
    out: list[Message] = []
    names: dict[str, str] = {}
    for message in messages:
        role = message.get("role")
        if role == "assistant" and message.get("tool_calls"):
            calls = []
            for raw in message["tool_calls"]:
                fn = raw.get("function") or {}
                args = fn.get("arguments")
                calls.append(ToolCall(id=str(raw.get("id") or ""), name=str(fn.get("name") or ""),
                                      arguments=args if isinstance(args, str) else json.dumps(args or {})))
            names.update({c.id: c.name for c in calls})
            parts = [_plain(message.get("content"))] + [render_tool_call(c) for c in calls]
            out.append({"role": "assistant", "content": "\n\n".join(p for p in parts if p.strip())})
        elif role == "tool":
            call_id = str(message.get("tool_call_id") or "")
            name = names.get(call_id) or str(message.get("name") or "tool")
            out.append({"role": "user", "content": render_tool_result(
                call_id, name, _plain(message.get("content")))})
        else:
            out.append(message)
    if tools:
        at = max((i + 1 for i, m in enumerate(out) if m.get("role") in ("system", "developer")), default=0)
        out.insert(at, {"role": "system", "content": tools_prompt(tools)})
    return out
