"""What says a Python project runs its tests with pytest: its pytest settings, pytest among its declared
dependencies (pyproject, requirements files, tox, nox, Pipfile, setup.py) or in its CI workflows, and its
test files importing pytest. Each piece of evidence is a short sentence naming the file."""

from __future__ import annotations

import configparser
import re
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path

_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_MENTIONS = re.compile(r"\bpytest\b")
READ_BYTES = 200_000  # of a file searched for a mention of pytest
HEAD_BYTES = 4000  # of a test file searched for its imports


def pytest_evidence(root: Path, test_files: list[str]) -> list[str]:
    """Every reason found to run this project's tests with pytest (empty: none)."""
    return [*_settings(root), *_dependencies(root), *_imports(root, test_files)]


def _settings(root: Path) -> Iterator[str]:
    if (root / "pytest.ini").is_file():
        yield "pytest.ini"
    for place in ("", "tests/", "test/"):
        if (root / place / "conftest.py").is_file():
            yield f"{place}conftest.py"
    pytest_table = _toml(root / "pyproject.toml").get("tool", {}).get("pytest")
    if isinstance(pytest_table, dict):
        yield "pyproject.toml [tool.pytest" + (".ini_options]" if "ini_options" in pytest_table else "]")
    for name, section in (("tox.ini", "pytest"), ("setup.cfg", "tool:pytest")):
        if section in _ini_sections(root / name):
            yield f"{name} [{section}]"


def _dependencies(root: Path) -> Iterator[str]:
    data = _toml(root / "pyproject.toml")
    project = data.get("project", {}) if isinstance(data.get("project"), dict) else {}
    groups = {**_dict(project.get("optional-dependencies")), **_dict(data.get("dependency-groups"))}
    for group, items in groups.items():
        if _names_pytest(i for i in _list(items) if isinstance(i, str)):
            yield f"pyproject.toml: pytest in the dependency group {group!r}"
    poetry = _dict(_dict(data.get("tool")).get("poetry"))
    poetry_groups = {"dev-dependencies": poetry.get("dev-dependencies"),
                     **{g: _dict(v).get("dependencies") for g, v in _dict(poetry.get("group")).items()}}
    for group, table in poetry_groups.items():
        if _names_pytest(_dict(table)):
            yield f"pyproject.toml: pytest in poetry's {group!r}"
    for path in sorted([*root.glob("requirements*.txt"), *root.glob("requirements/*.txt")]):
        if _names_pytest(file_text(path).splitlines()):
            yield f"{path.relative_to(root)}: pytest"
    for name in ("tox.ini", "noxfile.py", "Pipfile", "setup.py"):
        if _MENTIONS.search(file_text(root / name)):
            yield f"{name} mentions pytest"
    workflows = root / ".github" / "workflows"
    for path in sorted([*workflows.glob("*.yml"), *workflows.glob("*.yaml")]):
        if _MENTIONS.search(file_text(path)):
            yield f"{path.relative_to(root)} runs pytest"


def _imports(root: Path, test_files: list[str]) -> Iterator[str]:
    for rel in test_files[:50]:
        head = file_text(root / rel, HEAD_BYTES)
        if re.search(r"^\s*(import pytest|from pytest |from _pytest)", head, re.MULTILINE):
            yield f"{rel} imports pytest"
            return


def _names_pytest(items: Iterable[str]) -> bool:
    for item in items:
        found = _NAME.match(item)
        if found and (found.group(1).lower() == "pytest" or found.group(1).lower().startswith("pytest-")):
            return True
    return False


def _toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}


def _ini_sections(path: Path) -> list[str]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return []
    return parser.sections()


def file_text(path: Path, limit: int = READ_BYTES) -> str:
    """The first `limit` bytes of a regular file as text ("" for anything else: a FIFO is never opened)."""
    if not path.is_file():
        return ""
    try:
        with open(path, "rb") as f:
            return f.read(limit).decode("utf-8", "replace")
    except OSError:
        return ""


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value) -> list:
    return value if isinstance(value, list) else []
