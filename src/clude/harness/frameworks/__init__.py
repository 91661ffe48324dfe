"""Test framework adapters, in detection order, and how a command is matched to one."""

from __future__ import annotations

from pathlib import Path

from clude.harness.frameworks.base import Framework, Plan, RunContext
from clude.harness.frameworks.cargo import CargoTest
from clude.harness.frameworks.go import GoTest
from clude.harness.frameworks.js import Jest, Vitest
from clude.harness.frameworks.node import NodeTest
from clude.harness.frameworks.python import Pytest, Unittest

ADAPTERS: list[Framework] = [Pytest(), Unittest(), GoTest(), CargoTest(), NodeTest(), Jest(),
                            Vitest()]
GENERIC = Framework()


def by_name(name: str) -> Framework:
    for adapter in ADAPTERS:
        if adapter.name == name:
            return adapter
    if name == GENERIC.name:
        return GENERIC
    known = ", ".join([a.name for a in ADAPTERS] + [GENERIC.name])
    raise KeyError(f"unknown test framework {name!r} (known: {known})")


def for_command(argv: list[str], root: Path, env: dict[str, str]) -> Framework:
    """The adapter for a user-given command: the one that recognizes it, else the project's own
    framework (a `make test` in a pytest project is still pytest underneath), else generic."""
    for adapter in ADAPTERS:
        if adapter.recognizes(argv, root):
            return adapter
    detected = detect(root, env)
    return detected[0] if detected else GENERIC


def detect(root: Path, env: dict[str, str]) -> tuple[Framework, list[str]] | None:
    for adapter in ADAPTERS:
        argv = adapter.detect(root, env)
        if argv:
            return adapter, argv
    return None


__all__ = ["ADAPTERS", "GENERIC", "Framework", "Plan", "RunContext", "by_name", "detect",
           "for_command"]
