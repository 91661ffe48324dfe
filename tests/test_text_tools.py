"""The text tool protocol: prompt, parsing (tolerant forms and problems), rendering."""

import json

from hypothesis import given, settings, strategies as st

from clude.llm.base import ToolCall
from clude.llm.text_tools import (parse_tool_calls, problems_message, render_tool_call,
                                  render_tool_result, tools_prompt)


def tool(name, required=(), **props):
    return {"type": "function", "function": {
        "name": name, "description": f"The {name} tool.",
        "parameters": {"type": "object", "properties": {k: {"type": v} for k, v in props.items()},
                       "required": list(required)}}}


TOOLS = [tool("read_file", ["path"], path="string", limit="integer"),
         tool("write_file", ["path", "content"], path="string", content="string"),
         tool("run", [], argv="array", check="boolean")]
FENCE = "```"


def block(obj, tag="tool_call"):
    return f"{FENCE}{tag}\n{json.dumps(obj)}\n{FENCE}"


def test_prompt_lists_tools_schemas_and_format():
    prompt = tools_prompt(TOOLS)
    assert "```tool_call\n" in prompt and '"arguments"' in prompt
    for name in ("read_file", "write_file", "run"):
        assert f"## {name}" in prompt and f"The {name} tool." in prompt
    assert '{"type":"object","properties":{"path":{"type":"string"}' in prompt  # compact
    assert "final answer" in prompt


def test_prompt_without_tools():
    assert "No tools are available" in tools_prompt([])


def test_round_trip_single_call():
    call = ToolCall(id="call_1", name="read_file", arguments='{"path":"a.py","limit":3}')
    text, calls, problems = parse_tool_calls(render_tool_call(call), TOOLS)
    assert (text, calls, problems) == ("", [call], [])


def test_several_calls_and_text_outside_blocks_preserved():
    reply = ("Let me look first.\n\n" + block({"name": "read_file", "arguments": {"path": "a"}})
             + "\nand then\n" + block({"name": "run", "arguments": {"argv": ["ls"]}}) + "\n\nDone?")
    text, calls, problems = parse_tool_calls(reply, TOOLS)
    assert problems == []
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("call_1", "read_file", '{"path":"a"}'), ("call_2", "run", '{"argv":["ls"]}')]
    assert text == "Let me look first.\n\nand then\n\nDone?"


def test_ordinary_code_fences_are_not_calls():
    reply = ("Here:\n```python\nprint({'name': 'x', 'arguments': {}})\n```\n"
             "```json\n{\"name\": \"package\", \"version\": \"1.0\"}\n```\n"
             "```\nplain block\n```")
    text, calls, problems = parse_tool_calls(reply, TOOLS)
    assert (text, calls, problems) == (reply, [], [])


def test_tag_mentioned_in_prose_is_not_a_call():
    reply = "Models such as Qwen wrap calls in <tool_call> tags."
    assert parse_tool_calls(reply, TOOLS) == (reply, [], [])


def test_reply_cut_off_inside_a_block_is_a_problem():
    _, calls, problems = parse_tool_calls('```tool_call\n{"name": "run", "argu', TOOLS)
    assert calls == [] and "not valid JSON" in problems[0]


def test_json_fence_with_call_object():
    reply = "ok\n" + block({"name": "read_file", "arguments": {"path": "x"}}, tag="json")
    text, calls, problems = parse_tool_calls(reply, TOOLS)
    assert text == "ok" and problems == [] and calls[0].name == "read_file"


def test_hermes_tags_and_arguments_as_string():
    reply = ('<tool_call>\n{"name": "read_file", "arguments": "{\\"path\\": \\"b.txt\\"}"}\n'
             '</tool_call>')
    text, calls, problems = parse_tool_calls(reply, TOOLS)
    assert (text, problems) == ("", [])
    assert calls == [ToolCall(id="call_1", name="read_file", arguments='{"path":"b.txt"}')]


def test_tag_around_fence_unclosed_tag_parameters_alias_and_openai_shape():
    reply = ('<tool_call>\n```json\n{"name": "run", "parameters": {"check": true}}\n```\n</tool_call>'
             '\n<tool_call>{"type": "function", "function": {"name": "run", "arguments": {}}}')
    text, calls, problems = parse_tool_calls(reply, TOOLS)
    assert problems == [] and text == ""
    assert [(c.name, c.arguments) for c in calls] == [("run", '{"check":true}'), ("run", "{}")]


def test_array_and_several_objects_in_one_block():
    body = '[{"name": "run", "arguments": {}}, {"name": "run", "arguments": {"check": false}}]'
    _, calls, _ = parse_tool_calls(f"{FENCE}tool_call\n{body}\n{FENCE}", TOOLS)
    assert [c.id for c in calls] == ["call_1", "call_2"]
    lines = '{"name": "run", "arguments": {}}\n{"name": "run", "arguments": {}}'
    _, calls, _ = parse_tool_calls(f"{FENCE}tool_call\n{lines}\n{FENCE}", TOOLS)
    assert len(calls) == 2


def test_bare_json_reply_for_known_tool():
    text, calls, problems = parse_tool_calls('{"name": "run", "arguments": {}}', TOOLS)
    assert (text, problems, calls[0].name) == ("", [], "run")
    text, calls, _ = parse_tool_calls('{"name": "nope", "arguments": {}}', TOOLS)
    assert calls == [] and text == '{"name": "nope", "arguments": {}}'


