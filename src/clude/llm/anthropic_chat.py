"""The `anthropic` provider: the Anthropic messages API through the official SDK."""

from __future__ import annotations

import json
from typing import Any

import anthropic

from clude.llm.base import Message, Reply, ToolCall, ToolSpec, Usage
from clude.llm.provider_model import ProviderModel, count
from clude.llm.retry import Transient

STOP = {"max_tokens": "max_tokens", "tool_use": "tool_calls", "model_context_window_exceeded": "max_tokens"}
EMPTY_RESULT = "(no output)"


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, list):
        return "\n\n".join(str(p.get("text", "")) for p in content
                           if isinstance(p, dict) and p.get("type", "text") == "text")
    return str(content)


def _text_blocks(content: Any) -> list[dict]:
    """Content as Anthropic blocks; whitespace-only text is left out (the API refuses it)."""
    if isinstance(content, list) and any(isinstance(p, dict) and p.get("type") not in (None, "text")
                                         for p in content):
        return [p if p.get("type") != "text" else {"type": "text", "text": str(p.get("text", ""))}
                for p in content if isinstance(p, dict) and (p.get("type") != "text" or
                                                             str(p.get("text", "")).strip())]
    text = _text_of(content)
    return [{"type": "text", "text": text}] if text.strip() else []


def _tool_input(arguments: str) -> dict:
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        value = None
    return value if isinstance(value, dict) else {"unparsed_arguments": arguments}


def to_anthropic(messages: list[Message]) -> tuple[str, list[dict]]:
    """(system text, messages) in the Anthropic format, from normalized OpenAI-style messages:
    tool calls become tool_use blocks, tool results tool_result blocks in the next user turn."""
    system: list[str] = []
    out: list[dict] = []

    def user(blocks: list[dict]) -> None:
        if out and out[-1]["role"] == "user":
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": "user", "content": list(blocks)})

    for message in messages:
        role, content = message.get("role"), message.get("content")
        if role in ("system", "developer"):
            system.append(_text_of(content))
        elif role == "tool":
            block = {"type": "tool_result", "tool_use_id": str(message.get("tool_call_id") or ""),
                     "content": _text_of(content) or EMPTY_RESULT}
            if message.get("is_error"):
                block["is_error"] = True
            user([block])
        elif role == "assistant":
            blocks = _text_blocks(content)
            for call in message.get("tool_calls") or []:
                fn = call.get("function") or {}
                args = fn.get("arguments")
                blocks.append({"type": "tool_use", "id": str(call.get("id") or ""),
                               "name": str(fn.get("name") or ""),
                               "input": _tool_input(args if isinstance(args, str) else json.dumps(args or {}))})
            out.append({"role": "assistant", "content": blocks or [{"type": "text", "text": "(no content)"}]})
        else:
            blocks = _text_blocks(content)
            if blocks:
                user(blocks)
    return "\n\n".join(s for s in system if s.strip()), out


def to_anthropic_tools(tools: list[ToolSpec]) -> list[dict]:
    out = []
    for tool in tools:
        fn = tool.get("function") if isinstance(tool.get("function"), dict) else tool
        out.append({"name": fn.get("name"), "description": fn.get("description") or "",
                    "input_schema": fn.get("parameters") or fn.get("input_schema") or
                    {"type": "object", "properties": {}}})
    return out


class AnthropicChat(ProviderModel):
    """A Claude model on the Anthropic messages API (or a server speaking it)."""

    provider = "anthropic"
    typed_errors = True  # its error bodies name the kind of error ("overloaded_error: ...")

    def __init__(self, config, *, api_key: str, **options: Any):
        super().__init__(config, api_key=api_key, **options)
        # the SDK's own retries are off: clude's policy (retry.py) decides
        self._client = anthropic.Anthropic(api_key=api_key, base_url=self.base_url, timeout=config.timeout,
                                           max_retries=0)

    def _request(self, messages: list[Message], tools: list[ToolSpec] | None, max_tokens: int) -> Reply:
        system, conversation = to_anthropic(messages)
        options: dict[str, Any] = {"model": self.name, "max_tokens": max_tokens,
                                   "messages": conversation}
        if system:
            options["system"] = system
        if self.config.temperature is not None:  # this SDK has no temperature parameter: sent as is
            options["extra_body"] = {"temperature": min(1.0, self.config.temperature)}  # range 0..1
        if tools:
            options["tools"] = to_anthropic_tools(tools)
        response = self.send(anthropic, self._client.messages.create, "message", **options)
        return self._reply(response)

    def _reply(self, response: Any) -> Reply:
        not_json = self.not_an_object(response, "message")
        if not_json:
            raise not_json
        raw_usage = getattr(response, "usage", None)
        usage = Usage(input_tokens=count(getattr(raw_usage, "input_tokens", 0)),
                      output_tokens=count(getattr(raw_usage, "output_tokens", 0)), requests=1)
        content = getattr(response, "content", None)
        stop_reason = getattr(response, "stop_reason", None)
        if not isinstance(content, list) or (not content and stop_reason is None):
            raise Transient("empty reply (no content and no stop reason)", usage=usage, broken=True)
        if stop_reason == "pause_turn":  # the server paused a long turn: ask again, bounded like a broken reply
            raise Transient("the server paused the turn (stop_reason pause_turn)", usage=usage, broken=True)
        texts: list[str] = []
        calls: list[ToolCall] = []
        for block in content:
            kind = getattr(block, "type", None) if not isinstance(block, dict) else block.get("type")
            get = block.get if isinstance(block, dict) else (lambda k, b=block: getattr(b, k, None))
            if kind == "text" and get("text"):
                texts.append(str(get("text")))
            elif kind == "tool_use":
                value = get("input")
                arguments = value if isinstance(value, str) else json.dumps(value if value is not None else {})
                calls.append(ToolCall(id=str(get("id") or f"toolu_{len(calls)}"), name=str(get("name") or ""),
                                      arguments=arguments))
        stop = STOP.get(stop_reason or "", "end")
        if calls and stop == "end":
            stop = "tool_calls"
        if stop == "tool_calls" and not calls:
            stop = "end"
        problems = []
        if stop_reason == "refusal":
            stop = "error"
            problems.append("the model refused to answer (stop_reason refusal): the reply may be incomplete; "
                            "rephrase the request or leave out what it declined")
        return Reply(text="\n\n".join(texts), tool_calls=calls, stop=stop, usage=usage, problems=problems)
