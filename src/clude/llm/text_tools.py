"""The text tool protocol: tool calls as fenced JSON blocks, for models without native tool calls."""

from __future__ import annotations

import json
import re
from typing import Any

from clude.llm.base import ToolCall, ToolSpec

FENCE_TAG = "tool_call"
# Fence info strings that always mean "this is a tool call" (problems are reported for them).
_CALL_TAGS = {"tool_call", "tool_calls", "tool", "tool_use", "function_call", "function"}
# Fence info strings that are a call only when the body looks like one ({"name", "arguments"}).
_MAYBE_TAGS = {"json", "jsonc", ""}

# A fence opens and closes at the start of a line; JSON strings escape newlines, so a
# ``` inside an argument never sits at the start of a line of the block.
_BLOCK_RE = re.compile(
    r"<tool_call>(?P<tag>.*?)(?:</tool_call>|\Z)"
    r"|(?:^|(?<=\n))[ \t]*```[ \t]*(?P<info>[^\n`]*)\n(?P<body>.*?)(?:\n[ \t]*```[ \t]*(?=\n|\Z)|\Z)",
    re.DOTALL)
_INNER_FENCE_RE = re.compile(r"\A\s*```[^\n`]*\n(?P<body>.*?)\n?\s*```\s*\Z", re.DOTALL)

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "object": (dict,), "array": (list,), "null": (type(None),),
}


