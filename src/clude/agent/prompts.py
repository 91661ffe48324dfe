"""The agent's prompts: Jinja2 templates kept in data/prompts.toml, rendered by name."""

from __future__ import annotations

import functools
import tomllib
from importlib import resources

import jinja2


@functools.cache
def _templates() -> dict[str, jinja2.Template]:
    text = resources.files("clude.agent").joinpath("data/prompts.toml").read_text(encoding="utf-8")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False,
                             autoescape=False)
    return {name: env.from_string(source.strip()) for name, source in tomllib.loads(text).items()}


def render(name: str, **values) -> str:
    """The prompt `name` with `values` filled in (a missing value is an error, not a blank)."""
    try:
        template = _templates()[name]
    except KeyError:
        raise KeyError(f"no prompt {name!r} in clude/agent/data/prompts.toml") from None
    return template.render(**values).strip()
