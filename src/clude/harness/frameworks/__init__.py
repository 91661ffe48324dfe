"""Test framework adapters, in detection order, and how a command is matched to one."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

from clude.harness.frameworks.base import Framework, Plan, RunContext

# (module, class) in detection order. A module is imported only when a search reaches it, so a
# pytest project never pays for the node, go or cargo adapters.
_ORDER = [("python", "Pytest"), ("python", "Unittest"), ("go", "GoTest"), ("cargo", "CargoTest"),
          ("node", "NodeTest"), ("js", "Jest"), ("js", "Vitest"), ("tapout", "TapeTest"),
          ("tapout", "MochaTest")]
_loaded: list[Framework] = []
GENERIC = Framework()


def adapters() -> Iterator[Framework]:
    """Every adapter, in detection order."""
    for index, (module, cls) in enumerate(_ORDER):
        if index == len(_loaded):
            _loaded.append(getattr(importlib.import_module(f"{__name__}.{module}"), cls)())
        yield _loaded[index]


def by_name(name: str) -> Framework:
    for adapter in [*adapters(), GENERIC]:
        if adapter.name == name:
            return adapter
    known = ", ".join(a.name for a in [*adapters(), GENERIC])
    raise KeyError(f"unknown test framework {name!r} (known: {known})")


def for_command(argv: list[str], root: Path, env: dict[str, str],
                named: str | None = None) -> Framework:
    """The adapter for a user-given command: the one named in the configuration, else the one that
    recognizes the command, else the project's own framework (a `make test` in a pytest project is
    still pytest underneath; every adapter leaves a command it cannot instrument as it is, and reads
    the JUnit XML named by [test] junit, if any), else generic."""
    if named:
        return by_name(named)
    for adapter in adapters():
        if adapter.recognizes(argv, root):
            return adapter
    detected = detect(root, env)
    return detected[0] if detected else GENERIC


def detect(root: Path, env: dict[str, str]) -> tuple[Framework, list[str]] | None:
    for adapter in adapters():
        argv = adapter.detect(root, env)
        if argv:
            return adapter, argv
    return None


__all__ = ["GENERIC", "Framework", "Plan", "RunContext", "adapters", "by_name", "detect",
           "for_command"]
