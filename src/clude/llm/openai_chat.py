"""The `openai` provider: any OpenAI-compatible chat-completions server through the official SDK."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from typing import Any

import openai

from clude.llm.base import Message, Reply, ToolCall, ToolSpec, Usage
from clude.llm.provider_model import DEFAULT_BASE_URL, ProviderModel, _plain, count
from clude.llm.retry import Transient

FINISH = {"length": "max_tokens", "tool_calls": "tool_calls", "function_call": "tool_calls"}
PROPS_TIMEOUT_S = 3.0  # the look at a local server's /props before the first request
PROPS_MAX_BYTES = 4 << 20


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is not followed: the key would go with it to wherever it points."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def server_template(base_url: str, key: str, timeout: float) -> dict | None:
    """The chat template a server shows (llama-server: GET /props beside /v1): {"chat_template",
    "bos_token", "eos_token"}, or None when it shows none or cannot be asked (within `timeout` for the
    whole look, at most PROPS_MAX_BYTES, no redirect followed)."""
    root = base_url.rstrip("/").removesuffix("/v1")
    request = urllib.request.Request(f"{root}/props", headers={"Authorization": f"Bearer {key}"} if key else {})
    deadline = time.monotonic() + timeout
    body = b""
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=timeout) as response:
            while len(body) < PROPS_MAX_BYTES and (chunk := response.read1(1 << 16)):
                body += chunk
                if time.monotonic() > deadline:  # a body dripped slowly: given up
                    return None
        props = json.loads(body[:PROPS_MAX_BYTES])
    except (OSError, ValueError, RecursionError):  # no such page, not JSON, not reachable: the name's quirks
        return None
    if not isinstance(props, dict) or not isinstance(props.get("chat_template"), str):
        return None
    return props


class OpenAIChat(ProviderModel):
    """A chat model on an OpenAI-compatible server (llama.cpp, vLLM, Ollama, OpenAI, OpenRouter)."""

    provider = "openai"

    def __init__(self, config, *, api_key: str, **options: Any):
        super().__init__(config, api_key=api_key, **options)
        # the SDK's own retries are off: clude's policy (retry.py) decides
        self._client = openai.OpenAI(api_key=api_key, base_url=self.base_url, timeout=config.timeout,
                                     max_retries=0)
        self._official = self.base_url == DEFAULT_BASE_URL["openai"]
        self.template_note = ""  # what fitting the server's chat template found (probe.py), once known
        self._fitting = threading.Lock()
        self._fitted = bool(config.quirks) or self._official  # quirks set in clude.toml are the user's word

    def chat(self, messages: list[Message], tools: list[ToolSpec] | None = None) -> Reply:
        self._fit_template()
        return super().chat(messages, tools)

    def _fit_template(self) -> None:
        """Once, before the first request: on a server that shows its chat template, the message
        normalization is the one its template renders (probe.py), not only what the model's name says."""
        with self._fitting:
            if self._fitted:
                return
            self._fitted = True
            props = server_template(self.base_url, self._secret, min(self.config.timeout, PROPS_TIMEOUT_S))
            if props is None:
                return
            from clude.llm.probe import fit_bounded

            quirks, self.template_note = fit_bounded(props["chat_template"], self.quirks,
                                                     str(props.get("bos_token") or "<s>"),
                                                     str(props.get("eos_token") or "</s>"))
            self.quirks = quirks
            if self.config.tool_mode == "auto":
                self.native_tools = quirks.native_tools

    def _request(self, messages: list[Message], tools: list[ToolSpec] | None, max_tokens: int) -> Reply:
        options: dict[str, Any] = {"model": self.name, "messages": messages}
        # OpenAI's own newer models refuse max_tokens; compatible servers know only max_tokens
        options["max_completion_tokens" if self._official else "max_tokens"] = max_tokens
        if self.config.temperature is not None:
            options["temperature"] = self.config.temperature
        if tools:
            options["tools"] = tools
        response = self.send(openai, self._client.chat.completions.create, "chat completion",
                             **options)
        return self._reply(response)

    def _reply(self, response: Any) -> Reply:
        not_json = self.not_an_object(response, "chat completion")
        if not_json:
            raise not_json
        raw_usage = getattr(response, "usage", None)
        usage = Usage(input_tokens=count(getattr(raw_usage, "prompt_tokens", 0)),
                      output_tokens=count(getattr(raw_usage, "completion_tokens", 0)), requests=1)
        choices = getattr(response, "choices", None) or []
        message = getattr(choices[0], "message", None) if choices else None
        if message is None:
            raise Transient("empty choice list (the server sent no reply)", usage=usage, broken=True)
        calls, problems = [], []
        for index, raw in enumerate(getattr(message, "tool_calls", None) or []):
            fn = getattr(raw, "function", None)
            if fn is None:
                problems.append(f"tool call {getattr(raw, 'id', None) or f'call_{index}'}: the reply named no "
                                "function (no tool name, no arguments), so the call was dropped; "
                                "call the tool again with its name and arguments")
                continue
            arguments = getattr(fn, "arguments", None)
            if not isinstance(arguments, str):  # some servers send an object
                arguments = json.dumps(arguments if arguments is not None else {})
            calls.append(ToolCall(id=str(getattr(raw, "id", None) or f"call_{index}"),
                                  name=str(getattr(fn, "name", None) or ""), arguments=arguments))
        text = _plain(getattr(message, "content", None))
        finish = getattr(choices[0], "finish_reason", None) or ""
        stop = FINISH.get(finish, "end")
        if calls and stop == "end":
            stop = "tool_calls"
        if stop == "tool_calls" and not calls:
            stop = "end"
        refusal = getattr(message, "refusal", None)
        if isinstance(refusal, str) and refusal.strip():
            text = text or refusal
            stop = "error"
            problems.append(f"the model refused to answer: {refusal[:200]}")
        if finish == "content_filter":
            stop = "error"
            problems.append("the server's content filter stopped the reply (finish_reason content_filter); "
                            "the text may be incomplete: rephrase the request or leave out the flagged content")
        return Reply(text=text, tool_calls=calls, stop=stop, usage=usage, problems=problems)
