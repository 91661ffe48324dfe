"""A scripted loopback server speaking the OpenAI Responses wire format (POST /v1/responses, JSON or
SSE events), the API the Codex CLI uses; chat completions and /v1/models are served as OpenAIStub does.

Scripts see the request as every stub shows it: OpenAI-style messages (`instructions` and developer
messages as system, function_call items as assistant tool_calls, *_output items as tool messages) and
function tools. A freeform ("custom") tool such as codex's apply_patch is shown as a function taking one
string, {"input": ...}, its grammar under "format"; a scripted call of it is sent as a custom_tool_call
whose input is that string."""

from __future__ import annotations

import json
import time
from typing import Any

from clude.llm.base import Message, Reply, ToolCall, ToolSpec
from clude.llm.stub_openai import OpenAIStub
from clude.llm.stub_server import Exchange, content_text, text_pieces

# item types of the request's input that hold a tool's result, and the call types they answer
_OUTPUTS = ("function_call_output", "custom_tool_call_output", "local_shell_call_output")
_CALLS = ("function_call", "custom_tool_call", "local_shell_call")
_TEXT_PARTS = ("input_text", "output_text", "text", "summary_text")


def _call_arguments(item: dict) -> str:
    if item.get("type") == "custom_tool_call":
        return json.dumps({"input": item.get("input", "")})
    if item.get("type") == "local_shell_call":
        return json.dumps(item.get("action") or {})
    return str(item.get("arguments") or "")


def to_openai_messages(body: dict) -> list[Message]:
    """The request's instructions and input items as OpenAI-style message dicts (what scripts see)."""
    out: list[Message] = []
    if body.get("instructions"):
        out.append({"role": "system", "content": str(body["instructions"])})
    items = body.get("input")
    if isinstance(items, str):
        items = [{"type": "message", "role": "user", "content": items}]
    for item in items or []:
        if not isinstance(item, dict):
            continue
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            role = "system" if item.get("role") == "developer" else item.get("role")
            out.append({"role": role, "content": content_text(item.get("content"), _TEXT_PARTS)})
        elif kind in _CALLS:
            call = {"id": item.get("call_id") or item.get("id"), "type": "function", "function": {
                "name": item.get("name") or "local_shell", "arguments": _call_arguments(item)}}
            if out and out[-1]["role"] == "assistant":  # the calls of one turn: one assistant message
                out[-1].setdefault("tool_calls", []).append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind in _OUTPUTS:
            output = item.get("output")
            if isinstance(output, dict):  # {"content": ..., "success": ...} in some versions
                output = output.get("content", json.dumps(output))
            out.append({"role": "tool", "tool_call_id": item.get("call_id"),
                        "content": content_text(output, _TEXT_PARTS)})
    return out


def request_tools(body: dict) -> list[dict]:
    """Every tool the request offers, namespaces flattened (each tool then names its "namespace"): the
    `tools` field, and the tools of `additional_tools` input items (where codex 0.171 sends them)."""
    found: list[dict] = []

    def add(tools: Any, namespace: str | None) -> None:
        for tool in tools if isinstance(tools, list) else []:
            if isinstance(tool, dict) and tool.get("type") == "namespace":
                add(tool.get("tools"), tool.get("name"))
            elif isinstance(tool, dict):
                found.append({**tool, "namespace": namespace} if namespace else tool)

    add(body.get("tools"), None)
    for item in body.get("input") if isinstance(body.get("input"), list) else []:
        if isinstance(item, dict) and item.get("type") == "additional_tools":
            add(item.get("tools"), None)
    return found


def to_openai_tools(tools: list[dict] | None) -> list[ToolSpec] | None:
    """Tools (request_tools) as function tools: a function as it is, a custom (freeform) tool as a
    function of one string `input` (its grammar kept under "format"), any other by its type."""
    if not tools:
        return None
    out: list[ToolSpec] = []
    for tool in tools:
        kind = tool.get("type")
        function: dict[str, Any] = {"name": tool.get("name") or kind, "description": tool.get("description", "")}
        if tool.get("namespace"):
            function["namespace"] = tool["namespace"]
        if kind == "function":
            function["parameters"] = tool.get("parameters") or {}
        elif kind == "custom":
            function["parameters"] = {"type": "object", "properties": {"input": {"type": "string"}},
                                      "required": ["input"]}
            function["format"] = tool.get("format")
        else:
            function["parameters"] = {}
        out.append({"type": "function", "function": function})
    return out


def _custom_input(call: ToolCall) -> str:
    """The freeform input of a scripted call of a custom tool: its "input" argument, or its text."""
    try:
        arguments = json.loads(call.arguments)
    except ValueError:
        return call.arguments
    if isinstance(arguments, dict) and isinstance(arguments.get("input"), str):
        return arguments["input"]
    return arguments if isinstance(arguments, str) else call.arguments


