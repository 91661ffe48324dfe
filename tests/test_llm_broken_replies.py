"""Broken replies (bad tool calls, empty, cut, refused, not JSON) are flagged or retried, never crashed on."""

from __future__ import annotations

import json

import pytest

from clude.config.settings import ModelConfig
from clude.llm.base import ModelUnavailable
from clude.llm.providers import make_model
from clude.llm.stubs import AnthropicStub, OpenAIStub
from llm_helpers import KEY, READ, STUBS, USER, Sleeps, model_for


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
def test_a_reply_cut_at_max_tokens_is_asked_again_with_twice_the_budget(provider):
    script = [{"text": "The first half of", "stop": "max_tokens", "usage": {"input_tokens": 7, "output_tokens": 5}},
              {"text": "The whole answer.", "usage": {"input_tokens": 7, "output_tokens": 4}}]
    with STUBS[provider](script) as stub:
        model, sleeps = model_for(stub, provider, max_tokens=5)
        reply = model.chat(USER)
        assert (reply.text, reply.stop, reply.problems, sleeps) == ("The whole answer.", "end", [], [])
        assert [r["body"]["max_tokens"] for r in stub.requests if r["method"] == "POST"] == [5, 10]
        assert (reply.usage.requests, reply.usage.broken_replies) == (2, 1)  # the cut reply is paid for
        assert (reply.usage.input_tokens, reply.usage.output_tokens) == (14, 9)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_reply_cut_off_again_is_the_partial_text_named_as_cut(provider):
    cut = [{"text": "The first half of", "stop": "max_tokens"}, {"text": "The first half of it", "stop": "max_tokens"}]
    with STUBS[provider](cut) as stub:
        model, sleeps = model_for(stub, provider, max_tokens=5)
        reply = model.chat(USER)
        assert (reply.text, reply.stop, sleeps) == ("The first half of it", "max_tokens", [])
        assert "cut off at the max_tokens limit (5 tokens, and again at 10; [model] max_tokens)" in reply.problems[0]
        assert reply.usage.broken_replies == 2 and reply.usage.requests == 2


def test_a_larger_budget_the_server_refuses_leaves_the_cut_reply():
    """A local server whose context cannot hold twice the budget answers 400: the cut reply stays, and the
    run goes on with it instead of stopping on the refusal."""
    script = [{"text": "The first half of", "stop": "max_tokens"},
              {"status": 400, "message": "requested tokens exceed context size"}]
    with OpenAIStub(script) as stub:
        model, _ = model_for(stub, "openai", max_tokens=5)
        reply = model.chat(USER)
        assert (reply.text, reply.stop) == ("The first half of", "max_tokens")
        assert "max_tokens limit (5 tokens; [model] max_tokens)" in reply.problems[0]
        assert reply.usage.requests == 2


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
