"""A scripted loopback server speaking the OpenAI chat-completions wire format (JSON and SSE)."""

from __future__ import annotations

import time
from typing import Any

from clude.llm.base import Reply
from clude.llm.scripted import is_error_entry
from clude.llm.stub_server import Exchange, StubServer, text_pieces

FINISH_REASONS = {"end": "stop", "tool_calls": "tool_calls", "max_tokens": "length", "error": "stop"}

# (type, code, default message) of the error bodies the real API returns, by status
OPENAI_ERRORS = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided: sk-stub****. You can "
          "find your API key at https://platform.openai.com/account/api-keys."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Country, region, or "
          "territory not supported"),
    404: ("invalid_request_error", "model_not_found", "The model `{model}` does not exist or you do not "
          "have access to it."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for {model}. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


class OpenAIStub(StubServer):
    """`with OpenAIStub(script) as stub:` then `OpenAI(base_url=stub.base_url, api_key="x")`."""

    id_prefix = "call_"

    def __init__(self, script, *, chat_template: str | None = None, **options: Any):
        super().__init__(script, **options)
        # as llama-server: its chat template shown at GET /props, and every chat request rendered through
        # it first, a request the template refuses answered 400 with the template's words
        self.chat_template = chat_template

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def error_body(self, status: int, message: str | None = None, model: str | None = None) -> dict:
        kind, code, default = OPENAI_ERRORS.get(status, ("server_error" if status >= 500 else
                                                         "invalid_request_error", None, f"HTTP {status}"))
        text = message or default.format(model=model or self.model)
        return {"error": {"message": text, "type": kind, "param": None, "code": code}}

    def handle(self, exchange: Exchange) -> None:
        path = exchange.path.rstrip("/")
        if exchange.method == "GET" and path in ("/v1/models", "/models"):
            exchange.send_json(200, {"object": "list", "data": [
                {"id": self.model, "object": "model", "created": 1700000000, "owned_by": "clude-stub"}]})
        elif exchange.method == "GET" and path.startswith(("/v1/models/", "/models/")):
            name = path.split("/models/", 1)[1]
            if name == self.model:
                exchange.send_json(200, {"id": name, "object": "model", "created": 1700000000,
                                         "owned_by": "clude-stub"})
            else:
                exchange.send_json(404, self.error_body(404, model=name))
        elif exchange.method == "GET" and path == "/props" and self.chat_template is not None:
            exchange.send_json(200, {"chat_template": self.chat_template, "bos_token": "<bos>", "eos_token": "<eos>",
                                     "build_info": "clude-stub"})
        elif exchange.method == "POST" and path in ("/v1/chat/completions", "/chat/completions"):
            self._chat(exchange)
        else:
            exchange.send_json(404, self.error_body(
                404, f"Invalid URL ({exchange.method} {exchange.path})"))

    def _chat(self, exchange: Exchange) -> None:
        body = exchange.body if isinstance(exchange.body, dict) else {}
        if not isinstance(body.get("messages"), list):
            exchange.send_json(400, self.error_body(400, "'messages' is a required property"))
            return
        model = body.get("model") or self.model
        messages, tools = body["messages"], body.get("tools")
        refused = self._refused_by_template(messages, tools)
        if refused:
            exchange.send_json(400, self.error_body(400, refused))
            return
        entry = self.scripted(messages, tools)
        if self.serve_raw(exchange, entry):
            return
        if self.serve_error(exchange, entry, model):
            return
        reply = self.script.to_reply(self.take_cut(exchange, entry), messages)
        completion_id = self.next_id("chatcmpl-stub")
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._stream(exchange, reply, completion_id, model, include_usage)
        else:
            exchange.send_json(200, self._completion(reply, completion_id, model),
                               {"x-request-id": self.next_id("req_")})

    def _refused_by_template(self, messages: list, tools: list | None) -> str | None:
        """What the chat template says of the request, when it cannot render it (None: it can)."""
        if self.chat_template is None:
            return None
        import jinja2

        from clude.llm.templates import render_chat, server_view

        try:
            render_chat(self.chat_template, server_view(messages), tools=tools, bos_token="<bos>", eos_token="<eos>")
        except (jinja2.TemplateError, TypeError, ValueError) as error:
            return str(error)
        return None

    def serve_error(self, exchange: Exchange, entry: Any, model: str) -> bool:
        """Answer a scripted error entry as the API does (its error body, x-request-id, retry-after);
        whether it was one."""
        if not is_error_entry(entry):
            return False
        status = int(entry["status"])
        headers = {"x-request-id": self.next_id("req_")}
        if entry.get("retry_after") is not None:
            headers["retry-after"] = str(entry["retry_after"])
        exchange.send_json(status, self.error_body(status, entry.get("message"), model), headers)
        return True

    @staticmethod
    def _usage(reply: Reply) -> dict:
        usage = reply.usage
        return {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
                "total_tokens": usage.input_tokens + usage.output_tokens}

    def _completion(self, reply: Reply, completion_id: str, model: str) -> dict:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None, "refusal": None}
        if reply.tool_calls:
            message["tool_calls"] = [call.as_message_part() for call in reply.tool_calls]
        return {"id": completion_id, "object": "chat.completion", "created": int(time.time()),
                "model": model, "system_fingerprint": "fp_clude_stub",
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": FINISH_REASONS.get(reply.stop, "stop")}],
                "usage": self._usage(reply)}

    def _stream(self, exchange: Exchange, reply: Reply, completion_id: str, model: str,
                include_usage: bool) -> None:
        created = int(time.time())

        def chunk(delta: dict, finish: str | None = None) -> dict:
            data = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                    "model": model, "system_fingerprint": "fp_clude_stub",
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
            if include_usage:
                data["usage"] = None
            return data

        exchange.start_sse({"x-request-id": self.next_id("req_")})
        exchange.send_event(chunk({"role": "assistant", "content": "", "refusal": None}))
        for piece in text_pieces(reply.text):
            exchange.send_event(chunk({"content": piece}))
        for index, call in enumerate(reply.tool_calls):
            exchange.send_event(chunk({"tool_calls": [{"index": index, "id": call.id, "type": "function",
                                                       "function": {"name": call.name, "arguments": ""}}]}))
            for piece in text_pieces(call.arguments):
                exchange.send_event(chunk({"tool_calls": [{"index": index,
                                                           "function": {"arguments": piece}}]}))
        exchange.send_event(chunk({}, FINISH_REASONS.get(reply.stop, "stop")))
        if include_usage:
            exchange.send_event({"id": completion_id, "object": "chat.completion.chunk", "created": created,
                                 "model": model, "system_fingerprint": "fp_clude_stub", "choices": [],
                                 "usage": self._usage(reply)})
        exchange.send_event("[DONE]")
