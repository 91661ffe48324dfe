"""What a worker checks in an agent's change before any test runs: file names, files that define,
configure or hook into the tests (refused unless the task may change tests), and conflict markers left
in the files it touches; and, when test changes are allowed, the change with every such file as the
upstream has it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from clude.gitsafe import ISOLATED
from clude.harness.protected import (ProtectedChange, Touch, conflict_markers, has_sections, protected_changes,
                                    folders_of_tests)
from clude.team.protocol.git import Repo

DIFF_BYTES = 6000   # of the refused files' diff, kept in the failure record
READ_BYTES = 1 << 20  # of a changed file, read to look for conflict markers (a larger one is not read)
JUDGE_INDEX = "clude-judge-index"
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class Review:
    refused: str | None = None                  # why the change is refused (a failed attempt), or None
    detail: str = ""                            # the diff or the marker lines, for the failure record
    protected: list[ProtectedChange] = field(default_factory=list)

    @property
    def changed_tests(self) -> list[str]:
        return [p.path for p in self.protected]


def review(land: Repo, base: str, commit: str, *, allow_tests: bool, extra_globs: Sequence[str] = (),
           importable: frozenset[str] = frozenset()) -> Review:
    """The checks of the change base..commit in land (the rules are pure: clude.harness.protected).
    `importable`: the modules the tests' interpreter imports, which a new module on the path shadows."""
    paths = land.changed_files(base, commit)
    bad = [p for p in paths if _UNPRINTABLE.search(p) or not _utf8(p)]
    if bad:
        shown = ", ".join(ascii(p) for p in bad[:5])
        return Review(f"the change has {len(bad)} file name(s) that are not printable UTF-8: {shown}: "
                      "name files with printable characters only", shown)
    sections = [p for p in paths if has_sections(p)]  # read whole, whatever their size
    others = [p for p in paths if p not in sections]
    before = {**land.blobs(base, others, max_bytes=READ_BYTES), **land.blobs(base, sections)}
    after = {**land.blobs(commit, others, max_bytes=READ_BYTES), **land.blobs(commit, sections)}
    marked = {}
    for path in paths:
        new, old = after.get(path), before.get(path)
        if not new or b"\0" in new[:8000]:
            continue
        lines = conflict_markers(new.decode("utf-8", "replace"))
        if lines and len(lines) > len(conflict_markers((old or b"").decode("utf-8", "replace"))):
            marked[path] = lines
    if marked:
        where = "; ".join(f"{p} (lines {', '.join(map(str, ls[:6]))})" for p, ls in marked.items())
        return Review(f"the change leaves git conflict markers in {len(marked)} file(s): {where}: resolve "
                      "them (keep both sides' intent), never commit the markers", where)
    tree = land.files(commit)
    protected = protected_changes([Touch(p, before.get(p), after.get(p)) for p in paths], extra_globs,
                                  importable=importable, path_dirs=folders_of_tests(tree))
    if protected and not allow_tests:
        listed = "; ".join(f"{p.path} ({p.why})" for p in protected[:12])
        more = f" and {len(protected) - 12} more" if len(protected) > 12 else ""
        diff = land.git("diff", "--no-color", "--no-ext-diff", "--no-textconv", base, commit, "--",
                        *_literal(p.path for p in protected), env=ISOLATED)
        cut = diff if len(diff) <= DIFF_BYTES else diff[:DIFF_BYTES] + f"\n[… {len(diff) - DIFF_BYTES} more bytes]"
        return Review(f"the change touches files that define, configure or hook into the tests, and this "
                      f"task does not allow test changes: {listed}{more}. Change the code, not the tests "
                      "(a task made with --allow-tests may change tests)", cut, protected)
    return Review(None, "", protected)


def judged_commit(land: Repo, base: str, commit: str, protected: list[ProtectedChange]) -> str:
    """`commit` with every protected file as it is at `base` (added ones removed): what the upstream's
    tests judge when a task may change tests."""
    index = {"GIT_INDEX_FILE": str(land.git_dir / JUDGE_INDEX), **ISOLATED}
    land.git("read-tree", commit, env=index)
    paths = [p.path for p in protected]
    existing = {path for path, data in land.blobs(base, paths, max_bytes=0).items() if data is not None}
    gone = [p for p in paths if p not in existing]
    if gone:
        land.git("rm", "-q", "--cached", "--ignore-unmatch", "--", *_literal(gone), env=index)
    if existing:
        land.git("reset", "-q", base, "--", *_literal(sorted(existing)), env=index, ok=(0, 1))
    tree = land.git("write-tree", env=index)
    return land.git("commit-tree", tree, "-p", base, "-m", "the change, judged by the upstream's tests")


def _utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
        return True
    except UnicodeEncodeError:  # a name git gave us as bytes that are not UTF-8 (surrogate-escaped)
        return False


def _literal(paths) -> list[str]:
    """Pathspecs that match exactly these paths (no glob characters read as patterns)."""
    return [f":(literal){path}" for path in paths]
