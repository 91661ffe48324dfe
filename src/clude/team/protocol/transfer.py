"""Objects copied between two object databases in this process (protocol/local.py's fetch and push
to a local upstream): every object reachable from the tips that the target lacks, each written after
its parts, a commit's tree compared with its first parent's so that only what it changed is looked at.
A commit is taken as whole in the target only when one of the target's refs reaches it."""

from __future__ import annotations

import contextlib
import heapq
from collections.abc import Callable, Iterable, Iterator

import pygit2
from pygit2.enums import ObjectType

from clude.gitcli import GitError
from clude.team.protocol import objects

# The refs whose history a copy takes as whole in its target: the branches, the remote-tracking
# branches, the team's own (queue, lease). Tags and any other ref are left out: fewer to walk from, and
# leaving one out only copies more.
TRUSTED_REFS = ("refs/heads/", "refs/remotes/", "refs/clude/")
# How far a commit's descendants may be dated before it (clocks set apart on the machines that made
# them) for a copy to still find it in a ref's history; one dated further is copied again, no worse. The
# look goes back this far beyond the commit's own time, across every ref (the lease's chain included).
SKEW_S = 3600


def copy_objects(source: pygit2.Repository, target: pygit2.Repository, tips: list[pygit2.Oid]) -> int:
    """Write into `target` every object reachable from `tips` that it lacks (a commit's tree and parents,
    a tree's entries), going no further than what it has whole; how many were written. Each object is
    written after all it holds (its tree and parents, its entries), and a commit's tree is compared
    with its first parent's (whole in `target` by then): only what the commit changed is looked at, not
    every file of every folder it touched. A commit is taken as whole in `target` only when one of its
    refs reaches it (_settled): a `git clone` of a local upstream made while pushes write to it copies
    objects no ref of the clone reaches, and may copy a commit without its tree (it lists the object
    folders in no order), which the copy trusted before and the clone's reads then failed on for good.
    Raises GitError when an object is missing from `source` too (a clone cut short)."""
    commits, others = _new_commits(source, target, tips)
    written = _copy_walk(source, target, others)
    for commit in commits:
        parents = commit.parent_ids
        written += _copy_changes(source, target, commit.tree_id, source[parents[0]].tree_id if parents else None)
        written += _write(source, target, [commit.id])
    return written


def _settled(target: pygit2.Repository) -> Callable[[pygit2.Oid], bool]:
    """Whether `target` has an object whole: a commit when one of its refs (TRUSTED_REFS) points at it
    or at a commit after it, any other object when it is there. One walk of the refs' history serves
    every question of a copy: newest first, and only as far back as the oldest commit asked about (its
    time less SKEW_S), so an unrelated history (the lease's chain beside main) is not walked to its
    root. A history the target does not have whole trusts nothing but the refs' own commits."""
    tips: set[pygit2.Oid] = set()
    for name in target.listall_references():
        if name.startswith(TRUSTED_REFS):
            with contextlib.suppress(pygit2.GitError, KeyError, ValueError, TypeError):
                tips.add(target.references[name].peel(pygit2.Commit).id)
    reached = set(tips)  # the commits the refs reach that the walk has come to
    heap = [(-target[oid].commit_time, oid.raw, oid) for oid in tips]
    heapq.heapify(heap)
    broken = False

    def settled(oid: pygit2.Oid) -> bool:
        nonlocal broken
        if oid in tips:
            return True
        try:
            obj = target[oid]
        except KeyError:
            return False
        if obj.type != ObjectType.COMMIT:
            return True
        oldest = obj.commit_time - SKEW_S
        while oid not in reached and heap and -heap[0][0] >= oldest and not broken:
            _, _, current = heapq.heappop(heap)
            for parent in target[current].parent_ids:
                if parent in reached:
                    continue
                try:
                    heapq.heappush(heap, (-target[parent].commit_time, parent.raw, parent))
                except KeyError:
                    broken = True
                    break
                reached.add(parent)
        return oid in reached and not broken
    return settled


def _new_commits(source: pygit2.Repository, target: pygit2.Repository,
                 tips: list[pygit2.Oid]) -> tuple[list[pygit2.Commit], list[pygit2.Oid]]:
    """The commits reachable from `tips` that `target` lacks or may not have whole, each after its
    parents; and the tips that are no commit (copied by _copy_walk)."""
    lacking = list(_post_order(source, target, tips, lambda obj: obj.parent_ids if obj.type == ObjectType.COMMIT
                               else (), have=_settled(target)))
    return ([obj for obj in lacking if obj.type == ObjectType.COMMIT],
            [obj.id for obj in lacking if obj.type != ObjectType.COMMIT])


