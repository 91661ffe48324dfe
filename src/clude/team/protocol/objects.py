"""A team clone's git objects, refs, index and files, read and written in this process (libgit2, through
pygit2): what needs no network costs no `git` process. Fetch, push and clone stay with the git command
(protocol/git.py), which speaks to every kind of upstream.

Each call opens the repository anew (well under a millisecond): no libgit2 object is shared between the
worker's threads, and what a `git` process wrote a moment ago (a fetch) is always seen.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pygit2
from pygit2.enums import CheckoutStrategy, ConfigLevel, FetchPrune, FileStatus, ObjectType

from clude.gitcli import GitError, run_git

# libgit2 reads no user or system git configuration, as the git processes run with ISOLATED: a user's
# autocrlf, excludes file or identity never changes what the team commits or checks out.
for _level in (ConfigLevel.GLOBAL, ConfigLevel.XDG, ConfigLevel.SYSTEM, ConfigLevel.PROGRAMDATA):
    pygit2.settings.search_path[_level] = "/nonexistent-clude-git-config"

GITLINK = 0o160000  # a nested repository's entry in a tree: never part of a team change
REMOVE_TIMEOUT_S = 600.0  # for `rm -rf` (and `find`) over a tree an agent or a test may have made huge


class ObjectError(GitError):
    """An object, ref or path a caller named is not in the repository."""


@contextmanager
def git_errors(what: str) -> Iterator[None]:
    """libgit2's errors (an invalid path in a work tree, say) raised as ObjectError, with `what` was done."""
    try:
        yield
    except pygit2.GitError as e:
        raise ObjectError(f"{what}: {e}") from None


def open_repo(path: Path, workdir: Path | None = None) -> pygit2.Repository:
    """The repository at `path` (a work tree or a git folder); `workdir`: read as if that were its work
    tree (nothing is written to its config)."""
    try:
        repo = pygit2.Repository(str(path))
    except pygit2.GitError as e:
        raise ObjectError(f"{path} is not a git repository: {e}") from None
    if workdir is not None:
        repo.workdir = str(workdir)
    return repo


def resolve(repo: pygit2.Repository, spec: str) -> str | None:
    """What `git rev-parse -q --verify spec` names (HEAD, a ref, a short name, `x^{tree}`); None."""
    try:
        return str(repo.revparse_single(spec).id)
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
        return None


def commit_of(repo: pygit2.Repository, spec: str) -> pygit2.Commit:
    try:
        return repo.revparse_single(spec).peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
        raise ObjectError(f"no commit {spec!r} in {repo.path}") from None


def blob_ids(repo: pygit2.Repository, ref: str, paths: Iterable[str]) -> dict[str, pygit2.Oid]:
    """The blob of each path that is a file (or a link) at ref; other paths are left out."""
    tree = commit_of(repo, ref).tree
    found = {}
    for path in paths:
        try:
            entry = tree[path]
        except (KeyError, ValueError):
            continue
        if entry.type == ObjectType.BLOB and entry.filemode != GITLINK:
            found[path] = entry.id
    return found


def whole(repo: pygit2.Repository, ref: str) -> bool:
    """Whether every object of `ref`'s tree is in the repository (nested repositories' commits aside)."""
    try:
        stack = [commit_of(repo, ref).tree_id]
        while stack:
            tree = repo[stack.pop()]
            for entry in tree:
                if entry.filemode == GITLINK:
                    continue
                if entry.id not in repo:
                    return False
                if entry.type == ObjectType.TREE:
                    stack.append(entry.id)
    except (KeyError, GitError, pygit2.GitError):
        return False
    return True


def walk(repo: pygit2.Repository, ref: str, under: str = "") -> Iterator[tuple[str, pygit2.Object]]:
    """(path, entry) of every file at ref, in tree order; only those under the folder `under`."""
    if under:
        yield from entries(repo, ref, [under.rstrip("/")])
    else:
        yield from _walk(repo, commit_of(repo, ref).tree, "")


def entries(repo: pygit2.Repository, ref: str, paths: Iterable[str]) -> Iterator[tuple[str, pygit2.Object]]:
    """(path, entry) of every file at ref that is one of `paths` or under one of them."""
    tree = commit_of(repo, ref).tree
    for path in paths:
        try:
            entry = tree[path]
        except KeyError:
            continue
        if entry.type == ObjectType.TREE:
            yield from _walk(repo, repo[entry.id], f"{path}/")
        else:
            yield path, entry


