"""The agent's work tree, and taking its result back. The agent gets a fresh copy of the upstream's
commit with a git repository of its own and no remote (nothing in it leads to the upstream); the worker
reads the agent's result as files into its own clone, so git never runs under the agent's config or
hooks, and what the agent left behind never reaches the next task."""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
from pathlib import Path

import pygit2

from clude.gitcli import run_git
from clude.team.board.layout import TEAM_PATHS, agent_identity, is_team_path
from clude.team.protocol import objects
from clude.team.protocol.git import LOCAL_EXCLUDES, Repo
from clude.team.protocol.objects import REMOVE_TIMEOUT_S, remove_tree


class TooLarge(Exception):
    """The agent left a file larger than a change may hold; the message names it and the limit."""


def too_large(work: Path, limit: int) -> tuple[str, int] | None:
    """The first file under `work` (its .git aside) larger than `limit` bytes, with its size; None.
    `find` walks any depth (an agent can nest folders thousands deep)."""
    done = subprocess.run(["find", str(work), "-path", str(work / ".git"), "-prune", "-o", "-type", "f",
                           "-size", f"+{limit}c", "-print0", "-quit"], capture_output=True, timeout=REMOVE_TIMEOUT_S)
    found = done.stdout.split(b"\0")[0]
    if not found:
        return None
    path = os.fsdecode(found)
    try:
        return os.path.relpath(path, work), os.lstat(path).st_size
    except OSError:
        return None


def prepare(land: Repo, work: Path, agent: str, *, overlay: list[str] = ()) -> None:
    """Make `work` the agent's tree: land's HEAD as a one-commit clone, its remote removed, and the
    files in `overlay` copied from land's work tree (a conflict for the agent to resolve)."""
    remove_tree(work)
    work.parent.mkdir(parents=True, exist_ok=True)
    run_git(work.parent, "clone", "--quiet", "--depth", "1", "--no-tags", f"file://{land.path}", str(work),
            env=agent_identity(agent))
    objects.open_repo(work).remotes.delete("origin")
    exclude = work / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    exclude.write_text("\n".join(LOCAL_EXCLUDES) + "\n", encoding="utf-8")
    for rel in overlay:
        source, target = land.path / rel, work / rel
        if os.path.lexists(target):
            target.unlink()
        if os.path.lexists(source):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target, follow_symlinks=False)


def drop_nested_repositories(work: Path) -> None:
    """What of the agent's tree is another repository is never part of its change: a folder holding a
    repository (a .git folder with a HEAD, or a .git file pointing to one) is removed with it, any other
    .git (empty, a symlink, a bogus file) alone. The agent's tree is thrown away after the attempt."""
    done = subprocess.run(["find", str(work), "-path", str(work / ".git"), "-prune", "-o", "-name", ".git",
                           "-print0"], capture_output=True, timeout=REMOVE_TIMEOUT_S)
    for raw in filter(None, done.stdout.split(b"\0")):
        found = Path(os.fsdecode(raw))
        if not os.path.lexists(found):  # inside a folder removed already
            continue
        remove_tree(found.parent if _holds_repository(found) else found)


def _holds_repository(dot_git: Path) -> bool:
    if dot_git.is_symlink():
        return False
    if dot_git.is_dir():
        return (dot_git / "HEAD").exists()
    if not dot_git.is_file():  # a FIFO is never opened
        return False
    try:
        with open(dot_git, "rb") as f:
            return f.read(8) == b"gitdir: "
    except OSError:
        return False


# Editor swap and backup files: left by whatever edits the tree, they never land (besides the files a
# backend declares its tool leaves, and [team] never_land).
EDITOR_DROPPINGS = ("*.swp", "*.swo", "*~", ".#*", "#*#")


def never_lands(path: str, globs: tuple[str, ...]) -> bool:
    """Whether a path of the change is one of the files that never land: a glob matches the whole path,
    its name, or one of its folders (`.aider.tags.cache*` takes the folder and all in it)."""
    parts = path.split("/")
    return any(fnmatch.fnmatchcase(path, glob) or any(fnmatch.fnmatchcase(part, glob.rstrip("/")) for part in parts)
               for glob in globs)


def take_result(land: Repo, work: Path, base: str, message: str, *, max_file_bytes: int | None = None,
                never_land: tuple[str, ...] = ()) -> str | None:
    """The agent's files as one commit on `base` in land's own git folder (read with land's config:
    the agent's .git is never used), its edits to the team's files (tasks/, locks, PROGRESS.md) and
    nested repositories dropped, and so are the files that never land (`never_land` globs and
    EDITOR_DROPPINGS: its tool's histories and caches, swap files; what base has of them stays). None
    when nothing changed. TooLarge when a file is over max_file_bytes (a sparse file of terabytes is
    cheap to make and would exhaust the worker)."""
    big = too_large(work, max_file_bytes) if max_file_bytes is not None else None
    if big is not None:
        raise TooLarge(f"the agent left {ascii(big[0])[1:-1]} of {big[1] / 1048576:.1f} MB, over the "
                       f"{max_file_bytes / 1048576:g} MB a file may have ([team] max_file_mb): a change "
                       "carries code, not data")
    drop_nested_repositories(work)
    repo = land.objects(workdir=work)  # land's objects and config, the agent's files
    index = repo.index  # changed in memory only: land's index file is never written
    base_tree = objects.commit_of(repo, base).tree
    with objects.git_errors("git cannot take the agent's files"):
        index.read_tree(base_tree)
        # everything but the team's files, which base's copies replace below: not read nor hashed (a
        # board of hundreds of tasks would be, at every attempt)
        tops = {entry.name for entry in base_tree} | {p.name for p in work.iterdir() if p.name != ".git"}
        if all(top.isprintable() and top.encode("utf-8", "surrogateescape").decode("utf-8", "replace") == top
               for top in tops):
            objects.stage(repo, index, sorted(top for top in tops if not is_team_path(top)))
        else:  # a name git cannot take as a path to match: all is read, and the review refuses the name
            objects.stage(repo, index)
        for entry in list(index):  # the team's files as base has them; nested repositories dropped
            if entry.mode == objects.GITLINK or is_team_path(entry.path):
                index.remove(entry.path)
        for path, entry in objects.entries(repo, base, TEAM_PATHS):
            index.add(pygit2.IndexEntry(path, entry.id, entry.filemode))
        tree = index.write_tree()
        globs = (*EDITOR_DROPPINGS, *never_land)
        changed = {path for delta in repo.diff(base_tree, repo[tree]).deltas
                   for path in (delta.old_file.path, delta.new_file.path)}
        droppings = sorted(p for p in changed if never_lands(p, globs))
        if droppings:  # the tool's files as base has them
            for path in droppings:
                if path in index:
                    index.remove(path)
            for path, entry in objects.entries(repo, base, droppings):
                index.add(pygit2.IndexEntry(path, entry.id, entry.filemode))
            tree = index.write_tree()
        tree = str(tree)
    if tree == str(base_tree.id):
        return None
    return land.new_commit(tree, [base], message)