def _copy_changes(source: pygit2.Repository, target: pygit2.Repository, tree: pygit2.Oid,
                  base: pygit2.Oid | None) -> int:
    """Copy `tree`, given that `target` has the tree `base` (None: the empty tree) with all its parts:
    the files the diff from `base` names, then the folders on their paths, deepest first, then `tree`.
    A `tree` that `target` has already is compared all the same: it may be one such a clone holds
    without all its parts (what it holds is either in the diff or in `base`)."""
    if tree == base:
        return 0
    new = source[tree]
    flags = pygit2.enums.DiffOption.SKIP_BINARY_CHECK
    diff = new.diff_to_tree(flags=flags, swap=True) if base is None else source[base].diff_to_tree(new, flags=flags)
    blobs: list[pygit2.Oid] = []
    folders: set[str] = set()
    for delta in diff.deltas:
        path = delta.new_file.path if delta.status != pygit2.enums.DeltaStatus.DELETED else delta.old_file.path
        if delta.status != pygit2.enums.DeltaStatus.DELETED and delta.new_file.mode != objects.GITLINK:
            blobs.append(delta.new_file.id)
        parts = path.split("/")[:-1]
        folders.update("/".join(parts[:n]) for n in range(1, len(parts) + 1))
    trees: list[pygit2.Oid] = []
    for folder in sorted(folders, key=lambda f: f.count("/"), reverse=True):  # deepest first
        try:
            entry = new[folder]
        except KeyError:  # the folder is gone in `tree`
            continue
        if entry.type == ObjectType.TREE:  # not a nested repository's commit where the folder was
            trees.append(entry.id)
    trees.append(tree)
    todo = [oid for oid in [*blobs, *trees] if oid not in target]
    # a folder that holds only folders without files (no diff entry names it) is copied whole
    written = set(todo)
    bare = [entry.id for oid in trees if oid in written for entry in source[oid]
            if entry.type == ObjectType.TREE and entry.id not in written and entry.id not in target]
    return _copy_walk(source, target, bare) + _write(source, target, todo)


def _copy_walk(source: pygit2.Repository, target: pygit2.Repository, tips: list[pygit2.Oid]) -> int:
    """Copy every object reachable from `tips` that `target` lacks by walking all of them (a tree with
    no tree to compare with, a tag, a lone blob), each after its parts."""
    return sum(_write(source, target, [obj.id]) for obj in _post_order(source, target, tips, _parts))


def _parts(obj: pygit2.Object) -> list[pygit2.Oid]:
    """What an object holds: a commit its tree and parents, a tree its entries (not a nested
    repository's commit), a tag what it tags."""
    if obj.type == ObjectType.COMMIT:
        return [obj.tree_id, *obj.parent_ids]
    if obj.type == ObjectType.TREE:
        return [entry.id for entry in obj if entry.filemode != objects.GITLINK]
    if obj.type == ObjectType.TAG:
        return [obj.target]
    return []


def _post_order(source: pygit2.Repository, target: pygit2.Repository, tips: list[pygit2.Oid],
                parts: Callable[[pygit2.Object], Iterable[pygit2.Oid]],
                have: Callable[[pygit2.Oid], bool] | None = None) -> Iterator[pygit2.Object]:
    """The objects reachable from `tips` through `parts` that `target` lacks (`have`: is whole in it;
    looked at when reached: what the caller wrote meanwhile counts), each after its parts; the walk goes
    no further than an object `target` has."""
    have = have or target.__contains__
    seen: set[pygit2.Oid] = set()
    stack: list[tuple[pygit2.Oid, pygit2.Object | None]] = [(oid, None) for oid in tips]
    while stack:
        oid, obj = stack.pop()
        if obj is not None:  # its parts are done
            yield obj
            continue
        if oid in seen:
            continue
        seen.add(oid)
        if have(oid):
            continue
        obj = _read(source, target, oid)
        stack.append((oid, obj))
        stack.extend((part, None) for part in parts(obj))


def _read(source: pygit2.Repository, target: pygit2.Repository, oid: pygit2.Oid) -> pygit2.Object:
    try:
        return source[oid]
    except KeyError:
        raise _missing(source, target, oid) from None


def _write(source: pygit2.Repository, target: pygit2.Repository, oids: list[pygit2.Oid]) -> int:
    for oid in oids:
        try:
            kind, data = source.odb.read(oid)
        except KeyError:
            raise _missing(source, target, oid) from None
        target.odb.write(kind, data)
    return len(oids)


def _missing(source: pygit2.Repository, target: pygit2.Repository, oid: pygit2.Oid) -> GitError:
    return GitError(f"object {oid} is in neither {source.path} nor {target.path}")