def _walk(repo: pygit2.Repository, tree: pygit2.Tree, prefix: str) -> Iterator[tuple[str, pygit2.Object]]:
    for entry in tree:
        if entry.type == ObjectType.TREE:
            yield from _walk(repo, repo[entry.id], f"{prefix}{entry.name}/")
        else:
            yield prefix + entry.name, entry


def same_refs(repo: pygit2.Repository, upstream: str, pairs: dict[str, str], prefix: str | None) -> bool:
    """Whether a fetch from the local `upstream` (a path) would bring `repo` nothing: each of its refs in
    `pairs` is where `repo` has the ref it maps to, and its refs under `prefix` are exactly `repo`'s."""
    try:
        theirs = open_repo(Path(upstream).expanduser())
    except GitError:
        return False
    if any(resolve(theirs, ref) != resolve(repo, mine) for ref, mine in pairs.items()):
        return False
    return prefix is None or _refs_under(theirs, prefix) == _refs_under(repo, prefix)


def fetch_local(repo: pygit2.Repository, remote: str, refspecs: list[str]) -> None:
    """`git fetch --prune remote refspecs` from an upstream on this machine, in process (libgit2 reads
    the other repository's files: no upload-pack, no index-pack)."""
    try:
        with signals_deferred():
            repo.remotes[remote].fetch(refspecs, prune=FetchPrune.PRUNE)
    except (KeyError, pygit2.GitError) as e:
        raise GitError(f"cannot fetch from {remote} into {repo.path}: {e}") from None


