"""Provider retries, deadlines and client errors: bounded, honouring Retry-After, never showing the key."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from clude.config.settings import ModelConfig
from clude.llm.base import ModelError, ModelUnavailable
from clude.llm.providers import make_model
from clude.llm.retry import backoff_delay, parse_retry_after
from clude.llm.stubs import OpenAIStub
from llm_helpers import KEY, STUBS, USER, model_for, sent_key


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
