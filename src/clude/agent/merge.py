"""Merging a step's commit back into the user's working directory: file by file, three-way, all or nothing."""

from __future__ import annotations

import os
import secrets
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from clude.agent.worktrees import MERGE_LOCK, locate
from clude.gitcli import GitError, git_text, run_git
from clude.store import replacing

REGULAR, EXECUTABLE, SYMLINK, GITLINK = "100644", "100755", "120000", "160000"
# Long conflict markers, so a file's own "=======" lines are not taken for one when describing.
MARKER_SIZE = 32
# git's test for binary content: a NUL byte in the first 8000 bytes.
BINARY_PROBE = 8000
# How much of each conflict describe() quotes.
SHOWN_HUNKS, SHOWN_LINES, SHOWN_CHARS = 2, 3, 80

Side = tuple[str, str] | None  # (git mode, blob id), or None when the file does not exist


@dataclass(frozen=True)
class Hunk:
    line: int  # where it starts in the current file (1-based)
    current: tuple[str, ...]  # the lines the working directory has now
    step: tuple[str, ...]  # the lines the step wrote instead


@dataclass(frozen=True)
class Conflict:
    path: str
    reason: str
    hunks: tuple[Hunk, ...] = ()


@dataclass
class MergeOutcome:
    """What merge_back did: every file applied, or (any conflict) none of them."""

    applied: list[str] = field(default_factory=list)  # paths written or deleted in root
    conflicts: list[str] = field(default_factory=list)
    details: list[Conflict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.conflicts

    def describe(self) -> str:
        """One paragraph for a person or a model: what was merged, or which files conflict and how."""
        if self.ok:
            if not self.applied:
                return "The step's changes were already in the working directory: nothing to merge."
            return (f"Merged the step's changes into the working directory: {len(self.applied)} "
                    f"file(s) ({', '.join(self.applied)}).")
        parts = []
        for c in self.details:
            text = f"{c.path}: {c.reason}"
            for h in c.hunks[:SHOWN_HUNKS]:
                text += (f"; at line {h.line} the step has {_quote(h.step)} where the file now "
                         f"has {_quote(h.current)}")
            if len(c.hunks) > SHOWN_HUNKS:
                text += f"; and {len(c.hunks) - SHOWN_HUNKS} more conflicting place(s)"
            parts.append(text)
        return (f"The step's changes were NOT applied (nothing was written): {len(self.conflicts)} "
                "file(s) conflict with the working directory as it is now (changed since the step "
                "began, e.g. by another step running in parallel) — " + "; ".join(parts) +
                ". Redo the step's change on top of the current files.")


def _quote(lines: tuple[str, ...]) -> str:
    if not lines:
        return "nothing"
    shown = [ln if len(ln) <= SHOWN_CHARS else ln[:SHOWN_CHARS] + "…" for ln in lines[:SHOWN_LINES]]
    more = f" (+{len(lines) - SHOWN_LINES} lines)" if len(lines) > SHOWN_LINES else ""
    return "'" + " / ".join(shown) + "'" + more


@dataclass
class _Action:
    path: str
    kind: str  # "write", "delete" or "chmod"
    mode: str = REGULAR
    data: bytes = b""  # the file's bytes, or a symlink's target


def _changes(top: Path, base: str, result: str) -> list[tuple[str, Side, Side]]:
    """(path, base side, result side) for every file the step changed."""
    out = run_git(top, "diff-tree", "-r", "-z", "--no-renames", base, result).stdout.split(b"\0")
    changes = []
    for meta, path in zip(out[0::2], out[1::2]):
        if not meta.startswith(b":"):
            continue
        old_mode, new_mode, old_id, new_id = meta[1:].decode().split()[:4]
        changes.append((os.fsdecode(path), None if old_mode == "000000" else (old_mode, old_id),
                        None if new_mode == "000000" else (new_mode, new_id)))
    return changes


def _safe(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return bool(parts) and not path.startswith("/") and not {"..", ".", ".git"} & set(parts)


def _blocker(top: Path, path: str) -> str | None:
    """The first parent of path in root that exists but is not a real folder (a file, a symlink)."""
    parents = PurePosixPath(path).parents
    for parent in reversed(list(parents)[:-1]):
        try:
            st = os.lstat(top / parent)
        except FileNotFoundError:
            return None
        if not stat.S_ISDIR(st.st_mode):
            return parent.as_posix()
    return None


class _Root:
    """The files of root as they are now, compared with the blobs of the step's commits."""

    def __init__(self, top: Path):
        self.top = top

    def sides(self, paths: list[str]) -> dict[str, Side | str]:
        """Each path's current side; "folder"/"other" for what cannot be a file; None if absent."""
        sides: dict[str, Side | str] = {}
        regular: dict[str, str] = {}
        for path in paths:
            full = self.top / path
            try:
                st = None if _blocker(self.top, path) else os.lstat(full)
            except (FileNotFoundError, NotADirectoryError):
                st = None
            if st is None:
                sides[path] = None
            elif stat.S_ISLNK(st.st_mode):
                target = os.readlink(os.fsencode(full))
                sides[path] = (SYMLINK, git_text(self.top, "hash-object", "--stdin", input=target))
            elif stat.S_ISREG(st.st_mode):
                regular[path] = EXECUTABLE if st.st_mode & stat.S_IXUSR else REGULAR
            else:
                sides[path] = "folder" if stat.S_ISDIR(st.st_mode) else "other"
        batch = [p for p in regular if "\n" not in p and not p.startswith('"')]
        ids = git_text(self.top, "hash-object", "--stdin-paths",
                       input=os.fsencode("".join(p + "\n" for p in batch))).split() if batch else []
        hashed = dict(zip(batch, ids))
        for path, mode in regular.items():
            blob = hashed.get(path) or git_text(self.top, "hash-object", "--", path)
            sides[path] = (mode, blob)
        return sides

    def blob(self, side: Side, path: str) -> bytes:
        """A blob as it is in a working tree (checkout filters applied; a symlink's target raw)."""
        if side is None:
            return b""
        if side[0] == SYMLINK:
            return self.raw(side)
        return run_git(self.top, "cat-file", "--filters", f"--path={path}", side[1]).stdout

    def raw(self, side: Side) -> bytes:
        return run_git(self.top, "cat-file", "blob", side[1]).stdout if side else b""

    def merge_text(self, path: str, base: Side, theirs: Side) -> bytes | Conflict:
        """git merge-file on temp copies of the three versions in their stored (clean) form, as git
        merges: the merged file as it goes in the working tree, or the Conflict with its hunks."""
        ours = git_text(self.top, "hash-object", "-w", "--", path)  # clean filters applied
        texts = {"current": self.raw((REGULAR, ours)), "base": self.raw(base),
                 "step": self.raw(theirs)}
        if any(b"\0" in t[:BINARY_PROBE] for t in texts.values()):
            return Conflict(path, "a binary file changed both by the step and in the working "
                                  "directory")
        with tempfile.TemporaryDirectory(prefix="clude-merge-") as tmp:
            files = []
            for label, data in texts.items():
                (Path(tmp) / label).write_bytes(data)
                files.append(str(Path(tmp) / label))
            proc = run_git(self.top, "merge-file", "-p", f"--marker-size={MARKER_SIZE}",
                           "-L", "current", "-L", "base", "-L", "step", *files, ok=range(128))
        if proc.returncode:
            return Conflict(path, "the step and the working directory changed the same lines",
                            tuple(_hunks(proc.stdout)))
        merged = git_text(self.top, "hash-object", "-w", "--no-filters", "--stdin",
                          input=proc.stdout)
        return self.blob((REGULAR, merged), path)


def _hunks(merged: bytes) -> list[Hunk]:
    start, middle, end = ("<" * MARKER_SIZE + " current", "=" * MARKER_SIZE,
                          ">" * MARKER_SIZE + " step")
    hunks, line, state = [], 1, None
    current: list[str] = []
    step: list[str] = []
    for text in merged.decode("utf-8", "replace").splitlines():
        if state is None and text == start:
            state, current, step, at = "current", [], [], line
        elif state == "current" and text == middle:
            state = "step"
        elif state == "step" and text == end:
            hunks.append(Hunk(at, tuple(current), tuple(step)))
            state = None
        elif state == "step":
            step.append(text)
        else:
            line += 1
            if state == "current":
                current.append(text)
    return hunks


def _merge_modes(base: str | None, ours: str, theirs: str) -> str | None:
    if ours == (base or ours):
        return theirs
    if theirs in (base, ours):
        return ours
    return None


def _plan_one(root: _Root, path: str, base: Side, ours: Side | str, theirs: Side
              ) -> _Action | Conflict | None:
    """What to do with one changed path: an action, a conflict, or None (nothing to do)."""
    if not _safe(path):
        return Conflict(path, "the step's commit has a path outside the project")
    if isinstance(ours, str):
        return Conflict(path, f"the working directory has a {ours} there, not a file")
    if theirs is not None and theirs[0] == GITLINK:
        return Conflict(path, "the step made a nested git repository there, which is not merged")
    if ours == theirs:
        return None
    if ours == base:  # untouched here since the snapshot: take the step's version
        if theirs is None:
            return _Action(path, "delete")
        return _Action(path, "write", theirs[0], root.blob(theirs, path))
    if ours is None or theirs is None:
        return Conflict(path, "deleted by the step but changed in the working directory"
                        if theirs is None else "changed by the step but deleted in the working "
                                               "directory")
    mode = _merge_modes(base and base[0], ours[0], theirs[0])
    if mode is None or SYMLINK in (mode, ours[0], theirs[0]) or GITLINK in (mode, ours[0]):
        return Conflict(path, "the step and the working directory changed its type or link")
    if base is not None and ours[1] == base[1]:
        return _Action(path, "write", mode, root.blob(theirs, path))
    if base is not None and theirs[1] == base[1] or ours[1] == theirs[1]:
        return None if mode == ours[0] else _Action(path, "chmod", mode)
    merged = root.merge_text(path, base, theirs)
    if isinstance(merged, Conflict):
        return merged
    return _Action(path, "write", mode, merged)


def merge_back(root: Path, base: str, result: str) -> MergeOutcome:
    """Apply the step's changes (base -> result) to root's working directory, file by file, with a
    three-way merge against what root holds now (other steps may have merged first).

    All or nothing: every file is checked first, and if any conflicts nothing at all is written, so
    a failed step leaves root untouched and can be redone on top of the current files. Conflict
    markers never reach root: text merges run on temporary copies. (Only an OS error while
    writing, such as a full disk, can leave a merge half applied; it is raised.)
    """
    top, _ = locate(root)
    changes = _changes(top, base, result)
    with MERGE_LOCK:
        ours = _Root(top)
        current = ours.sides([path for path, _, _ in changes])
        actions: list[_Action] = []
        conflicts: list[Conflict] = []
        for path, base_side, result_side in changes:
            step = _plan_one(ours, path, base_side, current[path], result_side)
            if isinstance(step, Conflict):
                conflicts.append(step)
            elif step is not None:
                actions.append(step)
        deleted = {a.path for a in actions if a.kind == "delete"}
        for a in actions:
            blocker = _blocker(top, a.path) if a.kind == "write" else None
            if blocker and blocker not in deleted:
                conflicts.append(Conflict(a.path, f"the step wrote a file under {blocker}, which is "
                                                  f"not a folder in the working directory"))
        if conflicts:
            conflicts.sort(key=lambda c: c.path)
            return MergeOutcome([], [c.path for c in conflicts], conflicts)
        for a in sorted(actions, key=lambda a: a.kind != "delete"):  # deletions first
            _apply(top, a)
    return MergeOutcome(sorted(a.path for a in actions))


def _apply(top: Path, action: _Action) -> None:
    full = top / action.path
    if action.kind == "delete":
        full.unlink(missing_ok=True)
        parent = full.parent
        while parent != top and not any(parent.iterdir()):  # as git does: no empty folders left
            parent.rmdir()
            parent = parent.parent
        return
    if action.kind == "chmod":
        full.chmod(_permissions(full.stat().st_mode, action.mode))
        return
    if action.mode != SYMLINK:  # new files honour the umask
        with replacing(full, mode=0o777 if action.mode == EXECUTABLE else 0o666, sync=False) as f:
            f.write(action.data)
            if os.path.isfile(full) and not os.path.islink(full):
                os.fchmod(f.fileno(), _permissions(os.stat(full).st_mode, action.mode))
        return
    full.parent.mkdir(parents=True, exist_ok=True)
    tmp = full.parent / f".{full.name}.clude-{secrets.token_hex(4)}.tmp"
    try:
        os.symlink(action.data, os.fsencode(tmp))
        os.replace(tmp, full)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def _permissions(current: int, mode: str) -> int:
    """An existing file's permissions with the executable bits of a git mode, like git sets them."""
    perms = stat.S_IMODE(current)
    if mode == EXECUTABLE:
        return perms | (perms & 0o444) >> 2
    return perms & ~0o111


__all__ = ["Conflict", "GitError", "Hunk", "MergeOutcome", "merge_back"]