# The signals whose Python handlers stop a worker or a run (Ctrl-C, a stop, the team's finish signal).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """libgit2 calls back into Python while it fetches (progress), and a handler's exception raised
    inside such a callback is printed and dropped by cffi: a worker told to stop went on. Here a stop
    signal is only noted, and delivered again, to the handler it had, once libgit2 has returned."""
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers run in the main thread only: never inside this thread's callbacks
        return
    noted: list[int] = []
    saved = {s: signal.signal(s, lambda signum, frame: noted.append(signum))
             for s in STOP_SIGNALS if signal.getsignal(s) is not None}  # None: not set from Python
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
        for s in dict.fromkeys(noted):
            signal.raise_signal(s)


def _refs_under(repo: pygit2.Repository, prefix: str) -> dict[str, str | None]:
    return {name: resolve(repo, name) for name in repo.listall_references() if name.startswith(prefix)}


def signature(identity: dict[str, str]) -> pygit2.Signature:
    """The committer of a team commit, from the GIT_COMMITTER_* variables of an identity."""
    return pygit2.Signature(identity["GIT_COMMITTER_NAME"], identity["GIT_COMMITTER_EMAIL"])


def new_commit(repo: pygit2.Repository, tree: str, parents: list[str], message: str,
               identity: dict[str, str], author: pygit2.Signature | None = None) -> str:
    """A commit object (no ref moves) of `tree` on `parents`; the message as `git commit` leaves it."""
    who = signature(identity)
    text = "\n".join(line.rstrip() for line in message.strip("\n").splitlines()).strip("\n") + "\n"
    return str(repo.create_commit(None, author or who, who, text, tree, parents))


def empty_tree(repo: pygit2.Repository) -> str:
    return str(repo.TreeBuilder().write())


def conflicts(repo: pygit2.Repository, ours: str, theirs: str) -> tuple[str | None, list[str]]:
    """A three-way merge of `theirs` into `ours` on their merge base, nothing checked out: the merged
    tree and [] when it merges cleanly, else None and the conflicting files."""
    a, b = commit_of(repo, ours), commit_of(repo, theirs)
    base = repo.merge_base(a.id, b.id)
    ancestor = repo[base].tree if base is not None else repo[empty_tree(repo)]
    index = repo.merge_trees(ancestor, a.tree, b.tree)
    if index.conflicts is not None:
        return None, _conflicting(index)
    return str(index.write_tree(repo)), []


def _conflicting(index: pygit2.Index) -> list[str]:
    """The files a merge left in conflict, sorted."""
    files = sorted({side.path for sides in index.conflicts for side in sides if side is not None})
    return files or ["(unknown files)"]


def pick(repo: pygit2.Repository, onto: str, commits: list[str], identity: dict[str, str]
         ) -> tuple[str, str | None, list[str]]:
    """`git cherry-pick` of `commits` in order onto `onto`, in objects only (empty picks kept): the last
    commit made, and on a conflict the commit that did not apply with its files (None, [] when all did)."""
    head = onto
    for commit in commits:
        original = commit_of(repo, commit)
        parent = original.parents[0].tree if original.parents else repo[empty_tree(repo)]
        index = repo.merge_trees(parent, commit_of(repo, head).tree, original.tree)
        if index.conflicts is not None:
            return head, commit, _conflicting(index)
        head = new_commit(repo, str(index.write_tree(repo)), [head], original.message, identity,
                          author=original.author)
    return head, None, []


def check_out(path: Path, commit: str, branch: str, *, ignored: bool = False) -> None:
    """Make the work tree at `path` exactly `commit` on `branch` (`git checkout --force -B branch commit`
    then `git clean -ffd`, and `-x` when `ignored`: ignored files go too), the index with it."""
    repo = open_repo(path)
    target = commit_of(repo, commit)
    # untracked files, and tracked ones turned into something else (a folder made a symlink): removed
    # first, ignored as the files say now (as git clean), so that nothing is ever written through a link
    drop = FileStatus.WT_NEW | FileStatus.INDEX_NEW | FileStatus.WT_TYPECHANGE | (FileStatus.IGNORED if ignored else 0)
    try:
        found = repo.status(ignored=ignored)
    except pygit2.GitError:  # deeper than libgit2 goes (100 folders): git's own clean goes anywhere
        run_git(Path(path), "clean", "-ffdxq" if ignored else "-ffdq")
        found = repo.status(ignored=ignored)
    for name, status in found.items():
        if status & drop:
            _remove(Path(path), name)
    # checked out from what HEAD holds now (a symlink it holds is replaced, never followed), then moved
    repo.checkout_tree(target.tree, strategy=CheckoutStrategy.FORCE)
    repo.references.create(f"refs/heads/{branch}", target.id, force=True)
    repo.set_head(f"refs/heads/{branch}")


def _remove(root: Path, name: str) -> None:
    """Remove root/name, a file or a folder, then the folders it leaves empty (as `git clean -d`)."""
    path = root / name
    if path.is_dir() and not path.is_symlink():
        try:
            shutil.rmtree(path)
        except (OSError, RecursionError):  # thousands of folders deep, or unwritable: rm goes anywhere
            with suppress(OSError):  # what cannot be removed stays; the checkout writes over the rest
                remove_tree(path)
    else:
        path.unlink(missing_ok=True)
    for folder in path.parents:
        if folder == root or root not in folder.parents:
            return
        try:
            folder.rmdir()
        except OSError:
            return


def remove_tree(path: Path) -> None:
    """Remove a tree whatever was made of it: `rm -rf` (no recursion limit, symlinks removed and never
    followed), after opening up folders made unreadable or unwritable. OSError when it stays."""
    if not os.path.lexists(path):
        return
    for attempt in range(2):
        done = subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)], capture_output=True,
                              timeout=REMOVE_TIMEOUT_S)
        if done.returncode == 0 and not os.path.lexists(path):
            return
        subprocess.run(["chmod", "-R", "u+rwx", "--", str(path)], capture_output=True, timeout=REMOVE_TIMEOUT_S)
    raise OSError(f"cannot remove {path}: {done.stderr.decode('utf-8', 'replace').strip()}")


def stage(repo: pygit2.Repository, index: pygit2.Index, paths: list[str] | None = None) -> None:
    """`git add -A` into `index` from the repository's work tree: new and changed files added, deleted
    ones removed (all of them, or those at or under `paths`)."""
    root = Path(repo.workdir)
    if paths is None:
        index.add_all()
    else:
        present = [p for p in paths if os.path.lexists(root / p)]
        if present:
            index.add_all(present)
    for entry in list(index):
        if paths is not None and not any(entry.path == p or entry.path.startswith(p.rstrip("/") + "/")
                                         for p in paths):
            continue
        if not os.path.lexists(root / entry.path):
            index.remove(entry.path)


def first_touch(repo: pygit2.Repository, path: str, ref: str) -> int | None:
    """The commit time of the newest commit up to `ref` (first parents) that changed `path`."""
    commit = commit_of(repo, ref)
    seen = _entry_id(commit.tree, path)
    while True:
        parent = commit.parents[0] if commit.parents else None
        before = _entry_id(parent.tree, path) if parent is not None else None
        if before != seen:
            return commit.commit_time
        if parent is None:
            return None
        commit = parent


def _entry_id(tree: pygit2.Tree, path: str) -> pygit2.Oid | None:
    try:
        return tree[path].id
    except KeyError:
        return None
