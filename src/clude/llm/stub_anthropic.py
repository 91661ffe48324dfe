"""A scripted loopback server speaking the Anthropic messages wire format (JSON and SSE events)."""

from __future__ import annotations

import json
from typing import Any

from clude.llm.base import Message, Reply, ToolSpec
from clude.llm.scripted import estimate_tokens, is_error_entry, messages_text
from clude.llm.stub_server import Exchange, StubServer, content_text, text_pieces

STOP_REASONS = {"end": "end_turn", "tool_calls": "tool_use", "max_tokens": "max_tokens", "error": "end_turn"}

# error type and default message of the real API's error bodies, by status
ANTHROPIC_ERRORS = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "model: {model}"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


def to_openai_messages(body: dict) -> list[Message]:
    """The request's system field and messages as OpenAI-style message dicts (what scripts see)."""
    out: list[Message] = []
    system = content_text(body.get("system"))
    if system:
        out.append({"role": "system", "content": system})
    for message in body.get("messages") or []:
        role, content = message.get("role"), message.get("content")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
            continue
        texts: list[str] = []
        calls: list[dict] = []
        for block in content or []:
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "tool_result":
                text = content_text(block.get("content"))
                tool_message = {"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text}
                if block.get("is_error"):
                    tool_message["is_error"] = True
                out.append(tool_message)
            elif kind == "tool_use":
                calls.append({"id": block.get("id"), "type": "function", "function": {
                    "name": block.get("name"), "arguments": json.dumps(block.get("input") or {})}})
            elif kind == "text":
                texts.append(str(block.get("text", "")))
            elif kind not in ("thinking", "redacted_thinking"):
                texts.append(f"[{kind}]")
        if texts or calls:
            converted: Message = {"role": role, "content": "\n".join(texts) if texts else None}
            if calls:
                converted["tool_calls"] = calls
            out.append(converted)
    return out


def to_openai_tools(tools: list[dict] | None) -> list[ToolSpec] | None:
    if not tools:
        return None
    return [{"type": "function", "function": {"name": tool.get("name"), "description":
            tool.get("description", ""), "parameters": tool.get("input_schema", {})}} for tool in tools]


def _tool_input(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except ValueError:
        return {"_unparsed": arguments}


class AnthropicStub(StubServer):
    """`with AnthropicStub(script) as stub:` then `Anthropic(base_url=stub.base_url, api_key="x")`
    (or ANTHROPIC_BASE_URL=stub.base_url for the claude CLI)."""

    id_prefix = "toolu_stub_"

    def error_body(self, status: int, message: str | None = None, model: str | None = None) -> dict:
        kind, default = ANTHROPIC_ERRORS.get(status, ("api_error" if status >= 500 else
                                                      "invalid_request_error", f"HTTP {status}"))
        return {"type": "error", "error": {"type": kind, "message": message or default.format(
            model=model or self.model)}, "request_id": self.next_id("req_stub")}

    def handle(self, exchange: Exchange) -> None:
        path = exchange.path.rstrip("/")
        if exchange.method == "POST" and path == "/v1/messages":
            self._messages(exchange)
        elif exchange.method == "POST" and path == "/v1/messages/count_tokens":
            body = exchange.body if isinstance(exchange.body, dict) else {}
            exchange.send_json(200, {"input_tokens": estimate_tokens(messages_text(
                to_openai_messages(body)))})
        elif exchange.method in ("GET", "HEAD") and path == "/api/hello":  # the CLI's connectivity probe
            exchange.send_json(200, {"status": "ok"})
        elif exchange.method == "GET" and path == "/v1/models":
            exchange.send_json(200, {"data": [self._model_info(self.model)], "has_more": False,
                                     "first_id": self.model, "last_id": self.model})
        elif exchange.method == "GET" and path.startswith("/v1/models/"):
            exchange.send_json(200, self._model_info(path.rsplit("/", 1)[1]))
        else:
            exchange.send_json(404, self.error_body(404, f"Not found: {exchange.method} {exchange.path}"))

    @staticmethod
    def _model_info(model: str) -> dict:
        return {"type": "model", "id": model, "display_name": model, "created_at": "2025-01-01T00:00:00Z"}

    def _messages(self, exchange: Exchange) -> None:
        body = exchange.body if isinstance(exchange.body, dict) else {}
        if not isinstance(body.get("messages"), list):
            exchange.send_json(400, self.error_body(400, "messages: Field required"))
            return
        model = body.get("model") or self.model
        messages = to_openai_messages(body)
        entry = self.scripted(messages, to_openai_tools(body.get("tools")))
        if self.serve_raw(exchange, entry):
            return
        if is_error_entry(entry):
            status = int(entry["status"])
            headers = {"request-id": self.next_id("req_stub"), "x-should-retry": "true" if status in
                       (408, 409, 429) or status >= 500 else "false"}
            if entry.get("retry_after") is not None:
                headers["retry-after"] = str(entry["retry_after"])
            exchange.send_json(status, self.error_body(status, entry.get("message"), model), headers)
            return
        reply = self.script.to_reply(self.take_cut(exchange, entry), messages)
        message_id = self.next_id("msg_stub")
        if body.get("stream"):
            self._stream(exchange, reply, message_id, model)
        else:
            exchange.send_json(200, self._message(reply, message_id, model),
                               {"request-id": self.next_id("req_stub")})

    @staticmethod
    def _usage(input_tokens: int, output_tokens: int) -> dict:
        return {"input_tokens": input_tokens, "output_tokens": output_tokens,
                "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}

    def _message(self, reply: Reply, message_id: str, model: str) -> dict:
        content: list[dict] = []
        if reply.text:
            content.append({"type": "text", "text": reply.text})
        for call in reply.tool_calls:
            content.append({"type": "tool_use", "id": call.id, "name": call.name,
                            "input": _tool_input(call.arguments)})
        return {"id": message_id, "type": "message", "role": "assistant", "model": model,
                "content": content, "stop_reason": STOP_REASONS.get(reply.stop, "end_turn"),
                "stop_sequence": None,
                "usage": self._usage(reply.usage.input_tokens, reply.usage.output_tokens)}

    def _stream(self, exchange: Exchange, reply: Reply, message_id: str, model: str) -> None:
        def send(kind: str, **data: Any) -> None:
            exchange.send_event({"type": kind, **data}, event=kind)

        exchange.start_sse({"request-id": self.next_id("req_stub")})
        send("message_start", message={
            "id": message_id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": self._usage(reply.usage.input_tokens, 1)})
        index = 0
        if reply.text:
            send("content_block_start", index=index, content_block={"type": "text", "text": ""})
            send("ping")
            for piece in text_pieces(reply.text):
                send("content_block_delta", index=index, delta={"type": "text_delta", "text": piece})
            send("content_block_stop", index=index)
            index += 1
        for call in reply.tool_calls:
            send("content_block_start", index=index, content_block={
                "type": "tool_use", "id": call.id, "name": call.name, "input": {}})
            for piece in text_pieces(call.arguments) or [""]:
                send("content_block_delta", index=index,
                     delta={"type": "input_json_delta", "partial_json": piece})
            send("content_block_stop", index=index)
            index += 1
        send("message_delta", delta={"stop_reason": STOP_REASONS.get(reply.stop, "end_turn"),
                                     "stop_sequence": None},
             usage={"output_tokens": reply.usage.output_tokens})
        send("message_stop")
