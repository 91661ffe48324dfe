"""The openai and anthropic providers, through the real SDKs against the loopback stub servers."""

from __future__ import annotations

import json
import re
import time
from email.utils import formatdate

import pytest

from clude.config.settings import ModelConfig, Price, QuirksEntry
from clude.llm.base import ModelError, ModelUnavailable
from clude.llm.providers import make_model
from clude.llm.retry import backoff_delay, parse_retry_after
from clude.llm.stubs import AnthropicStub, OpenAIStub

KEY = "sk-secret-value-1234567890"
USER = [{"role": "system", "content": "You fix bugs."}, {"role": "user", "content": "Fix calc.py."}]
READ = {"type": "function", "function": {"name": "read_file", "description": "Read a file.",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}
STUBS = {"openai": OpenAIStub, "anthropic": AnthropicStub}


class Sleeps(list):
    """An injected sleep that records the delays instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def model_for(stub, provider: str, *, name: str = "stub-model", env=None, prices=None, **options):
    sleeps = Sleeps()
    config = ModelConfig(provider=provider, name=name, base_url=stub.base_url, **options)
    model = make_model(config, env={"OPENAI_API_KEY": KEY, "ANTHROPIC_API_KEY": KEY} if env is None else env,
                       prices=prices, sleep=sleeps)
    return model, sleeps


def sent_key(stub) -> str:
    headers = stub.requests[-1]["headers"]
    return headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")


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
        body = stub.requests[0]["body"]
        assert body["model"] == "stub-model" and body["temperature"] == 0.3
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


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_retries_on_429_honour_retry_after(provider):
    with STUBS[provider]([{"status": 429, "retry_after": 3}, {"status": 429, "retry_after": 7}, "ok"]) as stub:
        model, sleeps = model_for(stub, provider)
        reply = model.chat(USER)
        assert reply.text == "ok" and sleeps == [3.0, 7.0]
        assert (reply.usage.requests, reply.usage.retries) == (3, 2) and len(stub.chats) == 3


def test_retry_after_as_an_http_date():
    with OpenAIStub([{"status": 429, "retry_after": formatdate(time.time() + 6, usegmt=True)}, "ok"]) as stub:
        model, sleeps = model_for(stub, "openai")
        assert model.chat(USER).text == "ok"
        assert len(sleeps) == 1 and 3.0 < sleeps[0] <= 6.0  # the date has whole seconds


@pytest.mark.parametrize("provider, status", [("openai", 500), ("openai", 503), ("anthropic", 529),
                                              ("anthropic", 500)])
def test_retries_on_server_errors_with_backoff(provider, status):
    with STUBS[provider]([{"status": status}, {"status": status}, {"status": status}, "recovered"]) as stub:
        model, sleeps = model_for(stub, provider)
        assert model.chat(USER).text == "recovered"
        assert sleeps == [1.0, 2.0, 4.0]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_retries_exhausted_is_model_unavailable(provider):
    with STUBS[provider]([{"status": 503}] * 3) as stub:
        model, sleeps = model_for(stub, provider, max_retries=2)
        with pytest.raises(ModelUnavailable) as info:
            model.chat(USER)
        message = str(info.value)
        assert provider in message and "'stub-model'" in message and stub.base_url in message
        assert "3 attempts" in message and "HTTP 503" in message
        assert sleeps == [1.0, 2.0] and model.usage.requests == 3 and model.usage.retries == 2


def test_timeouts_are_retried():
    def slow(messages, tools):
        time.sleep(0.6)
        return "late"

    with OpenAIStub(slow) as stub:
        model, sleeps = model_for(stub, "openai", timeout=0.2, max_retries=1)
        with pytest.raises(ModelUnavailable, match="timeout after 0.2 s"):
            model.chat(USER)
        assert sleeps == [1.0]


def test_backoff_is_capped_and_retry_after_reads_dates():
    assert [backoff_delay(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    now = 1_800_000_000.0
    assert parse_retry_after({"Retry-After": formatdate(now + 12, usegmt=True)}, now=now) == 12.0
    assert parse_retry_after({"retry-after": "2.5"}) == 2.5
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "soon"}) is None and parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "100000"}) == 120.0


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("status, fix", [(401, "rejected the API key"), (403, "not allowed"),
                                         (404, "unknown model 'stub-model' or wrong base_url")])
def test_client_errors_are_immediate_precise_and_keyless(provider, status, fix):
    with STUBS[provider]([{"status": status, "message": f"denied for key {KEY}"}, "never"]) as stub:
        model, sleeps = model_for(stub, provider, api_key_env="MY_KEY", env={"MY_KEY": KEY})
        with pytest.raises(ModelError) as info:
            model.chat(USER)
        error = info.value
        assert not isinstance(error, ModelUnavailable) and sleeps == [] and len(stub.chats) == 1
        message = str(error)
        assert provider in message and "'stub-model'" in message and stub.base_url in message
        assert fix in message and f"HTTP {status}" in message
        if status in (401, 403):
            assert "$MY_KEY" in message
        assert KEY not in message and KEY not in repr(error) and KEY not in repr(model)
        assert error.__cause__ is None


def test_bad_model_400_names_the_model():
    with OpenAIStub([{"status": 400, "message": "model 'nope' is not supported"}]) as stub:
        model, sleeps = model_for(stub, "openai", name="nope")
        with pytest.raises(ModelError, match="does not accept the model 'nope'") as info:
            model.chat(USER)
        assert not isinstance(info.value, ModelUnavailable) and sleeps == []


def test_missing_key_variable_names_the_variable_and_local_servers_need_none():
    config = ModelConfig(provider="anthropic", name="claude-x", api_key_env="TEAM_CLAUDE_KEY")
    with pytest.raises(ModelError, match="TEAM_CLAUDE_KEY") as info:
        make_model(config, env={"ANTHROPIC_API_KEY": KEY})
    assert "https://api.anthropic.com" in str(info.value) and KEY not in str(info.value)
    with pytest.raises(ModelError, match="OPENAI_API_KEY"):
        make_model(ModelConfig(provider="openai", name="gpt-x"), env={})
    with OpenAIStub(["local"]) as stub:
        model, _ = model_for(stub, "openai", env={})
        assert model.chat(USER).text == "local" and sent_key(stub) == "no-key-required"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_bad_tool_calls_are_returned_with_problems(provider):
    script = [{"tool_calls": [{"name": "read_file", "arguments": '{"path": "a.py",'},
                              {"name": "delete_everything", "arguments": {}},
                              {"name": "read_file", "arguments": {"path": "b.py"}}]}]
    if provider == "anthropic":  # the wire carries objects: a bad input has to be written raw
        script = [{"raw": {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                           "stop_reason": "tool_use", "stop_sequence": None,
                           "usage": {"input_tokens": 3, "output_tokens": 4},
                           "content": [{"type": "tool_use", "id": "t1", "name": "read_file",
                                        "input": '{"path": "a.py",'},
                                       {"type": "tool_use", "id": "t2", "name": "delete_everything", "input": {}},
                                       {"type": "tool_use", "id": "t3", "name": "read_file",
                                        "input": {"path": "b.py"}}]}}]
    with STUBS[provider](script) as stub:
        model, _ = model_for(stub, provider)
        reply = model.chat(USER, [READ])
        assert [c.name for c in reply.tool_calls] == ["read_file", "delete_everything", "read_file"]
        assert len(reply.problems) == 2
        assert "not valid JSON" in reply.problems[0] and reply.tool_calls[0].id in reply.problems[0]
        assert "unknown tool 'delete_everything'" in reply.problems[1] and "read_file" in reply.problems[1]
        assert reply.usage.broken_replies == 1 and model.usage.broken_replies == 1


def test_empty_choices_are_retried_then_unavailable():
    empty = {"raw": {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": [],
                     "usage": {"prompt_tokens": 4, "completion_tokens": 0, "total_tokens": 4}}}
    with OpenAIStub([empty, "fine", empty, empty]) as stub:
        model, sleeps = model_for(stub, "openai", max_retries=1)
        reply = model.chat(USER)
        assert reply.text == "fine" and sleeps == [1.0]
        assert (reply.usage.requests, reply.usage.retries, reply.usage.broken_replies) == (2, 1, 1)
        assert reply.usage.input_tokens == 4 + len("You fix bugs.\nFix calc.py.") // 4  # both requests
        with pytest.raises(ModelUnavailable, match="empty choice list"):
            model.chat(USER)
        assert model.usage.broken_replies == 3 and model.usage.requests == 4


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_cut_replies_are_retried_then_unavailable(provider):
    cut = {"text": "A long reply that breaks off halfway through.", "cut": True}
    with STUBS[provider]([cut, "whole", cut, cut, cut]) as stub:
        model, sleeps = model_for(stub, provider, max_retries=2)
        reply = model.chat(USER)
        assert reply.text == "whole" and reply.usage.broken_replies == 1 and sleeps == [1.0]
        with pytest.raises(ModelUnavailable, match="reply cut off"):
            model.chat(USER)
        assert model.usage.broken_replies == 4 and model.usage.requests == 5


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_max_tokens_returns_the_partial_text(provider):
    with STUBS[provider]([{"text": "The first half of", "stop": "max_tokens"}]) as stub:
        model, sleeps = model_for(stub, provider, max_tokens=5)
        reply = model.chat(USER)
        assert (reply.text, reply.stop, sleeps) == ("The first half of", "max_tokens", [])
        assert "max_tokens limit (5 tokens)" in reply.problems[0] and reply.usage.broken_replies == 1
        assert stub.requests[0]["body"]["max_tokens"] == 5


def openai_raw(message, finish="stop", usage=None):
    return {"raw": {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                    "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
                    "usage": usage or {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}}


def anthropic_raw(content, stop_reason="end_turn", usage=None):
    return {"raw": {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": content,
                    "stop_reason": stop_reason, "stop_sequence": None,
                    "usage": usage or {"input_tokens": 3, "output_tokens": 2}}}


RAW = {"openai": openai_raw, "anthropic": anthropic_raw}


def test_content_as_a_list_of_parts_keeps_its_text():
    parts = [{"type": "text", "text": "First."}, {"type": "text", "text": "Second."}]
    with OpenAIStub([openai_raw({"content": parts})]) as stub:
        model, _ = model_for(stub, "openai")
        reply = model.chat(USER)
        assert (reply.text, reply.stop, reply.problems) == ("First.\n\nSecond.", "end", [])


def test_openai_refusal_is_the_text_with_a_problem():
    with OpenAIStub([openai_raw({"content": None, "refusal": "I can't help with that."})]) as stub:
        model, sleeps = model_for(stub, "openai")
        reply = model.chat(USER)
        assert reply.text == "I can't help with that." and reply.stop == "error" and sleeps == []
        assert len(reply.problems) == 1 and "refused" in reply.problems[0]
        assert reply.usage.broken_replies == 1


@pytest.mark.parametrize("provider, usage", [
    ("openai", {"prompt_tokens": "abc", "completion_tokens": 7, "total_tokens": None}),
    ("anthropic", {"input_tokens": "x", "output_tokens": 7})])
def test_malformed_usage_counts_as_zero(provider, usage):
    content = {"content": "Done."} if provider == "openai" else [{"type": "text", "text": "Done."}]
    with STUBS[provider]([RAW[provider](content, usage=usage)]) as stub:
        model, _ = model_for(stub, provider)
        reply = model.chat(USER)
        assert reply.text == "Done." and (reply.usage.input_tokens, reply.usage.output_tokens) == (0, 7)


@pytest.mark.parametrize("provider, entry, said", [
    ("openai", openai_raw({"content": "Part of"}, finish="content_filter"), "content filter"),
    ("anthropic", anthropic_raw([{"type": "text", "text": "Part of"}], stop_reason="refusal"), "refused")])
def test_filtered_and_refused_replies_stop_with_a_problem(provider, entry, said):
    with STUBS[provider]([entry]) as stub:
        model, sleeps = model_for(stub, provider)
        reply = model.chat(USER)
        assert (reply.text, reply.stop, sleeps) == ("Part of", "error", [])
        assert len(reply.problems) == 1 and said in reply.problems[0] and reply.usage.broken_replies == 1


def test_anthropic_pause_turn_is_retried_then_unavailable():
    paused = anthropic_raw([{"type": "text", "text": "Still working"}], stop_reason="pause_turn")
    with AnthropicStub([paused, "done", paused, paused]) as stub:
        model, sleeps = model_for(stub, "anthropic", max_retries=1)
        reply = model.chat(USER)
        assert reply.text == "done" and sleeps == [1.0] and reply.usage.broken_replies == 1
        with pytest.raises(ModelUnavailable, match="pause_turn"):
            model.chat(USER)


def test_tool_call_without_function_is_reported():
    calls = [{"id": "c1", "type": "function", "function": None},
             {"id": "c2", "type": "function", "function": {"name": "read_file", "arguments": '{"path": "a"}'}}]
    with OpenAIStub([openai_raw({"content": None, "tool_calls": calls}, finish="tool_calls")]) as stub:
        model, _ = model_for(stub, "openai")
        reply = model.chat(USER, [READ])
        assert [c.id for c in reply.tool_calls] == ["c2"] and reply.stop == "tool_calls"
        assert len(reply.problems) == 1 and "c1" in reply.problems[0] and "dropped" in reply.problems[0]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_replies_with_nothing_in_them_are_retried_then_unavailable(provider):
    empty = openai_raw({"content": None}) if provider == "openai" else anthropic_raw([])
    with STUBS[provider]([empty, "fine", empty, empty]) as stub:
        model, sleeps = model_for(stub, provider, max_retries=1)
        reply = model.chat(USER)
        assert reply.text == "fine" and sleeps == [1.0]
        assert (reply.usage.requests, reply.usage.retries, reply.usage.broken_replies) == (2, 1, 1)
        with pytest.raises(ModelUnavailable, match="empty reply"):
            model.chat(USER)
        assert model.usage.broken_replies == 3 and model.usage.requests == 4


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("body", ["<html><body>Bad gateway</body></html>", ["a", "list"], 7])
def test_a_body_that_is_not_a_json_object_is_named(provider, body):
    with STUBS[provider]([{"raw": body}, {"raw": body}]) as stub:
        model, sleeps = model_for(stub, provider, max_retries=1)
        with pytest.raises(ModelUnavailable) as info:
            model.chat(USER)
        message = str(info.value)
        assert "the reply is not a JSON" in message and "empty choice list" not in message
        assert (body if isinstance(body, str) else json.dumps(body)) in message
        assert sleeps == [1.0] and model.usage.broken_replies == 2


def test_max_retries_is_bounded():
    with pytest.raises(ValueError):
        ModelConfig(provider="openai", name="m", max_retries=11)


class Clock:
    """An injected clock that moves only when the injected sleep sleeps (plus set jumps)."""

    def __init__(self, sleeps):
        self.sleeps, self.extra = sleeps, 0.0

    def __call__(self):
        return sum(self.sleeps) + self.extra


def test_a_retry_after_past_the_deadline_stops_at_once():
    with OpenAIStub([{"status": 429, "retry_after": 120}] * 8) as stub:
        sleeps = Sleeps()
        config = ModelConfig(provider="openai", name="stub-model", base_url=stub.base_url, max_retries=10)
        model = make_model(config, env={"OPENAI_API_KEY": KEY}, sleep=sleeps, clock=Clock(sleeps))
        with pytest.raises(ModelUnavailable) as info:
            model.chat(USER)
        assert sleeps == [120.0] * 5 and len(stub.chats) == 6  # 5 waits reach 600 s; a 6th would pass it
        assert "Retry-After" in str(info.value) and "600 s limit" in str(info.value)


def test_no_retry_starts_past_the_deadline():
    with OpenAIStub([{"status": 503}, {"status": 503}, "never"]) as stub:
        sleeps = Sleeps()
        clock = Clock(sleeps)

        def sleep_then_slow_request(seconds):  # the request after the first wait takes 599.5 s
            sleeps.append(seconds)
            clock.extra = 599.5

        config = ModelConfig(provider="openai", name="stub-model", base_url=stub.base_url, max_retries=5)
        model = make_model(config, env={"OPENAI_API_KEY": KEY}, sleep=sleep_then_slow_request, clock=clock)
        with pytest.raises(ModelUnavailable, match="600 s limit") as info:
            model.chat(USER)
        assert sleeps == [1.0] and len(stub.chats) == 2 and "HTTP 503" in str(info.value)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_concurrent_chats_keep_their_own_usage(provider):
    from concurrent.futures import ThreadPoolExecutor

    with STUBS[provider](lambda messages, tools: "ok") as stub:
        model, _ = model_for(stub, provider)
        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(lambda _: model.chat(USER), range(16)))
        assert all(r.text == "ok" and r.usage.requests == 1 and r.usage.retries == 0 for r in replies)
        assert model.usage.requests == 16 and len(stub.chats) == 16


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_html_labelled_as_json_is_named(provider):
    import http.server
    import threading

    page = b"<html><body>502 Bad Gateway</body></html>"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        sleeps = Sleeps()
        config = ModelConfig(provider=provider, name="m", base_url=f"http://127.0.0.1:{server.server_port}",
                             max_retries=1)
        model = make_model(config, env={}, sleep=sleeps)
        with pytest.raises(ModelUnavailable, match="the reply is not a JSON .*502 Bad Gateway"):
            model.chat(USER)
        assert sleeps == [1.0] and model.usage.broken_replies == 2
    finally:
        server.shutdown()
        server.server_close()