_LINE_BREAKS = {ord(c): f"\\u{ord(c):04x}" for c in "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}
_LINE_BREAKS.update({ord("\n"): "\\n", ord("\r"): "\\r"})


def _one_line(message: str) -> str:
    return message.translate(_LINE_BREAKS)


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _function(spec: ToolSpec) -> dict:
    """The {"name", "description", "parameters"} part of an OpenAI tool (or a bare one)."""
    fn = spec.get("function") if isinstance(spec, dict) else None
    return fn if isinstance(fn, dict) else (spec if isinstance(spec, dict) else {})


def _tool_names(tools: list[ToolSpec]) -> list[str]:
    return [str(_function(t).get("name")) for t in tools if _function(t).get("name")]


def _format_example() -> str:
    return f'```{FENCE_TAG}\n{{"name": "TOOL_NAME", "arguments": {{"ARGUMENT": "VALUE"}}}}\n```'


def tools_prompt(tools: list[ToolSpec]) -> str:
    """Instructions for the system message: how to call tools, and which tools there are."""
    lines = [
        "# Tools",
        "",
        f"You can call tools. To call one, write a fenced block tagged {FENCE_TAG} holding one "
        "JSON object with the tool's name and its arguments:",
        "",
        _format_example(),
        "",
        "Rules:",
        "- One block per call; to make several calls, write several blocks.",
        "- The JSON must be strict: double quotes, no comments, no trailing commas; write "
        "newlines inside strings as \\n.",
        '- "arguments" is a JSON object that follows the tool\'s parameter schema; give every '
        "required parameter.",
        "- After your calls, stop: the results come back in the next message, each in a "
        "<tool_result> element naming the call.",
        f"- A reply without a {FENCE_TAG} block is your final answer.",
        "",
    ]
    if not tools:
        lines.append("No tools are available right now; answer directly.")
        return "\n".join(lines)
    lines.append("Available tools:")
    for spec in tools:
        fn = _function(spec)
        name = fn.get("name")
        if not name:
            continue
        lines += ["", f"## {name}"]
        if fn.get("description"):
            lines.append(str(fn["description"]).strip())
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        lines.append(f"Parameters (JSON schema): {_compact(params)}")
    return "\n".join(lines)


def _snippet(text: str, pos: int, width: int = 24) -> str:
    start, end = max(0, pos - width), min(len(text), pos + width)
    piece = text[start:end]
    return f"«{'…' if start else ''}{piece}{'…' if end < len(text) else ''}»"


def _json_error(what: str, body: str, err: json.JSONDecodeError) -> str:
    return (f"{what} is not valid JSON: {err.msg} at line {err.lineno} column {err.colno} "
            f"(char {err.pos}), near {_snippet(body, err.pos)}")


def _decode_all(body: str) -> list[Any]:
    """Every JSON value in body (one, or several separated by whitespace); raises on bad JSON."""
    decoder = json.JSONDecoder()
    values, pos = [], 0
    while True:
        while pos < len(body) and body[pos].isspace():
            pos += 1
        if pos >= len(body):
            break
        value, pos = decoder.raw_decode(body, pos)
        values.append(value)
    if not values:
        raise json.JSONDecodeError("Expecting value", body, 0)
    return values


def _looks_like_call(value: Any) -> bool:
    if isinstance(value, dict) and isinstance(value.get("function"), dict):
        value = value["function"]
    return isinstance(value, dict) and "name" in value and (
        "arguments" in value or "parameters" in value)


def _type_ok(value: Any, expected: Any) -> bool:
    names = expected if isinstance(expected, list) else [expected]
    known = [n for n in names if n in _TYPES]
    if not known:
        return True
    for name in known:
        if isinstance(value, bool) and name in ("integer", "number"):
            continue
        if isinstance(value, _TYPES[name]):
            return True
    return False


def _json_type(value: Any) -> str:
    for name, kinds in (("null", (type(None),)), ("boolean", (bool,)), ("integer", (int,)),
                        ("number", (float,)), ("string", (str,)), ("array", (list,))):
        if isinstance(value, kinds):
            return name
    return "object"


def _check_call(obj: Any, tools: list[ToolSpec], where: str) -> tuple[str, str] | str:
    """(name, compact arguments JSON) for a valid call object, else a problem message."""
    if isinstance(obj, dict) and "name" not in obj and isinstance(obj.get("function"), dict):
        obj = obj["function"]
    example = '{"name": "TOOL_NAME", "arguments": {...}}'
    if not isinstance(obj, dict):
        return f"{where}: expected a JSON object like {example}, got {_json_type(obj)}"
    name = obj.get("name")
    if not isinstance(name, str) or not name.strip():
        return f'{where}: missing "name" (the tool to call); write {example}'
    name = name.strip()
    by_name = {str(_function(t).get("name")): _function(t) for t in tools}
    if name not in by_name:
        known = ", ".join(_tool_names(tools)) or "none (no tools are available)"
        return f"{where}: unknown tool {_compact(name)}; known tools: {known}"
    args = obj.get("arguments", obj.get("parameters"))
    if args is None:
        args = {}
    if isinstance(args, str):
        text = args
        if not text.strip():
            args = {}
        else:
            try:
                args = json.loads(text)
            except json.JSONDecodeError as err:
                return _json_error(f'{where}: "arguments" of {name} (a string)', text, err)
    if not isinstance(args, dict):
        return (f'{where}: "arguments" of {name} must be a JSON object, got {_json_type(args)}')
    schema = by_name[name].get("parameters") or {}
    if isinstance(schema, dict):
        required = [k for k in schema.get("required") or [] if isinstance(k, str)]
        missing = [k for k in required if k not in args]
        if missing:
            return (f"{where}: {name} is missing required argument(s) {', '.join(missing)} "
                    f"(required: {', '.join(required)})")
        props = schema.get("properties") or {}
        for key, value in args.items():
            prop = props.get(key) if isinstance(props, dict) else None
            if isinstance(prop, dict) and "type" in prop and not _type_ok(value, prop["type"]):
                expected = prop["type"]
                expected = " or ".join(expected) if isinstance(expected, list) else expected
                return (f"{where}: argument {key} of {name} must be {expected}, "
                        f"got {_json_type(value)}")
    return name, _compact(args)


def _candidates(match: re.Match) -> tuple[str, bool] | None:
    """(JSON body, explicit) of a block that is or may be a call; None for ordinary fences."""
    if match.group("tag") is not None:
        body = match.group("tag")
        if not match.group(0).endswith("</tool_call>") and not body.lstrip().startswith(
                ("{", "[", "```")):
            return None  # an unclosed tag followed by prose: a mention, not a call
        inner = _INNER_FENCE_RE.match(body)
        return (inner.group("body") if inner else body), True
    info = match.group("info").strip().lower()
    info = info.split()[0] if info else ""
    body = match.group("body")
    if info in _CALL_TAGS:
        return body, True
    if info in _MAYBE_TAGS:
        return body, False
    return None


def parse_tool_calls(text: str, tools: list[ToolSpec]) -> tuple[str, list[ToolCall], list[str]]:
    """(text without call blocks, the calls, problems) for a reply written in the text protocol."""
    if not isinstance(text, str):
        return "", [], []
    calls: list[ToolCall] = []
    problems: list[str] = []
    pieces: list[str] = []
    last = 0
    block_no = 0
    for match in _BLOCK_RE.finditer(text):
        found = _candidates(match)
        if found is None:
            continue
        body, explicit = found
        try:
            values = _decode_all(body)
        except (json.JSONDecodeError, RecursionError) as err:
            looks = '"name"' in body and ('"arguments"' in body or '"parameters"' in body)
            if not explicit and not looks:
                continue
            block_no += 1
            where = f"tool call block {block_no}"
            if isinstance(err, json.JSONDecodeError):
                problems.append(_json_error(where, body, err))
            else:
                problems.append(f"{where}: JSON nested too deeply")
            pieces.append(text[last:match.start()])
            last = match.end()
            continue
        if len(values) == 1 and isinstance(values[0], list) and values[0]:
            values = values[0]  # a JSON array of calls
        if not explicit and not all(_looks_like_call(v) for v in values):
            continue
        pieces.append(text[last:match.start()])
        last = match.end()
        for value in values:
            block_no += 1
            checked = _check_call(value, tools, f"tool call block {block_no}")
            if isinstance(checked, str):
                problems.append(checked)
            else:
                calls.append(ToolCall(id=f"call_{len(calls) + 1}", name=checked[0],
                                      arguments=checked[1]))
    pieces.append(text[last:])
    if block_no == 0:
        bare = _bare_call(text, tools)
        if bare is not None:
            return "", [bare], []
    rest = "\n\n".join(p.strip() for p in pieces if p.strip())
    return rest.strip(), calls, [_one_line(p) for p in problems]


def _bare_call(text: str, tools: list[ToolSpec]) -> ToolCall | None:
    """A whole reply that is nothing but one call object for a known tool (no fence)."""
    stripped = text.strip()
    if not stripped.startswith("{"):
        return None
    try:
        value = json.loads(stripped)
    except (json.JSONDecodeError, RecursionError):
        return None
    if not _looks_like_call(value):
        return None
    checked = _check_call(value, tools, "tool call")
    if isinstance(checked, str):
        return None
    return ToolCall(id="call_1", name=checked[0], arguments=checked[1])


def render_tool_call(call: ToolCall) -> str:
    """The fenced block for a call, as the model would write it."""
    try:
        args: Any = json.loads(call.arguments) if call.arguments.strip() else {}
    except json.JSONDecodeError:
        args = call.arguments  # kept as written, so the history shows what went wrong
    return f"```{FENCE_TAG}\n{_compact({'name': call.name, 'arguments': args})}\n```"


def _attr(value: str) -> str:
    return (str(value).replace("&", "&amp;").replace('"', "&quot;")
            .replace("<", "&lt;").replace(">", "&gt;"))


def render_tool_result(call_id: str, name: str, content: str) -> str:
    """The text of a tool's result, naming the call it answers."""
    body = "" if content is None else str(content)
    return (f'<tool_result id="{_attr(call_id)}" name="{_attr(name)}">\n'
            f"{body}\n</tool_result>")


def problems_message(problems: list[str]) -> str:
    """The user turn that tells the model what was wrong with its tool calls."""
    listed = "\n".join(f"- {p}" for p in problems) or "- (no details)"
    return (
        "Some tool calls in your last reply could not be run:\n"
        f"{listed}\n\n"
        f"Write each of those calls again, one fenced block per call, tagged {FENCE_TAG}, "
        "holding strict JSON (double quotes, no trailing commas):\n\n"
        f"{_format_example()}\n\n"
        "Use only the tools listed in the instructions, with every required argument. "
        f"A reply without a {FENCE_TAG} block is taken as your final answer.")
