"""Normalize OpenAI-style message lists so strict local chat templates accept them, losing no content."""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable

from clude.llm.base import Message

CONTINUE = "(continue)"  # user text used only where a template demands a user turn the agent never wrote
CALLS_ONLY = "(tool calls only)"  # assistant text used only where a template needs a text turn after tools
NO_OUTPUT = "(no output)"
_ALNUM = re.compile(r"^[A-Za-z0-9]{9}$")


@dataclass(frozen=True)
class Quirks:
    """How one model family's chat template wants messages (see data/quirks.toml)."""

    tool_role: bool = True  # the template renders role "tool" and assistant tool_calls
    system_role: bool = True  # the template accepts a leading system message
    tool_id_style: str | None = None  # None keeps ids; "mistral": exactly 9 alphanumerics
    native_tools: bool = True  # send tool definitions and parse native tool calls
    parallel_tool_calls: bool = True  # False: one call per assistant turn (Llama 3)
    call_text: str = "inline"  # "separate": the template drops text beside tool calls (see _separate_text)


def _load_entries(text: str) -> tuple[dict, list[dict]]:
    data = tomllib.loads(text)
    return data.get("default", {}), list(data.get("model", []))


def _settings(entry: dict) -> dict:
    names = {f.name for f in fields(Quirks)}
    out = {k: v for k, v in entry.items() if k in names}
    if out.get("tool_id_style") in ("", "keep"):
        out["tool_id_style"] = None
    return out


def _matches(entry: dict, model_name: str) -> bool:
    name = model_name.lower()
    globs = entry.get("patterns", []) + ([entry["pattern"]] if "pattern" in entry else [])
    if any(fnmatch.fnmatchcase(name, g.lower()) for g in globs):
        return True
    return "regex" in entry and re.search(entry["regex"], model_name, re.IGNORECASE) is not None


@lru_cache(maxsize=1)
def _builtin_quirks():
    """The [default] settings and the entries of data/quirks.toml, read once."""
    text = resources.files("clude.llm").joinpath("data/quirks.toml").read_text(encoding="utf-8")
    return _load_entries(text)


def quirks_for(model_name: str, overrides: Iterable[dict] | None = None) -> Quirks:
    """The Quirks of the first entry matching `model_name` (config `overrides` first, then built-ins)."""
    default, entries = _builtin_quirks()
    base = replace(Quirks(), **_settings(default))
    for entry in [*(overrides or []), *entries]:
        if _matches(entry, model_name):
            return replace(base, **_settings(entry))
    return base


def normalize_for(messages: list[Message], quirks: Quirks) -> list[Message]:
    """normalize_messages with every setting taken from `quirks`."""
    return normalize_messages(messages, tool_role=quirks.tool_role, system_role=quirks.system_role,
                              tool_id_style=quirks.tool_id_style,
                              parallel_tool_calls=quirks.parallel_tool_calls, call_text=quirks.call_text)


