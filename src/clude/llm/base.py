"""The chat model interface: OpenAI-style message dicts (+ tool definitions) in, a Reply out."""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

# A message is an OpenAI chat-completions message dict:
#   {"role": "system" | "user" | "assistant" | "tool", "content": str | None,
#    "tool_calls": [{"id", "type": "function", "function": {"name", "arguments": JSON text}}],
#    "tool_call_id": str (role "tool")}
Message = dict[str, Any]
# A tool definition is an OpenAI "function" tool: {"type": "function", "function": {"name",
# "description", "parameters": JSON schema}}.
ToolSpec = dict[str, Any]

StopReason = Literal["end", "tool_calls", "max_tokens", "error"]


class _Model(BaseModel):
    model_config = ConfigDict(defer_build=True)


class ToolCall(_Model):
    id: str
    name: str
    arguments: str  # JSON text as the model wrote it; parsing (and its errors) is the caller's

    def as_message_part(self) -> dict:
        return {"id": self.id, "type": "function",
                "function": {"name": self.name, "arguments": self.arguments}}


class Usage(_Model):
    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0
    cost_usd: float | None = None  # None when the model has no price in the table
    retries: int = 0  # requests repeated after a 429, 5xx, timeout or broken reply
    broken_replies: int = 0  # replies that were broken: cut off, no choices, bad tool calls, max_tokens

    def __add__(self, other: "Usage") -> "Usage":
        cost = None if self.cost_usd is None and other.cost_usd is None else \
            (self.cost_usd or 0.0) + (other.cost_usd or 0.0)
        return Usage(input_tokens=self.input_tokens + other.input_tokens,
                     output_tokens=self.output_tokens + other.output_tokens,
                     requests=self.requests + other.requests, cost_usd=cost,
                     retries=self.retries + other.retries,
                     broken_replies=self.broken_replies + other.broken_replies)


class Reply(_Model):
    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    stop: StopReason = "end"
    usage: Usage = Field(default_factory=Usage)
    # what was wrong with the reply (bad tool-call JSON, unknown tool, cut off at max_tokens), to
    # be sent back to the model; native calls concerned stay in tool_calls, text-protocol blocks
    # that could not be read are left out of it
    problems: list[str] = Field(default_factory=list)
    # how its tool calls were read: "native" (the API's own calls) or "text" (clude's fenced blocks,
    # for models without tool support): what an answer to its problems must show it
    protocol: Literal["native", "text"] = "native"

    def as_message(self) -> Message:
        """The assistant message to append to the conversation."""
        message: Message = {"role": "assistant", "content": self.text or None}
        if self.tool_calls:
            message["tool_calls"] = [call.as_message_part() for call in self.tool_calls]
        return message


class ChatModel(Protocol):
    """What every provider, the scripted model included, offers."""

    name: str

    def chat(self, messages: list[Message], tools: list[ToolSpec] | None = None) -> Reply: ...


class ModelError(Exception):
    """A model request that cannot succeed as configured (bad key, unknown model, wrong base_url).
    The message names provider, model and base_url, never the key."""


class ModelUnavailable(ModelError):
    """The server could not be reached or kept failing after the bounded retries."""
