"""Render a Jinja chat template the way Hugging Face transformers' apply_chat_template does."""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


class _GenerationTag(Extension):
    """A pass-through `{% generation %}...{% endgeneration %}` block (transformers uses it for masks)."""

    tags = {"generation"}

    def parse(self, parser: Any) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller: Any) -> str:
        return caller()


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _tojson(value: Any, ensure_ascii: bool = False, indent: Any = None,
            separators: Any = None, sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent,
                      separators=separators, sort_keys=sort_keys)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


@lru_cache(maxsize=64)
def compile_template(source: str) -> jinja2.Template:
    """Compile a chat template in the sandboxed environment transformers uses."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[_GenerationTag, loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env.from_string(source)


def render_chat(source: str, messages: list[dict], *, tools: list[dict] | None = None,
                add_generation_prompt: bool = True, bos_token: str = "<s>",
                eos_token: str = "</s>", **extra: Any) -> str:
    """Render `messages` through the template text `source`; raises jinja2 TemplateError as transformers would."""
    return compile_template(source).render(
        messages=messages, tools=tools, documents=None,
        add_generation_prompt=add_generation_prompt,
        bos_token=bos_token, eos_token=eos_token, **extra)


def server_view(messages: list[dict]) -> list[dict]:
    """Messages as vLLM and llama.cpp hand them to a template: tool-call arguments JSON text parsed to objects."""
    out = []
    for m in messages:
        if m.get("tool_calls"):
            calls = []
            for c in m["tool_calls"]:
                fn = dict(c.get("function") or {})
                try:
                    parsed = json.loads(fn.get("arguments") or "{}")
                except (TypeError, ValueError):
                    parsed = None
                if isinstance(parsed, dict):
                    fn["arguments"] = parsed
                calls.append({**c, "function": fn})
            m = {**m, "tool_calls": calls}
        out.append(m)
    return out
