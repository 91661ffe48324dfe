"""A scripted loopback server speaking the Gemini API wire format (generativelanguage v1beta: JSON and
SSE): what the Gemini CLI talks to when GOOGLE_GEMINI_BASE_URL points at it."""

from __future__ import annotations

import json
import re
from typing import Any

from clude.llm.base import Message, Reply, ToolSpec
from clude.llm.scripted import estimate_tokens, is_error_entry, messages_text
from clude.llm.stub_server import Exchange, StubServer, text_pieces

FINISH_REASONS = {"end": "STOP", "tool_calls": "STOP", "max_tokens": "MAX_TOKENS", "error": "OTHER"}

# the google.rpc status and default message of the real API's error bodies, by HTTP status
GEMINI_ERRORS = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers without established "
          "identity). Please use API Key or other form of API consumer identity to call this API."),
    404: ("NOT_FOUND", "models/{model} is not found for API version v1beta, or is not supported for "
          "generateContent."),
    429: ("RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and billing "
          "details."),
    500: ("INTERNAL", "An internal error has occurred. Please retry or report in "
          "https://developers.generativeai.google/guide/troubleshooting"),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
}

# /v1beta/models/{model}:{method}, the model name holding no slash or colon
_MODEL_CALL = re.compile(r"^/(v1beta|v1alpha|v1)/models/([^/:]+):([A-Za-z]+)$")


def _parts(content: Any) -> list[dict]:
    """The parts of a Content (a dict with parts), a list of parts, or a bare string."""
    if isinstance(content, str):
        return [{"text": content}]
    if isinstance(content, dict):
        content = content.get("parts")
    return [part for part in content or [] if isinstance(part, dict)]


def _response_text(response: Any) -> str:
    """A functionResponse's response as the tool message's text: its output or error, else its JSON."""
    if isinstance(response, dict):
        for key in ("output", "error", "content"):
            if isinstance(response.get(key), str):
                return response[key]
    return json.dumps(response)


def to_openai_messages(body: dict) -> list[Message]:
    """A generateContent request as OpenAI-style messages for the script: systemInstruction as a system
    message, "model" turns as assistant messages with tool_calls (functionCall parts), functionResponse
    parts as tool messages (tool_call_id: the call's id, else its name)."""
    out: list[Message] = []
    system = "\n".join(str(part.get("text", "")) for part in _parts(body.get("systemInstruction"))
                       if "text" in part)
    if system:
        out.append({"role": "system", "content": system})
    for content in body.get("contents") or []:
        if not isinstance(content, dict):
            continue
        texts: list[str] = []
        calls: list[dict] = []
        for part in _parts(content):
            if part.get("thought"):
                continue  # the model's thinking is not conversation
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(part.get("functionCall"), dict):
                call = part["functionCall"]
                calls.append({"id": call.get("id") or call.get("name", ""), "type": "function", "function": {
                    "name": call.get("name", ""), "arguments": json.dumps(call.get("args") or {})}})
            elif isinstance(part.get("functionResponse"), dict):
                result = part["functionResponse"]
                out.append({"role": "tool", "tool_call_id": result.get("id") or result.get("name", ""),
                            "name": result.get("name", ""), "content": _response_text(result.get("response"))})
            else:
                texts.append(f"[{next(iter(part), 'part')}]")
        if content.get("role") == "model":
            if texts or calls:
                message: Message = {"role": "assistant", "content": "".join(texts) or None}
                if calls:
                    message["tool_calls"] = calls
                out.append(message)
        elif texts:
            out.append({"role": "user", "content": "\n".join(texts)})
    return out


def to_openai_tools(tools: Any) -> list[ToolSpec] | None:
    """functionDeclarations as OpenAI-style function tools (parameters, or parametersJsonSchema)."""
    out: list[ToolSpec] = []
    for tool in tools or []:
        for declaration in (tool.get("functionDeclarations") or []) if isinstance(tool, dict) else []:
            schema = declaration.get("parametersJsonSchema") or declaration.get("parameters") or {}
            out.append({"type": "function", "function": {"name": declaration.get("name", ""),
                                                         "description": declaration.get("description", ""),
                                                         "parameters": schema}})
    return out or None


def _args(arguments: str) -> dict:
    """A tool call's arguments (JSON text) as the functionCall's args object."""
    try:
        value = json.loads(arguments) if arguments else {}
    except ValueError:
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"value": value}