def _text(content: Any) -> Any:
    """Content as text: None -> "", text parts joined; a list holding non-text parts is kept as is."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return "\n\n".join(str(p.get("text", "")) for p in content)
    if isinstance(content, list):
        return content
    return str(content)


def _blank(content: Any) -> bool:
    """Content with nothing in it: None, "", [] or whitespace only (a template shows nothing of it)."""
    return content is None or (isinstance(content, (str, list)) and not
                               (content.strip() if isinstance(content, str) else content))


def _join(*parts: Any) -> Any:
    texts = [p for p in parts if not _blank(p)]
    if any(not isinstance(p, str) for p in texts):  # multimodal parts: concatenate part lists
        out: list = []
        for p in texts:
            out.extend(p if isinstance(p, list) else [{"type": "text", "text": p}])
        return out
    return "\n\n".join(texts)


def _call(raw: Any, index: int) -> dict:
    call = raw if isinstance(raw, dict) else {}
    fn = call.get("function") or {}
    args = fn.get("arguments")
    if not isinstance(args, str):
        args = "{}" if args is None else json.dumps(args, ensure_ascii=False)
    call_id = call.get("id") or f"call_{index}"
    return {"id": str(call_id), "type": "function",
            "function": {"name": str(fn.get("name") or "unknown_tool"), "arguments": args}}


def _merge_same_roles(items: list[Message]) -> list[Message]:
    out: list[Message] = []
    for m in items:
        prev = out[-1] if out else None
        if prev and m["role"] == prev["role"] and m["role"] in ("user", "assistant"):
            prev["content"] = _join(prev["content"], m["content"])
            if m.get("tool_calls"):
                prev["tool_calls"] = prev.get("tool_calls", []) + m["tool_calls"]
        else:
            out.append(m)
    return out


def _result_text(call_id: str, name: str | None, content: Any, orphan: bool) -> Any:
    where = f"tool call {call_id} ({name})" if name else f"tool call {call_id}"
    head = f"Result of {where}" + (", which matches no call just made:" if orphan else ":")
    return _join(head, content if not _blank(content) else NO_OUTPUT)


def _pair_tools(items: list[Message]) -> list[Message]:
    """Tool messages follow the assistant turn whose calls they answer, in call order, one per call."""
    out: list[Message] = []
    i = 0
    while i < len(items):
        m = items[i]
        i += 1
        if m["role"] == "tool":  # not right after an assistant turn with calls
            out.append({"role": "user", "content": _result_text(
                str(m.get("tool_call_id") or "(no id)"), m.get("name"), m["content"], orphan=True)})
            continue
        out.append(m)
        if not (m["role"] == "assistant" and m.get("tool_calls")):
            continue
        seen: set[str] = set()
        for k, c in enumerate(m["tool_calls"]):  # ids repeated within one turn could not be paired
            while c["id"] in seen:
                c["id"] = f"{c['id']}_{k}"
            seen.add(c["id"])
        answers: dict[str, Message] = {}
        orphans: list[Message] = []
        names = {c["id"]: c["function"]["name"] for c in m["tool_calls"]}
        while i < len(items) and items[i]["role"] == "tool":
            t = items[i]
            i += 1
            tid = str(t.get("tool_call_id") or "(no id)")
            if tid in names and tid not in answers:
                answers[tid] = t
            else:
                orphans.append({"role": "user", "content": _result_text(
                    tid, t.get("name") or names.get(tid), t["content"], orphan=True)})
        for c in m["tool_calls"]:
            t = answers.get(c["id"]) or {"role": "tool", "content": ""}
            content = t["content"] if not _blank(t["content"]) else (
                NO_OUTPUT if c["id"] in answers else
                f"No result was returned for tool call {c['id']} ({c['function']['name']}).")
            out.append({**t, "role": "tool", "tool_call_id": c["id"], "content": content})
        out.extend(orphans)
    return out


def _calls_as_text(m: Message) -> Message:
    lines = [f"Tool call {c['function']['name']} (id {c['id']}) with arguments: "
             f"{c['function']['arguments']}" for c in m["tool_calls"]]
    return {"role": "assistant", "content": _join(m["content"], "\n".join(lines))}


def _textualize(items: list[Message]) -> list[Message]:
    """tool_role=False: calls become assistant text, results become user turns naming their call."""
    names: dict[str, str] = {}
    out: list[Message] = []
    for m in items:
        if m["role"] == "assistant" and m.get("tool_calls"):
            names.update({c["id"]: c["function"]["name"] for c in m["tool_calls"]})
            out.append(_calls_as_text(m))
        elif m["role"] == "tool":
            tid = m["tool_call_id"]
            out.append({"role": "user", "content": _result_text(tid, names.get(tid), m["content"], False)})
        else:
            out.append(m)
    return out


def _mistral_id(original: str, taken: set[str]) -> str:
    if _ALNUM.match(original) and original not in taken:
        return original
    salt = 0
    while True:
        digest = hashlib.sha256(f"{original}\0{salt}".encode()).hexdigest()[:9]
        if digest not in taken:
            return digest
        salt += 1


def _restyle_ids(items: list[Message], style: str | None) -> list[Message]:
    if style != "mistral":
        return items
    mapping: dict[str, str] = {}
    for m in items:
        for c in m.get("tool_calls") or []:
            if c["id"] not in mapping:
                mapping[c["id"]] = _mistral_id(c["id"], set(mapping.values()))
            c["id"] = mapping[c["id"]]
        if m["role"] == "tool":
            m["tool_call_id"] = mapping.get(m["tool_call_id"], m["tool_call_id"])
    return items


def _split_parallel(items: list[Message]) -> list[Message]:
    """One call per assistant turn, each followed by its result (templates refusing parallel calls)."""
    out: list[Message] = []
    i = 0
    while i < len(items):
        m = items[i]
        i += 1
        calls = m.get("tool_calls") or []
        if len(calls) < 2:
            out.append(m)
            continue
        results = {}
        while i < len(items) and items[i]["role"] == "tool":
            results[items[i]["tool_call_id"]] = items[i]
            i += 1
        for n, c in enumerate(calls):
            out.append({"role": "assistant", "content": m["content"] if n == 0 else "", "tool_calls": [c]})
            out.append(results[c["id"]])
    return out


def _separate_text(items: list[Message]) -> list[Message]:
    """For templates that drop the text beside tool calls and count only text turns for alternation
    (Mistral): between two user turns the assistant side keeps exactly one text turn holding all its
    text, at its last text turn's place (or first, when only call turns carried text)."""
    out: list[Message] = []
    i = 0
    while i < len(items):
        if items[i]["role"] == "user":
            out.append(items[i])
            i += 1
            continue
        j = i
        while j < len(items) and items[j]["role"] != "user":
            j += 1
        group, followed_by_user = items[i:j], j < len(items)
        texts = [m["content"] for m in group if m["role"] == "assistant" and not _blank(m["content"])]
        text_turns = [k for k, m in enumerate(group) if m["role"] == "assistant" and not m.get("tool_calls")]
        kept = [dict(m, content="") if m.get("tool_calls") else m for m in group
                if m["role"] != "assistant" or m.get("tool_calls")]
        if texts or followed_by_user:
            text = {"role": "assistant", "content": _join(*texts) or CALLS_ONLY}
            if text_turns:
                at = sum(1 for m in group[:text_turns[-1]] if m["role"] != "assistant" or m.get("tool_calls"))
            else:
                at = 0 if texts else len(kept)
            kept.insert(at, text)
        out.extend(kept)
        i = j
    return out