def test_argument_containing_fences_and_tags():
    content = "```python\nx = 1\n```\n</tool_call> <tool_call>"
    call = ToolCall(id="call_1", name="write_file",
                    arguments=json.dumps({"path": "a.md", "content": content}, separators=(",", ":")))
    assert parse_tool_calls("Writing.\n" + render_tool_call(call), TOOLS) == ("Writing.", [call], [])


def test_invalid_json_reports_position_and_snippet():
    reply = f'{FENCE}tool_call\n{{"name": "run", "arguments": {{"check": true,}}}}\n{FENCE}'
    text, calls, problems = parse_tool_calls(reply, TOOLS)
    assert text == "" and calls == [] and len(problems) == 1
    msg = problems[0]
    assert "tool call block 1" in msg and "not valid JSON" in msg
    assert "line 1 column 45 (char 44)" in msg and '{"check": true,}}»' in msg and "\n" not in msg


def test_invalid_json_in_json_fence_that_looks_like_a_call():
    reply = f'{FENCE}json\n{{"name": "run", "arguments": {{}}\n{FENCE}'
    _, calls, problems = parse_tool_calls(reply, TOOLS)
    assert calls == [] and "not valid JSON" in problems[0]


def test_invalid_json_in_arguments_string():
    reply = block({"name": "run", "arguments": "{check: true}"})
    _, calls, problems = parse_tool_calls(reply, TOOLS)
    assert calls == [] and '"arguments" of run (a string) is not valid JSON' in problems[0]
    assert "column 2" in problems[0]


def test_missing_name():
    _, calls, problems = parse_tool_calls(block({"arguments": {"path": "a"}}), TOOLS)
    assert calls == [] and 'missing "name"' in problems[0]


def test_unknown_tool_lists_known_ones():
    _, calls, problems = parse_tool_calls(block({"name": "delete_all", "arguments": {}}), TOOLS)
    assert calls == []
    assert problems == ['tool call block 1: unknown tool "delete_all"; '
                        "known tools: read_file, write_file, run"]


def test_arguments_not_an_object():
    _, calls, problems = parse_tool_calls(block({"name": "run", "arguments": ["ls"]}), TOOLS)
    assert calls == [] and "must be a JSON object, got array" in problems[0]


def test_block_not_an_object():
    _, calls, problems = parse_tool_calls(f"{FENCE}tool_call\n42\n{FENCE}", TOOLS)
    assert calls == [] and "expected a JSON object" in problems[0]


def test_missing_required_argument_is_named():
    _, calls, problems = parse_tool_calls(
        block({"name": "write_file", "arguments": {"path": "a"}}), TOOLS)
    assert calls == [] and "missing required argument(s) content" in problems[0]


def test_wrong_top_level_type():
    _, calls, problems = parse_tool_calls(
        block({"name": "read_file", "arguments": {"path": "a", "limit": "ten"}}), TOOLS)
    assert calls == [] and "argument limit of read_file must be integer, got string" in problems[0]
    _, calls, problems = parse_tool_calls(
        block({"name": "read_file", "arguments": {"path": "a", "limit": True}}), TOOLS)
    assert calls == [] and "got boolean" in problems[0]


def test_good_and_bad_blocks_in_one_reply():
    reply = (block({"name": "nope", "arguments": {}}) + "\n"
             + block({"name": "run", "arguments": {}}))
    text, calls, problems = parse_tool_calls(reply, TOOLS)
    assert text == "" and [c.id for c in calls] == ["call_1"] and len(problems) == 1
    assert problems[0].startswith("tool call block 1:")


def test_problems_message_lists_problems_and_format():
    msg = problems_message(["tool call block 1: unknown tool \"x\"; known tools: run"])
    assert '- tool call block 1: unknown tool "x"' in msg and "```tool_call\n" in msg


def test_render_tool_result_names_the_call():
    out = render_tool_result("call_2", "read_file", "line 1\n```\n")
    assert out.startswith('<tool_result id="call_2" name="read_file">\n')
    assert "line 1\n```\n" in out and out.endswith("</tool_result>")


def test_render_keeps_invalid_arguments_visible():
    out = render_tool_call(ToolCall(id="c", name="run", arguments="{oops"))
    assert "{oops" in out
    _, calls, problems = parse_tool_calls(out, TOOLS)
    assert calls == [] and "not valid JSON" in problems[0]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(), json_values, max_size=5), st.text())
def test_any_arguments_round_trip(args, prose):
    free = [{"type": "function", "function": {"name": "t", "parameters": {"type": "object"}}}]
    call = ToolCall(id="call_1", name="t", arguments=json.dumps(args, ensure_ascii=False,
                                                                separators=(",", ":")))
    text, calls, problems = parse_tool_calls(render_tool_call(call), free)
    assert (text, calls, problems) == ("", [call], [])
    assert json.loads(calls[0].arguments) == args


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('`{}[]":,<>/ \nabtoolcal_jsonme\\0\u2028'))) | st.text())
def test_parse_never_raises(text):
    rest, calls, problems = parse_tool_calls(text, TOOLS)
    assert isinstance(rest, str)
    assert all(isinstance(p, str) and len(p.splitlines()) == 1 for p in problems)
    assert all(isinstance(c, ToolCall) for c in calls)
