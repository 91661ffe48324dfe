"""Fitting the message normalization to the chat template a server shows (llama-server's /props): the
pure choice over real templates, and the wire, against a stub that renders every request through its
template as llama-server does and answers 400 when the template refuses it."""

from __future__ import annotations

from pathlib import Path

import pytest

from clude.config.settings import ModelConfig, QuirksEntry
from clude.llm.base import ModelError
from clude.llm.messages import quirks_for
from clude.llm.probe import PROBES, fitting_quirks, problem
from clude.llm.providers import make_model
from clude.llm.stubs import OpenAIStub

TEMPLATES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "chat_templates"
FILES = sorted(TEMPLATES.glob("*.jinja")) if TEMPLATES.is_dir() else []
needs_templates = pytest.mark.skipif(not FILES, reason=f"chat template fixtures absent at {TEMPLATES}")

# A strict template of our own, in the manner of Gemma's: no system role, no tool role, user and model
# turns strictly alternating.
STRICT = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n"
    "{{ m['content'] | trim }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")
CONVERSATION = [
    {"role": "system", "content": "You fix bugs."},
    {"role": "user", "content": "Fix calc.py."},
    {"role": "assistant", "content": "Reading it.", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "read_file", "arguments": '{"path": "calc.py"}'}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "def mean(values): ..."},
]


@needs_templates
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_an_unknown_model_name_gets_a_normalization_its_template_renders_whole(path):
    """A family quirks.toml does not know works all the same; one it knows keeps its entry."""
    template = path.read_text(encoding="utf-8")
    fitted, why = fitting_quirks(template, quirks_for("a-model-clude-has-never-heard-of"))
    assert problem(template, fitted, tools=fitted.native_tools) is None, why
    named = quirks_for(path.stem)
    assert fitting_quirks(template, named)[0] == named


def test_the_strict_template_refuses_the_raw_probes_and_takes_the_fitted_ones():
    plain = quirks_for("a-model-clude-has-never-heard-of")
    assert problem(STRICT, plain) is not None  # the test would prove nothing otherwise
    fitted, why = fitting_quirks(STRICT, plain)
    assert (fitted.tool_role, fitted.system_role) == (False, False) and problem(STRICT, fitted) is None
    assert "tool_role = false" in why and "system_role = false" in why and len(PROBES) >= 10


def test_a_server_showing_its_template_gets_requests_it_renders():
    """llama-server with a Gemma-like template and a model name clude does not know: without the probe
    its first request after a tool result is refused 400; with it, the request goes through."""
    config = ModelConfig(name="mystery-270m", base_url="", max_retries=0)
    with OpenAIStub(["Read it: mean divides by len + 1."], chat_template=STRICT) as stub:
        model = make_model(config.model_copy(update={"base_url": stub.base_url}), env={})
        reply = model.chat(CONVERSATION)
        assert reply.text == "Read it: mean divides by len + 1."
        roles = [m["role"] for m in stub.chats[0]["messages"]]
        assert "tool" not in roles and "system" not in roles
        assert "tool_role = false" in model.template_note and "system_role = false" in model.template_note
    pinned = config.model_copy(update={"quirks": [QuirksEntry(patterns=["mystery-*"], tool_role=True)]})
    with OpenAIStub(["never sent"], chat_template=STRICT) as stub:  # quirks set by the user are not probed
        model = make_model(pinned.model_copy(update={"base_url": stub.base_url}), env={})
        with pytest.raises(ModelError, match="HTTP 400.*(System role|roles must alternate)"):
            model.chat(CONVERSATION)
        assert [r["path"] for r in stub.requests if r["method"] == "GET"] == []