def normalize_messages(messages: list[Message], *, tool_role: bool = True, system_role: bool = True,
                       tool_id_style: str | None = None, parallel_tool_calls: bool = True,
                       call_text: str = "inline") -> list[Message]:
    """A copy of `messages` that strict chat templates accept, with every piece of content kept.

    One system message first (or, with system_role=False, its text at the start of the first user
    turn); then user/assistant strictly alternating from a user turn, same-role neighbours merged
    with a blank line. Where the first turn is the assistant's, or there is no user turn at all, a
    user turn reading "(continue)" is put first: strict templates (Gemma, Mistral, Qwen3.5) refuse
    a conversation that does not start with, or lacks, a user turn, and a neutral word adds no
    instruction. Tool results sit after the assistant turn whose calls they answer, one per call in
    call order; a result answering no call there becomes user text saying so; a call without a
    result gets a tool message saying none was returned. With tool_role=False calls become
    assistant text and results user turns naming the call. No content is None or empty, except
    the "" content of a tool-call turn (tool_role=True), which every template accepts and several
    (Granite, Phi, gpt-oss) need instead of None.
    """
    items: list[Message] = []
    system: list[Any] = []
    for raw in copy.deepcopy(list(messages)):
        m = dict(raw)
        m["content"] = _text(m.get("content"))
        role = m.get("role")
        if role == "system" or role == "developer":
            system.append(m["content"])
            continue
        if role == "assistant":
            calls = [_call(c, len(items) * 100 + k) for k, c in enumerate(m.pop("tool_calls", None) or [])]
            if calls:
                m["tool_calls"] = calls
        elif role not in ("user", "tool"):
            m["role"] = "user"
        if m["role"] != "tool" and _blank(m["content"]) and not m.get("tool_calls"):
            continue
        items.append(m)
    items = _pair_tools(_merge_same_roles(items))
    if not tool_role:
        items = _textualize(items)
    items = _merge_same_roles(items)
    if not items or items[0]["role"] != "user" or not any(m["role"] == "user" for m in items):
        items.insert(0, {"role": "user", "content": CONTINUE})
    if tool_role:
        items = _restyle_ids(items, tool_id_style)
        if not parallel_tool_calls:
            items = _split_parallel(items)
        if call_text == "separate":
            items = _separate_text(items)
    system_text = _join(*system)
    if system_text and system_role:
        items.insert(0, {"role": "system", "content": system_text})
    elif system_text:
        items[0] = {**items[0], "content": _join(system_text, items[0]["content"])}
    return items
