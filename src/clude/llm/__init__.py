"""Chat models: one interface over OpenAI-compatible servers and Anthropic, message normalization for
strict chat templates, the text tool protocol, usage and cost, and offline doubles (scripted model,
loopback stub servers). Names are imported on first use."""

from clude.lazy import lazy_attributes

_WHERE = {
    "ChatModel": "base", "Reply": "base", "ToolCall": "base", "Usage": "base",
    "ModelError": "base", "ModelUnavailable": "base",
    "normalize_messages": "messages", "normalize_for": "messages", "quirks_for": "messages",
    "make_model": "providers", "cost_of": "prices",
    "tools_prompt": "text_tools", "parse_tool_calls": "text_tools",
    "problems_message": "text_tools",
    "ScriptedModel": "scripted", "OpenAIStub": "stub_openai", "AnthropicStub": "stub_anthropic",
    "GeminiStub": "stub_gemini", "ResponsesStub": "stub_responses",
}
__all__ = list(_WHERE)
__getattr__ = lazy_attributes(__name__, _WHERE)
