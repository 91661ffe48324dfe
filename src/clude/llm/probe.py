"""Choosing how to normalize messages from the chat template itself. A server that shows its template
(llama-server's /props) lets clude render probe conversations through it at start, as the server will,
and keep the first message normalization under which every probe renders and keeps every word: a model
family quirks.toml does not know works all the same. Pure: the template's text in, Quirks out."""

from __future__ import annotations

import itertools
import json
import resource
import subprocess
import sys
from dataclasses import asdict, replace
from functools import lru_cache

from clude.llm.messages import Quirks, normalize_for
from clude.llm.templates import render_chat, server_view


def _call(cid: str, name: str = "read_file", args: str = '{"path": "alpha.py"}') -> dict:
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}


def _u(text):
    return {"role": "user", "content": text}


def _a(text, *calls):
    return {"role": "assistant", "content": text, **({"tool_calls": list(calls)} if calls else {})}


def _s(text):
    return {"role": "system", "content": text}


def _t(cid, text):
    return {"role": "tool", "tool_call_id": cid, "content": text}


# Conversations an agent's run produces that strict templates refuse or garble: each setting of Quirks
# is exercised by at least one (system turns, tool results, text beside calls, parallel calls, ids).
PROBES: dict[str, list[dict]] = {
    "user_user": [_u("please fix"), _u("the failing test")],
    "assistant_first": [_a("hello there"), _u("fix it")],
    "assistant_assistant": [_u("go"), _a("first thought"), _a("second thought"), _u("more")],
    "system_middle": [_u("task one"), _s("stay inside repo"), _a("okay"), _u("next")],
    "several_systems": [_s("rule alpha"), _s("rule beta"), _u("go"), _s("rule gamma")],
    "call_result_user": [_s("sys words"), _u("read it"), _a("reading now", _call("call_1")),
                         _t("call_1", "file body"), _u("now summarise")],
    "tool_content_none": [_u("run"), _a(None, _call("c_none", "shell", '{"cmd": "ls"}')), _t("c_none", None)],
    "assistant_none_calls": [_u("run"), _a(None, _call("c7", "shell", '{"cmd": "pwd"}')),
                             _t("c7", "slash root"), _a("finished")],
    "parallel": [_u("both"), _a("two calls", _call("p1"), _call("p2", "grep", '{"q": "needle"}')),
                 _t("p1", "first result"), _t("p2", "second result"), _u("and")],
    "orphan_result": [_u("hello"), _a("answer"), _t("ghost_id", "stray output")],
    "call_without_result": [_u("do"), _a("trying", _call("lost_1", "build", '{"target": "all"}')), _u("well")],
    "empty_strings": [_s(""), _u(""), _u("real words"), _a(""), _a("reply"), _u("")],
    "unicode": [_s("règle système"), _u("héllo wörld 日本語 😀"),
                _a("ça va", _call("u1", "écrire", '{"chemin": "fichier"}')), _t("u1", "résultat ok")],
}
PROBE_TOOLS = [{"type": "function", "function": {
    "name": "read_file", "description": "Read a file",
    "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}]

# What may differ from the quirks the model's name gives: tried keeping the tool and system roles if any
# variant does, then with the fewest changes.
_CHANGES = (("tool_role", False), ("system_role", False), ("call_text", "separate"),
            ("parallel_tool_calls", False), ("tool_id_style", "mistral"))


def words_of(messages: list[dict]) -> set[str]:
    """Every word of a conversation: its texts, and its calls' names and arguments."""
    out: set[str] = set()
    for m in messages:
        if isinstance(m.get("content"), str):
            out.update(m["content"].split())
        for c in m.get("tool_calls") or []:
            out.add(c["function"]["name"])
            args = json.loads(c["function"]["arguments"])
            out.update(str(x) for kv in args.items() for x in kv)
    return out


def problem(template: str, quirks: Quirks, *, tools: bool = False, bos: str = "<s>", eos: str = "</s>") -> str | None:
    """Why `template` does not take the probe conversations normalized by `quirks` (a template error,
    or the words it drops), or None when it renders each of them whole."""
    for name, messages in PROBES.items():
        try:
            text = render_chat(template, server_view(normalize_for(messages, quirks)), bos_token=bos,
                               eos_token=eos, tools=PROBE_TOOLS if tools else None)
        except Exception as error:  # whatever a template raises (TemplateError, OverflowError, ...) refuses
            return f"{name}: {type(error).__name__}: {str(error)[:200]}"
        missing = sorted(w for w in words_of(messages) if w not in text)
        if missing:
            return f"{name}: drops {', '.join(missing[:5])}"
    return None


@lru_cache(maxsize=16)
def fitting_quirks(template: str, named: Quirks, bos: str = "<s>", eos: str = "</s>") -> tuple[Quirks, str]:
    """The quirks to use with `template`: `named` (from the model's name) when the probes render whole
    under it, else the variant of it that does with the fewest changes, keeping the tool and system
    roles when a variant does (native tools kept only when the template renders with tool definitions;
    a template that ignores them is llama-server's to fill in). With what was found, in words."""
    first = problem(template, named, tools=named.native_tools, bos=bos, eos=eos)
    if first is None:
        return named, "the chat template renders every probe with the quirks of the model's name"
    changes = [c for c in _CHANGES if getattr(named, c[0]) != c[1]]
    variants = [chosen for size in range(len(changes) + 1) for chosen in itertools.combinations(changes, size)]
    variants.sort(key=lambda chosen: (("tool_role", False) in chosen, ("system_role", False) in chosen, len(chosen)))
    for chosen in variants:  # the first: the named quirks, without native tools
        quirks = replace(named, **dict(chosen))
        for native in dict.fromkeys((quirks.native_tools, False)):
            candidate = replace(quirks, native_tools=native)
            if problem(template, candidate, tools=native, bos=bos, eos=eos) is None:
                said = [f"{k} = {json.dumps(v)}" for k, v in chosen]
                said += [] if native == named.native_tools else ["native_tools = false"]
                return candidate, f"the chat template refused the probes ({first}); {', '.join(said)} renders them"
    return named, f"the chat template refuses the probes under every normalization ({first}); kept as named"


FIT_LIMIT_S = 10.0           # the most fitting a server's template may take
FIT_MEMORY_BYTES = 1 << 30   # and the memory it may use


def fit_bounded(template: str, named: Quirks, bos: str = "<s>", eos: str = "</s>", *,
                limit_s: float = FIT_LIMIT_S) -> tuple[Quirks, str]:
    """fitting_quirks in a child process held to FIT_LIMIT_S seconds and FIT_MEMORY_BYTES: a template
    from a server that loops or grows without end (it is the server's code, run here) keeps the quirks
    of the model's name, and says why."""
    payload = json.dumps({"template": template, "named": asdict(named), "bos": bos, "eos": eos})
    try:
        done = subprocess.run([sys.executable, "-m", "clude.llm.probe"], input=payload, capture_output=True,
                              text=True, timeout=limit_s)
        found = json.loads(done.stdout)
        return Quirks(**found["quirks"]), str(found["note"])
    except subprocess.TimeoutExpired:
        return named, f"the chat template did not render the probes within {limit_s:g} s; kept as named"
    except (OSError, ValueError, TypeError, KeyError):
        return named, "the chat template could not be rendered here; kept as named"


def _main() -> None:
    """`python -m clude.llm.probe`: fitting_quirks of the JSON on stdin, as JSON, memory held."""
    resource.setrlimit(resource.RLIMIT_AS, (FIT_MEMORY_BYTES, FIT_MEMORY_BYTES))
    given = json.load(sys.stdin)
    quirks, note = fitting_quirks(given["template"], Quirks(**given["named"]), given["bos"], given["eos"])
    print(json.dumps({"quirks": asdict(quirks), "note": note}))


if __name__ == "__main__":
    _main()
