"""Verification cache: an unchanged tree, command and sample give back the previous Verdict."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tomllib
from functools import lru_cache
from pathlib import Path

from pydantic import ValidationError

from clude.harness.verdict import Status, Verdict
from clude.store import atomic_write_text

# Statuses worth remembering: the same tree gives the same answer. A timeout, a crash or an
# interruption may not happen again, so they are always run anew.
CACHEABLE = frozenset({Status.PASSED, Status.FAILED, Status.NO_TESTS, Status.ERROR})
_IGNORE = Path(__file__).parent / "data" / "cache_ignore.toml"


@lru_cache(maxsize=1)
def _ignored() -> tuple[frozenset[str], tuple[str, ...]]:
    data = tomllib.loads(_IGNORE.read_text(encoding="utf-8"))
    return frozenset(data["dirs"]), tuple(data["suffixes"])


def _listed_files(root: Path) -> list[str]:
    """Tracked and untracked-not-ignored files (git), or every file when root is not a git work tree."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=root, capture_output=True, timeout=60)
        if out.returncode == 0:
            return sorted(set(p for p in out.stdout.decode("utf-8", "surrogateescape").split("\0") if p))
    except (OSError, subprocess.TimeoutExpired):
        pass
    dirs, _ = _ignored()
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in dirs]
        rel = os.path.relpath(dirpath, root)
        found += [name if rel == "." else f"{rel}/{name}" for name in filenames]
    return sorted(found)


def tree_digest(root: Path) -> str:
    """A hash of the path and contents of every file that can change a test result."""
    dirs, suffixes = _ignored()
    h = hashlib.blake2b(digest_size=20)
    for rel in _listed_files(root):
        parts = rel.split("/")
        if dirs.intersection(parts[:-1]) or rel.endswith(suffixes):
            continue
        path = root / rel
        h.update(rel.encode("utf-8", "surrogateescape") + b"\0")
        try:
            if path.is_symlink():
                h.update(b"link:" + os.readlink(path).encode("utf-8", "surrogateescape"))
            else:
                h.update(hashlib.blake2b(path.read_bytes(), digest_size=20).digest())
        except OSError:
            h.update(b"<missing>")
        h.update(b"\0")
    return h.hexdigest()


def cache_key(tree: str, **parts: object) -> str:
    blob = json.dumps({"tree": tree, **parts}, sort_keys=True, default=str)
    return hashlib.blake2b(blob.encode(), digest_size=20).hexdigest()


class VerdictCache:
    def __init__(self, directory: Path):
        self.directory = directory

    def get(self, key: str) -> Verdict | None:
        """The cached Verdict, or None when absent or unreadable (a corrupt entry is not fatal)."""
        path = self.directory / f"{key}.json"
        try:
            verdict = Verdict.model_validate_json(path.read_bytes())
        except (OSError, ValueError, ValidationError):
            return None
        return verdict.model_copy(update={"cached": True})

    def put(self, key: str, verdict: Verdict) -> None:
        if verdict.status in CACHEABLE:
            atomic_write_text(self.directory / f"{key}.json", verdict.model_dump_json())