class GeminiStub(StubServer):
    """`with GeminiStub(script) as stub:` then GOOGLE_GEMINI_BASE_URL=stub.base_url (the SDK adds
    /v1beta/models/...). The key (x-goog-api-key) is recorded, never checked."""

    id_prefix = "call_"

    def error_body(self, status: int, message: str | None = None, model: str | None = None) -> dict:
        kind, default = GEMINI_ERRORS.get(status, ("INTERNAL" if status >= 500 else "INVALID_ARGUMENT",
                                                   f"HTTP {status}"))
        return {"error": {"code": status, "message": message or default.format(model=model or self.model),
                          "status": kind}}

    def handle(self, exchange: Exchange) -> None:
        path = exchange.path.rstrip("/")
        call = _MODEL_CALL.match(path)
        if exchange.method == "POST" and call and call.group(3) in ("generateContent",
                                                                      "streamGenerateContent"):
            self._generate(exchange, call.group(2), stream=call.group(3) == "streamGenerateContent")
        elif exchange.method == "POST" and call and call.group(3) == "countTokens":
            body = exchange.body if isinstance(exchange.body, dict) else {}
            request = body.get("generateContentRequest") or body
            exchange.send_json(200, {"totalTokens": estimate_tokens(messages_text(
                to_openai_messages(request)))})
        elif exchange.method == "GET" and re.fullmatch(r"/v1(beta|alpha)?/models", path):
            exchange.send_json(200, {"models": [self._model_info(self.model)]})
        elif exchange.method == "GET" and re.fullmatch(r"/v1(beta|alpha)?/models/[^/:]+", path):
            exchange.send_json(200, self._model_info(path.rsplit("/", 1)[1]))
        else:
            exchange.send_json(404, self.error_body(404, f"Not found: {exchange.method} {exchange.path}"))

    @staticmethod
    def _model_info(model: str) -> dict:
        return {"name": f"models/{model}", "version": "001", "displayName": model,
                "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
                "supportedGenerationMethods": ["generateContent", "countTokens"]}

    def _generate(self, exchange: Exchange, model: str, *, stream: bool) -> None:
        body = exchange.body if isinstance(exchange.body, dict) else {}
        if not isinstance(body.get("contents"), list):
            exchange.send_json(400, self.error_body(400, "* GenerateContentRequest.contents: contents is "
                                                         "not specified"))
            return
        messages = to_openai_messages(body)
        entry = self.scripted(messages, to_openai_tools(body.get("tools")))
        if self.serve_raw(exchange, entry):
            return
        if is_error_entry(entry):
            self._send_error(exchange, entry, model)
            return
        reply = self.script.to_reply(self.take_cut(exchange, entry), messages)
        response_id = self.next_id("resp_stub")
        if stream:
            self._stream(exchange, reply, response_id, model)
        else:
            exchange.send_json(200, self._response(self._reply_parts(reply), reply, response_id, model,
                                                   finish=True))

    def _send_error(self, exchange: Exchange, entry: dict, model: str) -> None:
        """A scripted HTTP error, its retry_after as the google.rpc.RetryInfo the real API sends."""
        status = int(entry["status"])
        error = self.error_body(status, entry.get("message"), model)
        if entry.get("retry_after") is not None:
            error["error"]["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                          "retryDelay": f"{int(entry['retry_after'])}s"}]
        exchange.send_json(status, error)

    @staticmethod
    def _usage(reply: Reply) -> dict:
        usage = reply.usage
        return {"promptTokenCount": usage.input_tokens, "candidatesTokenCount": usage.output_tokens,
                "totalTokenCount": usage.input_tokens + usage.output_tokens}

    @staticmethod
    def _reply_parts(reply: Reply) -> list[dict]:
        parts: list[dict] = [{"text": reply.text}] if reply.text else []
        for call in reply.tool_calls:
            parts.append({"functionCall": {"id": call.id, "name": call.name, "args": _args(call.arguments)}})
        return parts

    def _response(self, parts: list[dict], reply: Reply, response_id: str, model: str, *,
                  finish: bool) -> dict:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        data: dict[str, Any] = {"candidates": [candidate], "modelVersion": model, "responseId": response_id}
        if finish:
            candidate["finishReason"] = FINISH_REASONS.get(reply.stop, "STOP")
            data["usageMetadata"] = self._usage(reply)
        return data

    def _stream(self, exchange: Exchange, reply: Reply, response_id: str, model: str) -> None:
        """Text in pieces, then one chunk with every functionCall, the finishReason and the usage."""
        exchange.start_sse()
        pieces = text_pieces(reply.text)
        calls = [part for part in self._reply_parts(reply) if "functionCall" in part]
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1 and not calls
            exchange.send_event(self._response([{"text": piece}], reply, response_id, model, finish=last))
        if calls or not pieces:
            exchange.send_event(self._response(calls, reply, response_id, model, finish=True))
