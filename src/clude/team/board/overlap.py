"""Keeping overlapping work apart (pure): a task names the files it is expected to touch (`files`: from
its plan, or learned from its earlier attempts' changes); a worker does not take a task whose files
overlap those of a task being worked on or waiting in the merge queue while a task apart from them is
ready. Two agents editing the same file at once is how merge conflicts, and wasted runs, are made."""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # board.py reads tasks, whose files are normalized here
    from clude.team.board.board import Board

MAX_FILES = 50  # files kept per task: a change touching more says little about where the next one goes
_GLOB = set("*?[")


def normal(path: str) -> str:
    """A path as tasks write it: POSIX, relative, no "./"; a trailing "/" (a folder) kept."""
    text = str(path).strip().replace("\\", "/")
    folder = text.endswith("/")
    clean = str(PurePosixPath(text.lstrip("/"))) if text.strip("/") else ""
    clean = "" if clean == "." else clean
    return clean + "/" if folder and clean else clean


def _covers(pattern: str, path: str) -> bool:
    if pattern == path:
        return True
    if pattern.endswith("/"):
        return path.startswith(pattern) or path == pattern.rstrip("/")
    if _GLOB & set(pattern):
        return fnmatchcase(path, pattern)
    return path == pattern


def overlap(a: Iterable[str], b: Iterable[str]) -> bool:
    """Whether two tasks' files meet: a file in both, a file inside a folder ("src/parser/") or matched
    by a glob ("src/*.py") of the other; two folders or globs meet when one covers the other's text."""
    left, right = [p for p in map(normal, a) if p], [p for p in map(normal, b) if p]
    return any(_covers(x, y) or _covers(y, x) for x in left for y in right)


def busy_files(board: Board, *, but: str | None = None) -> list[list[str]]:
    """The files of each task being worked on or waiting to land (claimed), but `but`."""
    return [item.task.files for tid, item in board.tasks.items()
            if item.state == "claimed" and tid != but and item.task.files]


def apart(board: Board, ready: list[str], *, strict: bool = False) -> list[str]:
    """Of `ready` (best first), those whose files meet no busy task's; when none is apart, all of `ready`
    (a worker with nothing to do takes one all the same), or none when `strict`. A task that names no
    files meets nothing: there is nothing to go by."""
    busy = busy_files(board)
    if not busy:
        return ready
    free = [tid for tid in ready if not any(overlap(board.tasks[tid].task.files, other) for other in busy)]
    return free or ([] if strict else ready)


def literal(path: str) -> str:
    """A file's path as a pattern that matches only it: a file an agent named "*" is not every file."""
    return "".join(f"[{c}]" if c in _GLOB else c for c in path)


def learned(planned: list[str], touched: Iterable[str]) -> list[str]:
    """A task's files after an attempt that changed `touched` (files, taken literally): what was planned,
    then what was touched, each once, at most MAX_FILES."""
    return list(dict.fromkeys([*map(normal, planned), *(literal(normal(p)) for p in touched)]))[:MAX_FILES]