class ResponsesStub(OpenAIStub):
    """`with ResponsesStub(script) as stub:` then `OpenAI(base_url=stub.base_url).responses.create(...)`,
    or codex with OPENAI_BASE_URL=stub.base_url through clude's codex backend (a provider of its own in
    the run's CODEX_HOME), or with `openai_base_url = stub.base_url` in its config.toml."""

    def handle(self, exchange: Exchange) -> None:
        path = exchange.path.rstrip("/")
        if exchange.method == "POST" and path in ("/v1/responses", "/responses"):
            self._responses(exchange)
        elif exchange.method == "GET" and path in ("/v1/responses", "/responses"):
            # the Responses WebSocket codex tries first: 426 tells it to use HTTP (a 404 or 400 would
            # end its turn; a 5xx would be retried for seconds before it falls back)
            exchange.send_json(426, self.error_body(426, "this server speaks the Responses API over HTTP "
                                                         "only: POST /v1/responses"), {"Connection": "close"})
        else:
            super().handle(exchange)

    def _responses(self, exchange: Exchange) -> None:
        body = exchange.body if isinstance(exchange.body, dict) else {}
        if not isinstance(body.get("input"), (list, str)):
            exchange.send_json(400, self.error_body(400, "Missing required parameter: 'input'."))
            return
        model = body.get("model") or self.model
        messages, tools = to_openai_messages(body), request_tools(body)
        entry = self.scripted(messages, to_openai_tools(tools))
        if self.serve_raw(exchange, entry) or self.serve_error(exchange, entry, model):
            return
        reply = self.script.to_reply(self.take_cut(exchange, entry), messages)
        custom = {tool.get("name") for tool in tools if tool.get("type") == "custom"}
        response = _Response(self.next_id("resp_stub"), model, reply, custom, self.next_id)
        if body.get("stream"):
            exchange.start_sse({"x-request-id": self.next_id("req_")})
            for event in response.events():
                exchange.send_event(event, event=event["type"])
        else:
            exchange.send_json(200, response.body("completed" if reply.stop != "max_tokens" else "incomplete",
                                                  response.items()), {"x-request-id": self.next_id("req_")})


class _Response:
    """One scripted reply as a Responses API response: its output items, and its event stream."""

    def __init__(self, response_id: str, model: str, reply: Reply, custom: set, next_id):
        self.id, self.model, self.reply, self.custom = response_id, model, reply, custom
        self.created = int(time.time())
        self.item_ids = [next_id("msg_stub")] if reply.text else []
        self.item_ids += [next_id("ctc_stub" if call.name in custom else "fc_stub") for call in reply.tool_calls]

    def usage(self) -> dict:
        usage = self.reply.usage
        return {"input_tokens": usage.input_tokens, "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": usage.output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": usage.input_tokens + usage.output_tokens}

    def body(self, status: str, output: list[dict]) -> dict:
        done = status != "in_progress"
        return {"id": self.id, "object": "response", "created_at": self.created, "status": status,
                "error": None, "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete"
                else None, "model": self.model, "output": output, "parallel_tool_calls": True,
                "tool_choice": "auto", "usage": self.usage() if done else None}

    def items(self, stage: str = "done") -> list[dict]:
        """The output items, whole ("done") or as they start ("added": empty content and arguments)."""
        ids = iter(self.item_ids)
        status = "completed" if stage == "done" else "in_progress"
        out = []
        if self.reply.text:
            content = [{"type": "output_text", "text": self.reply.text, "annotations": []}] if stage == "done" else []
            out.append({"type": "message", "id": next(ids), "status": status, "role": "assistant",
                        "content": content})
        for call in self.reply.tool_calls:
            if call.name in self.custom:
                out.append({"type": "custom_tool_call", "id": next(ids), "status": status, "call_id": call.id,
                            "name": call.name, "input": _custom_input(call) if stage == "done" else ""})
            else:
                out.append({"type": "function_call", "id": next(ids), "status": status, "call_id": call.id,
                            "name": call.name, "arguments": call.arguments if stage == "done" else ""})
        return out

    def events(self) -> list[dict]:
        """The stream: response.created and .in_progress, each item added, its deltas and done events,
        then response.completed (response.incomplete when the reply stopped at max_tokens)."""
        out: list[dict] = []

        def send(kind: str, **data: Any) -> None:
            out.append({"type": kind, "sequence_number": len(out), **data})

        send("response.created", response=self.body("in_progress", []))
        send("response.in_progress", response=self.body("in_progress", []))
        for index, (added, done) in enumerate(zip(self.items("added"), self.items())):
            place = {"item_id": done["id"], "output_index": index}
            send("response.output_item.added", output_index=index, item=added)
            if done["type"] == "message":
                part = done["content"][0]
                send("response.content_part.added", **place, content_index=0,
                     part={"type": "output_text", "text": "", "annotations": []})
                for piece in text_pieces(part["text"]):
                    send("response.output_text.delta", **place, content_index=0, delta=piece, logprobs=[])
                send("response.output_text.done", **place, content_index=0, text=part["text"], logprobs=[])
                send("response.content_part.done", **place, content_index=0, part=part)
            elif done["type"] == "custom_tool_call":
                for piece in text_pieces(done["input"]):
                    send("response.custom_tool_call_input.delta", **place, delta=piece)
                send("response.custom_tool_call_input.done", **place, input=done["input"])
            else:
                for piece in text_pieces(done["arguments"]):
                    send("response.function_call_arguments.delta", **place, delta=piece)
                send("response.function_call_arguments.done", **place, arguments=done["arguments"])
            send("response.output_item.done", output_index=index, item=done)
        status = "incomplete" if self.reply.stop == "max_tokens" else "completed"
        send(f"response.{status}", response=self.body(status, self.items()))
        return out
