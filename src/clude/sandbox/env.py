"""The environment the project's tests run with: an allowlist, never the keys of the agent or the worker."""

from __future__ import annotations

from typing import Iterable, Mapping

from clude.sandbox.sandbox import data


def allowed_env(env: Mapping[str, str], pass_env: Iterable[str] = (),
                values: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` cut down to the base names of data/sandbox.toml (PATH, HOME, locale, the interpreters'
    own variables) and the names the project passes on ([test] pass_env), then [test] env's values;
    the bytecode of test runs is not written into the tree."""
    names = [*data()["test_env"], *pass_env]
    out = {name: env[name] for name in names if name in env}
    out.update(values or {})
    out.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    return out
