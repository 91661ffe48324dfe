"""The files that judge a `clude run`: what the tests and their configuration were when the run began,
so that verification can refuse a change to them (unless the run allows test changes)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from clude.harness.protected import (ProtectedChange, Touch, has_sections, protected_changes, protected_reason,
                                    folders_of_tests)

# Folders never walked: version control, clude, the project's own environments and build output.
SKIP = frozenset({".git", ".clude", "node_modules", ".venv", "venv", "__pycache__", ".pytest_cache",
                  ".mypy_cache", ".ruff_cache", ".tox", ".nox", "target", "dist", "build"})
_DIGEST = "sha256:"


def _candidates(root: Path) -> list[str]:
    out = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIP]
        rel = Path(folder).relative_to(root).as_posix()
        for name in files:
            path = name if rel == "." else f"{rel}/{name}"
            top = name.endswith(".py") or path.count("/") == 1 and name == "__init__.py"
            if top or has_sections(path) or protected_reason(path) is not None:
                out.append(path)
    return out


def snapshot(root: Path) -> dict[str, str]:
    """{path: what it held} for every file that could judge a run: the content of files with test
    sections, a digest of the rest (test files, conftest.py, runner configs, root modules)."""
    taken: dict[str, str] = {}
    for path in _candidates(root):
        try:
            data = (root / path).read_bytes()
        except OSError:
            continue
        if has_sections(path):
            taken[path] = data.decode("utf-8", "surrogateescape")
        else:
            taken[path] = _DIGEST + hashlib.sha256(data).hexdigest()
    return taken


def changes(root: Path, before: dict[str, str], *, python: str | None = None) -> list[ProtectedChange]:
    """The protected files that differ from `before` (added, changed or deleted); a new module on the
    test path shadowing one that `python` (the tests' interpreter) imports counts too."""
    from clude.harness.frameworks.base import importable_modules

    now = snapshot(root)
    touched = []
    for path in sorted(set(before) | set(now)):
        old, new = before.get(path), now.get(path)
        if old == new:
            continue
        touched.append(Touch(path, _content(root, path, old, current=False), _content(root, path, new, current=True)))
    return protected_changes(touched, importable=importable_modules(python) if python else frozenset(),
                             path_dirs=folders_of_tests(now))


def _content(root: Path, path: str, held: str | None, *, current: bool) -> bytes | None:
    if held is None:
        return None
    if not held.startswith(_DIGEST):
        return held.encode("utf-8", "surrogateescape")
    if current:
        try:
            return (root / path).read_bytes()
        except OSError:
            return None
    return held.encode()  # only a digest is kept: whole-file rules look at the path, not the content
