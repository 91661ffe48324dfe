"""ScriptedModel, and the real openai / anthropic SDKs driven through the loopback stub servers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading

import anthropic
import openai
import pytest

from clude.llm.base import ModelError, ModelUnavailable, Reply, Usage
from clude.llm.scripted import ScriptedModel, ScriptExhausted
from clude.llm.stubs import AnthropicStub, OpenAIStub

USER = [{"role": "user", "content": "Fix the bug in calc.py please."}]
READ_TOOL = {"type": "function", "function": {"name": "read_file", "description": "Read a file.",
             "parameters": {"type": "object", "properties": {"path": {"type": "string"}},
                            "required": ["path"]}}}
ANTHROPIC_TOOL = {"name": "read_file", "description": "Read a file.",
                  "input_schema": READ_TOOL["function"]["parameters"]}
LONG_TEXT = "The bug is an off-by-one in the loop; I changed range(n) to range(n + 1) and the tests pass."


@pytest.fixture(autouse=True)
def no_leftover_threads():
    """Every stub a test starts is stopped, handler threads included."""
    before = set(threading.enumerate())
    yield
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not left, f"threads left running: {left}"


def oai(stub: OpenAIStub) -> openai.OpenAI:
    return openai.OpenAI(base_url=stub.base_url, api_key="sk-test", max_retries=0, timeout=10)


def ant(stub: AnthropicStub) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=stub.base_url, api_key="sk-ant-test", max_retries=0, timeout=10)


# ScriptedModel --------------------------------------------------------------------------------------

def test_scripted_model_replays_list_in_order_with_every_entry_form():
    explicit = Reply(text="from a Reply", usage=Usage(input_tokens=7, output_tokens=3))
    model = ScriptedModel([
        "plain text answer",
        {"text": "reading", "tool_calls": [{"name": "read_file", "arguments": {"path": "calc.py"}},
                                           {"name": "bash", "arguments": "{not json", "id": "c9"}]},
        explicit,
        {"text": "long", "stop": "max_tokens", "usage": {"input_tokens": 100, "output_tokens": 50}},
    ], name="fake")
    assert model.name == "fake"
    first = model.chat(USER)
    assert (first.text, first.tool_calls, first.stop) == ("plain text answer", [], "end")
    assert first.usage.output_tokens == len("plain text answer") // 4
    assert first.usage.input_tokens == len(USER[0]["content"]) // 4
    second = model.chat(USER, [READ_TOOL])
    assert second.stop == "tool_calls"
    assert [(c.name, json.loads(c.arguments) if c.name == "read_file" else c.arguments, c.id)
            for c in second.tool_calls] == [("read_file", {"path": "calc.py"}, "call_1"),
                                            ("bash", "{not json", "c9")]
    assert second.as_message()["tool_calls"][0]["function"]["name"] == "read_file"
    third = model.chat(USER)
    assert third.text == "from a Reply" and third.usage.input_tokens == 7 and third.usage.requests == 1
    fourth = model.chat(USER)
    assert fourth.stop == "max_tokens" and (fourth.usage.input_tokens, fourth.usage.output_tokens) == (100, 50)
    assert model.usage.requests == 4
    assert model.usage.input_tokens == 2 * (len(USER[0]["content"]) // 4) + 7 + 100


def test_scripted_model_records_deep_copies_and_reports_exhaustion():
    model = ScriptedModel(["one", "two"])
    messages = [{"role": "user", "content": "hello"}]
    model.chat(messages, [READ_TOOL])
    messages[0]["content"] = "changed afterwards"
    messages.append({"role": "assistant", "content": "one"})
    model.chat(messages)
    assert model.requests[0] == {"messages": [{"role": "user", "content": "hello"}], "tools": [READ_TOOL]}
    assert len(model.requests[1]["messages"]) == 2 and model.requests[1]["tools"] is None
    with pytest.raises(ScriptExhausted, match="2 responses scripted"):
        model.chat(messages)
    assert isinstance(ScriptExhausted("x"), ModelError)


def test_scripted_model_function_script_sees_the_conversation():
    seen = []

    def script(messages, tools):
        seen.append((messages[-1]["role"], tools))
        if messages[-1]["role"] == "tool":
            return f"the file says {messages[-1]['content']}"
        return {"tool_calls": [{"name": "read_file", "arguments": {"path": "a.txt"}}]}

    model = ScriptedModel(script)
    reply = model.chat(USER, [READ_TOOL])
    call = reply.tool_calls[0]
    conversation = USER + [reply.as_message(),
                           {"role": "tool", "tool_call_id": call.id, "content": "42"}]
    assert model.chat(conversation, [READ_TOOL]).text == "the file says 42"
    assert seen == [("user", [READ_TOOL]), ("tool", [READ_TOOL])]


def test_scripted_model_error_entries_and_bad_entries():
    model = ScriptedModel([{"status": 429, "retry_after": 1}, {"status": 401}, {"txt": "typo"}, 3])
    with pytest.raises(ModelUnavailable):
        model.chat(USER)
    with pytest.raises(ModelError) as info:
        model.chat(USER)
    assert not isinstance(info.value, ModelUnavailable)
    with pytest.raises(ValueError, match="txt"):
        model.chat(USER)
    with pytest.raises(TypeError):
        model.chat(USER)
    with pytest.raises(TypeError):
        ScriptedModel("not a list")


# OpenAI wire format ---------------------------------------------------------------------------------

def test_openai_text_non_streaming_and_streaming_with_usage():
    with OpenAIStub([{"text": "Hello there.", "usage": {"input_tokens": 11, "output_tokens": 3}},
                     LONG_TEXT], model="local-model") as stub:
        client = oai(stub)
        reply = client.chat.completions.create(model="local-model", messages=USER, temperature=0.2)
        assert reply.choices[0].message.content == "Hello there."
        assert reply.choices[0].finish_reason == "stop"
        assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (11, 3, 14)
        chunks = list(client.chat.completions.create(model="local-model", messages=USER, stream=True,
                                                     stream_options={"include_usage": True}))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == LONG_TEXT
        assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 1  # really streamed
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
        assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(LONG_TEXT) // 4
        assert [m.id for m in client.models.list()] == ["local-model"]
        assert stub.chats[0] == {"messages": USER, "tools": None}
        posted = [r for r in stub.requests if r["method"] == "POST"]
        assert posted[0]["path"] == "/v1/chat/completions" and posted[0]["body"]["temperature"] == 0.2
        assert posted[0]["headers"]["authorization"] == "Bearer sk-test"
        assert stub.failures == []


def test_openai_tool_calls_round_trip_non_streaming_and_streaming():
    def script(messages, tools):
        last = messages[-1]
        if last["role"] == "tool":
            return f"{last['tool_call_id']} returned {last['content']}"
        return {"text": "Let me look.", "tool_calls": [
            {"name": "read_file", "arguments": {"path": "calc.py"}},
            {"name": "read_file", "arguments": {"path": "test_calc.py"}}]}

    with OpenAIStub(script) as stub:
        client = oai(stub)
        reply = client.chat.completions.create(model="m", messages=USER, tools=[READ_TOOL])
        choice = reply.choices[0]
        assert choice.finish_reason == "tool_calls" and choice.message.content == "Let me look."
        calls = choice.message.tool_calls
        assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
            ("read_file", {"path": "calc.py"}), ("read_file", {"path": "test_calc.py"})]
        assert stub.chats[0]["tools"] == [READ_TOOL]

        # streaming: reassemble the tool-call deltas by index, as clients do
        assembled: dict[int, dict] = {}
        finish = None
        for chunk in client.chat.completions.create(model="m", messages=USER, tools=[READ_TOOL], stream=True):
            for delta in chunk.choices[0].delta.tool_calls or []:
                slot = assembled.setdefault(delta.index, {"id": None, "name": "", "arguments": ""})
                slot["id"] = delta.id or slot["id"]
                slot["name"] += delta.function.name or ""
                slot["arguments"] += delta.function.arguments or ""
            finish = chunk.choices[0].finish_reason or finish
        assert finish == "tool_calls"
        assert [json.loads(assembled[i]["arguments"])["path"] for i in (0, 1)] == ["calc.py", "test_calc.py"]
        assert all(slot["name"] == "read_file" and slot["id"] for slot in assembled.values())

        conversation = USER + [choice.message.model_dump(exclude_none=True),
                               {"role": "tool", "tool_call_id": calls[0].id, "content": "def add(a, b)"}]
        final = client.chat.completions.create(model="m", messages=conversation, tools=[READ_TOOL])
        assert final.choices[0].message.content == f"{calls[0].id} returned def add(a, b)"
        assert stub.chats[-1]["messages"][1]["tool_calls"][0]["id"] == calls[0].id


@pytest.mark.parametrize("status, error", [(429, openai.RateLimitError), (500, openai.InternalServerError),
                                           (401, openai.AuthenticationError), (404, openai.NotFoundError)])
def test_openai_errors_reach_the_sdk_as_their_exceptions(status, error):
    with OpenAIStub([{"status": status, "retry_after": 1}, "recovered"]) as stub:
        client = oai(stub)
        with pytest.raises(error) as info:
            client.chat.completions.create(model="gpt-x", messages=USER)
        assert info.value.status_code == status
        assert info.value.response.headers["retry-after"] == "1"
        assert set(info.value.body) >= {"message", "type", "code"}  # the SDK unwraps {"error": {...}}
        assert client.chat.completions.create(model="gpt-x", messages=USER).choices[0].message.content \
            == "recovered"


def test_openai_script_exhaustion_is_a_500_naming_the_count():
    with OpenAIStub(["only one"]) as stub:
        client = oai(stub)
        client.chat.completions.create(model="m", messages=USER)
        with pytest.raises(openai.InternalServerError, match="1 response scripted"):
            client.chat.completions.create(model="m", messages=USER)
        assert len(stub.failures) == 1 and "ScriptExhausted" in stub.failures[0]


def test_raw_entry_is_served_verbatim():
    with OpenAIStub([{"raw": {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                              "choices": []}}]) as stub:
        assert oai(stub).chat.completions.create(model="m", messages=USER).choices == []


# Anthropic wire format ------------------------------------------------------------------------------

def test_anthropic_text_non_streaming_and_streaming_with_usage():
    with AnthropicStub([{"text": "Hi!", "usage": {"input_tokens": 20, "output_tokens": 2}},
                        LONG_TEXT]) as stub:
        client = ant(stub)
        message = client.messages.create(model="claude-x", max_tokens=100, system="Be terse.",
                                         messages=[{"role": "user", "content": "hello"}])
        assert [b.text for b in message.content] == ["Hi!"]
        assert message.stop_reason == "end_turn"
        assert (message.usage.input_tokens, message.usage.output_tokens) == (20, 2)
        assert stub.chats[0]["messages"] == [{"role": "system", "content": "Be terse."},
                                            {"role": "user", "content": "hello"}]
        with client.messages.stream(model="claude-x", max_tokens=100, system=[
                {"type": "text", "text": "Be terse."}], messages=[{"role": "user", "content": "hello"}]) as stream:
            events = [event.type for event in stream]
            pieces = list(stream.text_stream)  # already consumed: empty, but must not fail
            final = stream.get_final_message()
        assert pieces == []
        assert final.content[0].text == LONG_TEXT and final.stop_reason == "end_turn"
        assert final.usage.output_tokens == len(LONG_TEXT) // 4
        assert events[0] == "message_start" and events[-1] == "message_stop"
        assert events.count("text") > 1 and "message_delta" in events
        headers = stub.requests[0]["headers"]  # SDK versions differ: x-api-key or a bearer token
        assert "sk-ant-test" in (headers.get("x-api-key"), headers.get("authorization", "").removeprefix("Bearer "))
        assert "anthropic-version" in stub.requests[0]["headers"]
        assert stub.failures == []


def test_anthropic_tool_use_round_trip_non_streaming_and_streaming():
    def script(messages, tools):
        results = [m for m in messages if m["role"] == "tool"]
        if results:
            return {"text": f"{results[0]['tool_call_id']}: {results[0]['content']}"}
        return {"text": "Reading.", "tool_calls": [{"name": "read_file", "arguments": {"path": "calc.py"}}]}

    with AnthropicStub(script) as stub:
        client = ant(stub)
        first = client.messages.create(model="claude-x", max_tokens=100, tools=[ANTHROPIC_TOOL],
                                       messages=[{"role": "user", "content": "fix it"}])
        assert first.stop_reason == "tool_use"
        use = first.content[1]
        assert (use.type, use.name, use.input) == ("tool_use", "read_file", {"path": "calc.py"})
        assert stub.chats[0]["tools"] == [READ_TOOL]

        with client.messages.stream(model="claude-x", max_tokens=100, tools=[ANTHROPIC_TOOL],
                                    messages=[{"role": "user", "content": "fix it"}]) as stream:
            streamed = stream.get_final_message()
        assert streamed.stop_reason == "tool_use"
        assert [(b.type, getattr(b, "input", None)) for b in streamed.content] == [
            ("text", None), ("tool_use", {"path": "calc.py"})]

        conversation = [{"role": "user", "content": "fix it"},
                        {"role": "assistant", "content": [block.model_dump(exclude_none=True)
                                                          for block in first.content]},
                        {"role": "user", "content": [
                            {"type": "tool_result", "tool_use_id": use.id,
                             "content": [{"type": "text", "text": "def add(a, b)"}]},
                            {"type": "text", "text": "go on"}]}]
        final = client.messages.create(model="claude-x", max_tokens=100, tools=[ANTHROPIC_TOOL],
                                       messages=conversation)
        seen = stub.chats[-1]["messages"]
        assert seen[1]["tool_calls"][0]["id"] == use.id and seen[1]["content"] == "Reading."
        assert json.loads(seen[1]["tool_calls"][0]["function"]["arguments"]) == {"path": "calc.py"}
        assert seen[2] == {"role": "tool", "tool_call_id": use.id, "content": "def add(a, b)"}
        assert seen[3] == {"role": "user", "content": "go on"}
        assert final.content[0].text == f"{use.id}: def add(a, b)"


def test_anthropic_extras_models_count_tokens_beta_and_unknown_paths():
    with AnthropicStub(["beta ok"], model="claude-stub") as stub:
        client = ant(stub)
        assert [m.id for m in client.models.list()] == ["claude-stub"]
        count = client.messages.count_tokens(model="claude-stub", messages=[{"role": "user", "content": "x" * 40}])
        assert count.input_tokens == 10
        beta = client.beta.messages.create(model="claude-stub", max_tokens=10, betas=["some-beta-2099-01-01"],
                                           metadata={"user_id": "u"}, extra_body={"unknown_field": 1},
                                           extra_query={"beta": "true"}, extra_headers={"x-app": "cli"},
                                           messages=[{"role": "user", "content": "hi"}])
        assert beta.content[0].text == "beta ok"
        posted = stub.requests[-1]
        assert posted["query"] == "beta=true" and posted["headers"]["anthropic-beta"] == "some-beta-2099-01-01"
        with pytest.raises(anthropic.NotFoundError):
            client.get("/api/unknown", cast_to=object)


@pytest.mark.parametrize("status, error", [(429, anthropic.RateLimitError), (500, anthropic.InternalServerError),
                                           (401, anthropic.AuthenticationError), (529, anthropic.APIStatusError)])
def test_anthropic_errors_reach_the_sdk_as_their_exceptions(status, error):
    with AnthropicStub([{"status": status, "retry_after": 2}]) as stub:
        with pytest.raises(error) as info:
            ant(stub).messages.create(model="claude-x", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
        assert info.value.status_code == status
        assert info.value.response.headers["retry-after"] == "2"
        assert info.value.body["type"] == "error" and info.value.body["error"]["type"]


# lifecycle and CLI ----------------------------------------------------------------------------------

def test_stop_frees_the_port_and_threads_even_with_keep_alive_connections():
    stub = OpenAIStub(["a", "b"])
    with stub:
        client = oai(stub)
        client.chat.completions.create(model="m", messages=USER)  # leaves a keep-alive connection open
        port = stub.port
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    stub.stop()  # idempotent
    client.close()


def test_cli_serves_until_interrupted(tmp_path):
    script = tmp_path / "script.json"
    script.write_text(json.dumps(["from the file", {"tool_calls": [{"name": "read_file", "arguments": {}}]}]))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "clude.llm.stubs", "openai", "--script", str(script)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        banner = process.stdout.readline()
        assert "serving at http://127.0.0.1:" in banner
        client = openai.OpenAI(base_url=banner.split("serving at ")[1].split()[0], api_key="x", max_retries=0)
        assert client.chat.completions.create(model="m", messages=USER).choices[0].message.content == "from the file"
        client.close()
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0, process.stderr.read()


def test_cut_replies_break_off_streams_and_bodies():
    with OpenAIStub([{"text": LONG_TEXT, "cut": 3}, {"text": LONG_TEXT, "cut": True}]) as stub:
        client = oai(stub)
        chunks = list(client.chat.completions.create(model="m", messages=USER, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        assert len(chunks) == 3 and LONG_TEXT.startswith(text) and text != LONG_TEXT
        assert all(c.choices[0].finish_reason is None for c in chunks)
        with pytest.raises(openai.APIConnectionError):  # a short read of the JSON body
            client.chat.completions.create(model="m", messages=USER)
    with AnthropicStub([{"tool_calls": [{"name": "read_file", "arguments": {"path": "calc.py"}}], "cut": 3}]) as stub:
        with ant(stub).messages.stream(model="c", max_tokens=10, messages=[{"role": "user", "content": "x"}]) as stream:
            events = [event.type for event in stream]
        assert events[-1] == "input_json" and "message_stop" not in events
