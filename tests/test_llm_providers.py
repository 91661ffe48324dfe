"""The openai and anthropic providers through the real SDKs against the loopback stubs: replies, tools,
usage, normalization."""

from __future__ import annotations

import json
import re

import pytest

from clude.config.settings import Price, QuirksEntry
from clude.llm.stubs import OpenAIStub
from llm_helpers import KEY, READ, STUBS, USER, model_for, sent_key


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_text_reply_with_usage_and_cost(provider):
    script = [{"text": "Done.", "usage": {"input_tokens": 1000, "output_tokens": 200}},
              {"text": "Again.", "usage": {"input_tokens": 10, "output_tokens": 2}}]
    with STUBS[provider](script) as stub:
        model, _ = model_for(stub, provider, prices={"stub-*": Price(input=3.0, output=15.0)}, temperature=0.3)
        reply = model.chat(USER)
        assert (reply.text, reply.tool_calls, reply.stop, reply.problems) == ("Done.", [], "end", [])
        assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.requests) == (1000, 200, 1)
        assert reply.usage.cost_usd == pytest.approx((1000 * 3 + 200 * 15) / 1e6)
        model.chat(USER)
        assert (model.usage.input_tokens, model.usage.output_tokens, model.usage.requests) == (1010, 202, 2)
        assert model.usage.cost_usd == pytest.approx((1010 * 3 + 202 * 15) / 1e6)
        assert stub.chats[0]["messages"] == USER and sent_key(stub) == KEY
        body = next(r["body"] for r in stub.requests if r["method"] == "POST")
        assert body["model"] == "stub-model" and body["temperature"] == 0.3
        looks = [r["path"] for r in stub.requests if r["method"] == "GET"]  # an OpenAI-compatible server's
        assert looks == (["/props"] if provider == "openai" else [])  # template is looked for once
        if provider == "anthropic":
            assert body["system"] == "You fix bugs." and body["max_tokens"] == 4096
        else:
            assert body["max_tokens"] == 4096


def test_unknown_model_reports_tokens_without_cost():
    with OpenAIStub([{"text": "x", "usage": {"input_tokens": 5, "output_tokens": 1}}]) as stub:
        model, _ = model_for(stub, "openai", name="nobody-knows-this-model")
        reply = model.chat(USER)
        assert reply.usage.cost_usd is None and reply.usage.input_tokens == 5


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_native_tool_calls_round_trip(provider):
    def script(messages, tools):
        if messages[-1]["role"] == "tool":
            return f"{messages[-1]['tool_call_id']} said {messages[-1]['content']}"
        return {"text": "Reading.", "tool_calls": [{"name": "read_file", "arguments": {"path": "calc.py"}}]}

    with STUBS[provider](script) as stub:
        model, _ = model_for(stub, provider)
        reply = model.chat(USER, [READ])
        assert reply.stop == "tool_calls" and reply.text == "Reading." and reply.problems == []
        call = reply.tool_calls[0]
        assert (call.name, json.loads(call.arguments)) == ("read_file", {"path": "calc.py"})
        assert stub.chats[0]["tools"] == [READ]
        conversation = USER + [reply.as_message(), {"role": "tool", "tool_call_id": call.id, "content": None}]
        final = model.chat(conversation, [READ])
        assert final.text == f"{call.id} said (no output)" and final.stop == "end"
        seen = stub.chats[-1]["messages"]
        assert seen[2]["tool_calls"][0]["id"] == call.id
        assert seen[3] == {"role": "tool", "tool_call_id": call.id, "content": "(no output)"}
        if provider == "anthropic":
            blocks = stub.requests[-1]["body"]["messages"]
            assert [b["type"] for b in blocks[1]["content"]] == ["text", "tool_use"]
            assert blocks[2]["content"][0]["type"] == "tool_result"


def test_text_protocol_tool_calls_and_history():
    def script(messages, tools):
        assert tools is None  # text mode sends no native tools
        if "<tool_result" in messages[-1]["content"]:
            return "The file defines add."
        return 'Let me read it.\n\n```tool_call\n{"name": "read_file", "arguments": {"path": "calc.py"}}\n```'

    with OpenAIStub(script) as stub:
        model, _ = model_for(stub, "openai", tool_mode="text")
        reply = model.chat(USER, [READ])
        assert reply.stop == "tool_calls" and reply.text == "Let me read it." and reply.problems == []
        assert [(c.name, json.loads(c.arguments)) for c in reply.tool_calls] == [("read_file", {"path": "calc.py"})]
        system = stub.chats[0]["messages"][0]
        assert system["role"] == "system" and system["content"].startswith("You fix bugs.")
        assert "read_file" in system["content"] and "tool_call" in system["content"]
        call = reply.tool_calls[0]
        conversation = USER + [reply.as_message(), {"role": "tool", "tool_call_id": call.id, "content": "def add"}]
        assert model.chat(conversation, [READ]).text == "The file defines add."
        seen = stub.chats[-1]["messages"]
        assert [m["role"] for m in seen] == ["system", "user", "assistant", "user"]
        assert "```tool_call" in seen[2]["content"] and "def add" in seen[3]["content"]
        assert all("tool_calls" not in m for m in seen)


def test_quirks_choose_the_text_protocol_and_config_overrides_them():
    with OpenAIStub(['```tool_call\n{"name": "read_file", "arguments": {}}\n```', "native"]) as stub:
        model, _ = model_for(stub, "openai", name="phi-3.5-mini")  # no native tools in its quirks
        reply = model.chat(USER, [READ])
        assert reply.tool_calls == [] and reply.problems and "path" in reply.problems[0]
        assert reply.usage.broken_replies == 1
        forced, _ = model_for(stub, "openai", name="phi-3.5-mini",
                              quirks=[QuirksEntry(patterns=["phi-*"], native_tools=True)])
        forced.chat(USER, [READ])
        assert stub.chats[-1]["tools"] == [READ]


def test_strict_model_gets_normalized_messages():
    conversation = [
        {"role": "user", "content": "Fix it."}, {"role": "user", "content": "Quickly."},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_abc_long_id", "type": "function",
             "function": {"name": "read_file", "arguments": '{"path": "a.py"}'}}]},
        {"role": "tool", "tool_call_id": "call_abc_long_id", "content": "x = 1"},
        {"role": "system", "content": "Be brief."}]
    with OpenAIStub(["ok"]) as stub:
        model, _ = model_for(stub, "openai", name="mistral-small-3.1")
        model.chat(conversation, [READ])
        seen = stub.chats[0]["messages"]
        assert seen[0] == {"role": "system", "content": "Be brief."}
        assert seen[1] == {"role": "user", "content": "Fix it.\n\nQuickly."}
        call_id = seen[2]["tool_calls"][0]["id"]
        assert re.fullmatch(r"[A-Za-z0-9]{9}", call_id) and seen[3]["tool_call_id"] == call_id
        text_roles = [m["role"] for m in seen[1:] if m["role"] != "tool" and not m.get("tool_calls")]
        assert all(a != b for a, b in zip(text_roles, text_roles[1:]))
    assert conversation[2]["tool_calls"][0]["id"] == "call_abc_long_id"  # input untouched
