"""normalize_messages: exact rules, rendering through the real chat templates, and properties."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jinja2
import pytest
from hypothesis import given, settings, strategies as st

from clude.llm.probe import PROBES, words_of
from clude.llm.messages import CALLS_ONLY, CONTINUE, normalize_for, normalize_messages, quirks_for
from clude.llm.templates import render_chat, server_view

TEMPLATES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "chat_templates"
FILES = sorted(TEMPLATES.glob("*.jinja")) if TEMPLATES.is_dir() else []
needs_templates = pytest.mark.skipif(not FILES, reason=f"chat template fixtures absent at {TEMPLATES}")
STRICT = ["google-gemma-2-2b-it", "mistralai-Mistral-Nemo-Instruct-2407",
          "Mistral-Small-3.2-24B-Instruct-2506", "Qwen3.5-4B"]


def call(cid, name="read_file", args='{"path": "alpha.py"}'):
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}


def U(text):
    return {"role": "user", "content": text}


def A(text, *calls):
    m = {"role": "assistant", "content": text}
    if calls:
        m["tool_calls"] = list(calls)
    return m


def S(text):
    return {"role": "system", "content": text}


def T(cid, text):
    return {"role": "tool", "tool_call_id": cid, "content": text}


# ---------------------------------------------------------------- (a) rules on small inputs

def test_user_user_merged_with_blank_line():
    assert normalize_messages([U("one"), U("two")]) == [U("one\n\ntwo")]


def test_systems_merged_first():
    got = normalize_messages([U("hi"), S("rule one"), A("ok"), S("rule two")])
    assert got == [S("rule one\n\nrule two"), U("hi"), A("ok")]


def test_system_role_false_goes_into_first_user_turn():
    assert normalize_messages([S("be terse"), U("hi")], system_role=False) == [U("be terse\n\nhi")]
    assert normalize_messages([S("be terse")], system_role=False) == [U("be terse\n\n" + CONTINUE)]


def test_assistant_first_gets_neutral_user_turn():
    assert normalize_messages([A("hello"), U("hi")]) == [U(CONTINUE), A("hello"), U("hi")]


def test_assistant_assistant_merged_with_calls_concatenated():
    got = normalize_messages([U("go"), A("a", call("c1")), A(None, call("c2")), T("c1", "r1"), T("c2", "r2")])
    assert got == [U("go"), A("a", call("c1"), call("c2")), T("c1", "r1"), T("c2", "r2")]


def test_empty_and_null_contents_dropped_or_filled():
    got = normalize_messages([U(""), U("x"), A(None), A(""), U(None), A("y", call("c1")), T("c1", None)])
    assert got == [U("x"), A("y", call("c1")), T("c1", "(no output)")]


def test_whitespace_only_contents_are_empty():
    got = normalize_messages([S("  "), U("  "), U("x"), A(" \n\t"), U("y"), A("z", call("c1")), T("c1", " "),
                              A(" a ")])
    assert got == [U("x\n\ny"), A("z", call("c1")), T("c1", "(no output)"), A(" a ")]
    assert normalize_messages([U("\n")]) == [U(CONTINUE)]


def test_calls_only_turn_has_empty_string_not_none():
    got = normalize_messages([U("x"), A(None, call("c1")), T("c1", "r")])
    assert got[1]["content"] == ""


def test_orphan_tool_result_becomes_user_text():
    got = normalize_messages([U("x"), A("y"), T("zz9", "late result")])
    assert got == [U("x"), A("y"), U("Result of tool call zz9, which matches no call just made:\n\nlate result")]


def test_missing_result_gets_tool_message_and_results_follow_call_order():
    got = normalize_messages([U("x"), A("", call("c1"), call("c2", "grep")), T("c2", "r2"), U("next")])
    assert got == [U("x"), A("", call("c1"), call("c2", "grep")),
                   T("c1", "No result was returned for tool call c1 (read_file)."), T("c2", "r2"), U("next")]


def test_duplicate_answer_is_orphan():
    got = normalize_messages([U("x"), A("", call("c1")), T("c1", "first"), T("c1", "second")])
    assert got[2] == T("c1", "first")
    assert got[3] == U("Result of tool call c1 (read_file), which matches no call just made:\n\nsecond")


def test_tool_role_false_textualizes():
    got = normalize_messages([U("x"), A("look", call("c1")), T("c1", "data"), U("thanks")], tool_role=False)
    assert got == [U("x"),
                   A('look\n\nTool call read_file (id c1) with arguments: {"path": "alpha.py"}'),
                   U("Result of tool call c1 (read_file):\n\ndata\n\nthanks")]


def test_tool_role_false_calls_only_turn_is_text():
    got = normalize_messages([U("x"), A(None, call("c1")), T("c1", "d")], tool_role=False)
    assert got[1] == A('Tool call read_file (id c1) with arguments: {"path": "alpha.py"}')


def test_mistral_ids_nine_alnum_deterministic_and_paired():
    msgs = [U("x"), A("", call("call_abc_123456")), T("call_abc_123456", "r")]
    got = normalize_messages(msgs, tool_id_style="mistral")
    new = got[1]["tool_calls"][0]["id"]
    assert re.fullmatch(r"[A-Za-z0-9]{9}", new) and got[2]["tool_call_id"] == new
    assert normalize_messages(msgs, tool_id_style="mistral") == got
    assert normalize_messages([U("x"), A("", call("abcDEF123")), T("abcDEF123", "r")],
                              tool_id_style="mistral")[1]["tool_calls"][0]["id"] == "abcDEF123"


def test_parallel_calls_split():
    got = normalize_messages([U("x"), A("t", call("c1"), call("c2")), T("c1", "r1"), T("c2", "r2")],
                             parallel_tool_calls=False)
    assert got == [U("x"), A("t", call("c1")), T("c1", "r1"), A("", call("c2")), T("c2", "r2")]


def test_separate_call_text():
    got = normalize_messages([U("x"), A("looking", call("c1")), T("c1", "r"), A("done"), U("y")],
                             call_text="separate")
    assert got == [U("x"), A("", call("c1")), T("c1", "r"), A("looking\n\ndone"), U("y")]
    got = normalize_messages([U("x"), A(None, call("c1")), T("c1", "r"), U("y")], call_text="separate")
    assert got == [U("x"), A("", call("c1")), T("c1", "r"), A(CALLS_ONLY), U("y")]
    got = normalize_messages([U("x"), A("looking", call("c1")), T("c1", "r")], call_text="separate")
    assert got == [U("x"), A("looking"), A("", call("c1")), T("c1", "r")]


def test_input_not_mutated():
    msgs = [A(None, call("c1")), S("s"), T("c1", None), T("zz", "o")]
    before = copy.deepcopy(msgs)
    normalize_messages(msgs, tool_role=False)
    normalize_messages(msgs, tool_id_style="mistral", parallel_tool_calls=False, call_text="separate")
    assert msgs == before


def test_quirks_overrides_come_first():
    assert quirks_for("google/gemma-2-9b-it").system_role is False
    assert quirks_for("google/gemma-4-31b-it").system_role is True
    gemma3 = quirks_for("gemma-3-270m-it-Q4_K_M.gguf")  # llama-server's name for a GGUF file
    assert gemma3.tool_role is False and gemma3.system_role is True
    assert quirks_for("mistral-small-3.2").tool_id_style == "mistral"
    assert quirks_for("some-unknown-model") == quirks_for("")
    over = quirks_for("google/gemma-2-9b-it", [{"patterns": ["*gemma*"], "system_role": True}])
    assert over.system_role is True and over.tool_role is True


# ---------------------------------------------------------------- (b) rendering through real templates

def model_name(path: Path) -> str:
    return path.stem


def render(path: Path, messages) -> str:
    return render_chat(path.read_text(encoding="utf-8"), server_view(messages))


AWKWARD = PROBES  # the probe conversations clude renders through a server's template (probe.py)


@needs_templates
@pytest.mark.parametrize("name", STRICT)
def test_raw_awkward_sequences_do_raise_in_strict_templates(name):
    path = TEMPLATES / f"{name}.jinja"
    failures = 0
    for msgs in AWKWARD.values():
        try:
            render(path, msgs)
        except (jinja2.TemplateError, TypeError):
            failures += 1
    assert failures >= 2, f"{name} accepted raw awkward sequences; the rendering tests would prove nothing"


@needs_templates
@pytest.mark.parametrize("case", sorted(AWKWARD))
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_normalized_renders_and_keeps_every_word(path, case):
    msgs = AWKWARD[case]
    text = render(path, normalize_for(msgs, quirks_for(model_name(path))))
    missing = sorted(w for w in words_of(msgs) if w not in text)
    assert not missing, f"{path.stem} dropped {missing}"


TOOLS = [{"type": "function", "function": {
    "name": "read_file", "description": "Read a file",
    "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}]


@needs_templates
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_normalized_renders_with_tool_definitions(path):
    quirks = quirks_for(model_name(path))
    if not quirks.native_tools:
        pytest.skip(f"{path.stem}: no native tools in its quirks, tool definitions are never sent")
    for case, msgs in AWKWARD.items():
        text = render_chat(path.read_text(encoding="utf-8"), server_view(normalize_for(msgs, quirks)), tools=TOOLS)
        missing = sorted(w for w in words_of(msgs) if w not in text)
        assert not missing, f"{path.stem}/{case} dropped {missing}"


def test_orphan_without_id_and_developer_role():
    got = normalize_messages([{"role": "developer", "content": "dev"}, U("x"), {"role": "tool", "content": "o"}])
    assert got == [S("dev"), U("x\n\nResult of tool call (no id), which matches no call just made:\n\no")]


# ---------------------------------------------------------------- (c) properties

WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyzéß日", min_size=1, max_size=6)
CONTENT = st.one_of(st.none(), st.just(""), st.lists(WORD, min_size=1, max_size=4).map(" ".join))
IDS = st.sampled_from(["call_1", "call_2", "abcdefghi", "x"])


@st.composite
def conversations(draw):
    msgs = []
    for _ in range(draw(st.integers(1, 8))):
        role = draw(st.sampled_from(["system", "user", "assistant", "tool"]))
        m = {"role": role, "content": draw(CONTENT)}
        if role == "assistant" and draw(st.booleans()):
            m["tool_calls"] = [call(draw(IDS), draw(st.sampled_from(["readf", "shell"])),
                                    json.dumps({"arg": draw(WORD)}, ensure_ascii=False))
                               for _ in range(draw(st.integers(1, 2)))]
        if role == "tool":
            m["tool_call_id"] = draw(IDS)
        msgs.append(m)
    return msgs


@needs_templates
@settings(max_examples=40, deadline=None, derandomize=True)
@given(conversations())
def test_property_renders_everywhere_and_keeps_words(msgs):
    before = copy.deepcopy(msgs)
    for path in FILES:
        quirks = quirks_for(model_name(path))
        once = normalize_for(msgs, quirks)
        assert normalize_for(once, quirks) == once
        text = render(path, once)
        missing = sorted(w for w in words_of(msgs) if w not in text)
        assert not missing, f"{path.stem} dropped {missing}"
    assert msgs == before


@settings(max_examples=80, deadline=None, derandomize=True)
@given(conversations(), st.booleans(), st.booleans())
def test_property_shape(msgs, tool_role, system_role):
    out = normalize_messages(msgs, tool_role=tool_role, system_role=system_role, tool_id_style="mistral")
    body = [m for m in out if m["role"] != "system"]
    assert body[0]["role"] == "user"
    assert all(m["role"] != "system" for m in out[1:]) and (system_role or out[0]["role"] != "system")
    roles = [m["role"] for m in body]
    assert all(a != b or a == "tool" for a, b in zip(roles, roles[1:]))
    for m in out:
        assert m["content"] not in (None,) and (m["content"] != "" or m.get("tool_calls"))
    assert tool_role or all(m["role"] != "tool" and not m.get("tool_calls") for m in out)
