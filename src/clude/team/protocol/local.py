"""A team upstream on this machine, fetched from and pushed to in this process: objects copied between
the two object databases, refs moved under git's own lock files (the `<ref>.lock` a `git push` takes,
so that git processes pushing to it at the same time stay safe). A push moves all its refs or none, each
only when it is still where this clone saw it and only forward: the compare-and-swap a `git push`
without --force does. It costs no process: no receive-pack, pack-objects, unpack-objects or connectivity
check, which on a busy machine made a push the longest part of the machine's turn at the upstream.

Only an upstream whose rules this push keeps is pushed to here: a bare repository with no receive hook
and no receive rule but the two `team init` sets (fast-forwards only, no deletion: a push from here is
both). Any other, and every remote one, is pushed to by `git push`, which runs its hooks."""

from __future__ import annotations

import contextlib
import heapq
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pygit2
from pygit2.enums import ObjectType

from clude.gitcli import GitError, run_git
from clude.team.protocol import objects
from clude.team.protocol.failures import PushResult

# The hooks a receiving git runs: an upstream with any of them is pushed to by `git push`.
RECEIVE_HOOKS = ("pre-receive", "update", "post-receive", "post-update", "reference-transaction",
                 "proc-receive", "push-to-checkout")
# Receive rules a push from here keeps by itself (it only fast-forwards and never deletes); any other
# receive or transfer rule (fsckObjects, say), shared permissions or another hooks folder: `git push`.
KEPT_RULES = {"receive.denynonfastforwards", "receive.denydeletes", "receive.denycurrentbranch"}
OTHER_RULES = ("receive.", "transfer.", "core.sharedrepository", "core.hookspath", "extensions.")
# In-process pushes of one process between two `git gc --auto` in the upstream (receive-pack runs one
# after every push: it packs the loose objects pushes leave, in the background, when there are many).
GC_EVERY = 100
# What libgit2 says when a ref's lock file is there already (a race: git holds it); any other failure to
# lock (no right, no room, a folder in the way) is a refusal.
HELD = ("file exists", "failed to lock file")
# A ref's lock file older than this was left by a process killed while it moved the ref (a worker
# SIGKILLed mid-push): it is taken away, or every later push would lose to it forever. Git holds a ref's
# lock only for the moment of the update, and an upstream pushed to in process runs no hook that could
# hold it longer (direct() sends those to `git push`).
STALE_REF_LOCK_S = 10.0
# The refs whose history a copy takes as whole in its target: the branches, the remote-tracking
# branches, the team's own (queue, lease). Tags and any other ref are left out: fewer to walk from, and
# leaving one out only copies more.
TRUSTED_REFS = ("refs/heads/", "refs/remotes/", "refs/clude/")
# How far a commit's descendants may be dated before it (clocks set apart on the machines that made
# them) for a copy to still find it in a ref's history; one dated further is copied again, no worse. The
# look goes back this far beyond the commit's own time, across every ref (the lease's chain included).
SKEW_S = 3600
_pushes = 0  # in-process pushes made by this process


def direct(url: str) -> pygit2.Repository | None:
    """The upstream at the local path `url`, opened, when a push from here keeps all its rules; None
    when it must be pushed to by `git push` (or is no repository: git says why)."""
    try:
        upstream = objects.open_repo(Path(url).expanduser())
    except GitError:
        return None
    if not upstream.is_bare or not _keeps_rules(Path(upstream.path)):
        return None
    hooks = Path(upstream.path) / "hooks"
    if any(os.access(hooks / name, os.X_OK) for name in RECEIVE_HOOKS):
        return None
    return upstream


def _keeps_rules(git_dir: Path) -> bool:
    """Whether the configuration a `git push` to `git_dir` would see (the upstream's, the user's and the
    system's, as git itself reads them: libgit2 misses conditional includes, and clude's own libgit2
    reads no user or system file) sets no rule a push from here would skip. Asked of git once, and again
    when one of those files changes; any include at all means `git push` (what it includes could change
    unseen)."""
    files = [git_dir / "config", *_user_config_files()]
    key = (str(git_dir), tuple(_stamp(f) for f in files))
    if key not in _RULES_SEEN:
        _RULES_SEEN[key] = _read_rules(git_dir)
    return _RULES_SEEN[key]


def _read_rules(git_dir: Path) -> bool:
    try:
        listed = run_git(git_dir, "config", "--list", "--includes", "--show-scope", "-z", timeout=60.0).stdout
    except GitError:
        return False  # git cannot read it: let `git push` say why
    fields = listed.split(b"\0")
    for scope, item in zip(fields[::2], fields[1::2]):
        if scope == b"command":  # clude's own `-c` settings, which a push does not pass on to receive-pack
            continue
        name = item.split(b"\n", 1)[0].decode("utf-8", "replace").lower()
        if name.startswith(("include.", "includeif.")):
            return False
        if name.startswith(OTHER_RULES) and name not in KEPT_RULES:
            return False
    return True


def _user_config_files() -> list[Path]:
    """The user's and the system's git configuration files, where git looks for them."""
    home = Path(os.environ.get("HOME", "~")).expanduser()
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    found = [Path(os.environ["GIT_CONFIG_GLOBAL"])] if os.environ.get("GIT_CONFIG_GLOBAL") else [
        home / ".gitconfig", xdg / "git" / "config"]
    found.append(Path(os.environ.get("GIT_CONFIG_SYSTEM") or "/etc/gitconfig"))
    return found


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


# RULES_SEEN: what _read_rules found, by upstream and the stamps of the files it read (this process's).
_RULES_SEEN: dict[tuple, bool] = {}


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


def fetch(repo: pygit2.Repository, url: str, refspecs: list[str]) -> bool:
    """`git fetch --prune` of forced glob refspecs ("+refs/heads/*:refs/remotes/origin/*") from the
    local upstream `url`, in process; False (nothing done) for any other kind of refspec."""
    pairs = []
    for spec in refspecs:
        src, _, dst = spec.removeprefix("+").partition(":")
        if not spec.startswith("+") or not src.endswith("/*") or not dst.endswith("/*"):
            return False
        pairs.append((src[:-1], dst[:-1]))
    upstream = objects.open_repo(Path(url).expanduser())
    wanted: dict[str, pygit2.Oid] = {}
    for name in upstream.listall_references():
        for src, dst in pairs:
            if name.startswith(src):
                ref = upstream.references.get(name)
                if ref is not None and ref.type == pygit2.enums.ReferenceType.DIRECT:
                    wanted[dst + name[len(src):]] = ref.target
    copy_objects(upstream, repo, list(wanted.values()))
    for name in repo.listall_references():
        if any(name.startswith(dst) for _, dst in pairs) and name not in wanted:
            ref = repo.references.get(name)
            if ref is not None and ref.type == pygit2.enums.ReferenceType.DIRECT:  # origin/HEAD stays
                repo.references.delete(name)  # pruned: gone from the upstream
    for name, oid in wanted.items():
        current = repo.references.get(name)
        if current is None or current.target != oid:
            try:
                repo.references.create(name, oid, force=True)
            except (pygit2.GitError, OSError) as e:  # libgit2's "failed to lock file" comes as an OSError
                if not _held(e) or not break_stale_lock(Path(repo.path), name):
                    raise
                repo.references.create(name, oid, force=True)
    return True


def _held(error: Exception) -> bool:
    """Whether libgit2 failed because a ref's lock file is there already."""
    return any(words in str(error).lower() for words in HELD)


def break_stale_lock(git_dir: Path, ref: str) -> bool:
    """Take away the lock file of `ref` in `git_dir` when it is older than STALE_REF_LOCK_S (its process
    was killed while it held it): whether it was. A lock made anew meanwhile by a live process is put
    back (it is told apart by its inode)."""
    lock = git_dir / f"{ref}.lock"
    try:
        seen = lock.stat()
    except OSError:
        return False
    if time.time() - seen.st_mtime < STALE_REF_LOCK_S:
        return False
    taken = lock.with_name(f"{lock.name}.stale-{os.getpid()}")
    try:
        os.rename(lock, taken)
    except OSError:
        return False  # gone meanwhile, or not ours to move: the caller tries again
    if os.stat(taken).st_ino != seen.st_ino:  # a live process's new lock: give it back
        with contextlib.suppress(OSError):
            os.link(taken, lock)
        with contextlib.suppress(OSError):
            os.unlink(taken)
        return False
    os.unlink(taken)
    return True


def push(repo: pygit2.Repository, upstream: pygit2.Repository, refspecs: list[str], *, remote: str,
         identity: dict[str, str]) -> PushResult | None:
    """`git push --atomic` of "<source>:<ref>" refspecs (never forced, never a deletion) to the local
    `upstream` (from `direct`), in process: "ok", "race" (a ref is not where this clone saw it, or git
    holds its lock just now) or "rejected" (the upstream's files cannot be written). None for a refspec
    this does not push (forced, a deletion): then `git push` does."""
    updates: dict[str, pygit2.Oid] = {}
    for spec in refspecs:
        src, _, dst = spec.partition(":")
        if spec.startswith("+") or not src or not dst.startswith("refs/") or not pygit2.reference_is_valid_name(dst):
            return None  # forced, a deletion, or a name git would refuse: git push says so
        commit = objects.resolve(repo, src)
        if commit is None:
            return PushResult("rejected", f"src refspec {src} does not match any object in {repo.path}")
        updates[dst] = pygit2.Oid(hex=commit)
    try:
        copy_objects(repo, upstream, list(updates.values()))
        with upstream.transaction() as moves:
            for ref, new in updates.items():
                try:
                    moves.lock_ref(ref)
                except pygit2.GitError as e:  # a git process holds it (as `cannot lock ref`), or else
                    if not _held(e):
                        raise
                    if not break_stale_lock(Path(upstream.path), ref):
                        raise _Lost(f"cannot lock ref '{ref}': {e}") from None
                    moves.lock_ref(ref)  # the lock a killed process left is gone: once more
                current = upstream.references.get(ref)
                old = current.target if current is not None else None
                if old is not None and old != new and not _behind(repo, old, new):
                    raise _Lost(f"! [rejected] {ref} (fetch first): the upstream's {ref} is at {old}, "
                                f"which {new} does not build on")
                moves.set_target(ref, new, message=f"push by {identity.get('GIT_COMMITTER_NAME', 'clude')}")
    except _Lost as lost:
        return PushResult("race", str(lost))
    except (pygit2.GitError, OSError, GitError) as e:
        return PushResult("rejected", f"cannot write to the upstream {upstream.path}: {e}")
    for ref, new in updates.items():  # as `git push` does: the remote-tracking branch follows
        if ref.startswith("refs/heads/"):
            with contextlib.suppress(pygit2.GitError, ValueError):  # the next fetch sets it anyway
                repo.references.create(f"refs/remotes/{remote}/{ref[len('refs/heads/'):]}", new, force=True)
    _collect(upstream)
    return PushResult("ok", "")


class _Lost(Exception):
    """The upstream moved first (or git holds the ref's lock): a race, fetched and redone."""


def _behind(repo: pygit2.Repository, old: pygit2.Oid, new: pygit2.Oid) -> bool:
    """Whether `new` builds on `old` (a fast-forward), as far as this clone knows `old`."""
    return old in repo and repo.descendant_of(new, old)


def _collect(upstream: pygit2.Repository) -> None:
    """Every GC_EVERY pushes, `git gc --auto` in the upstream, as receive-pack runs after each push."""
    global _pushes
    _pushes += 1
    if _pushes % GC_EVERY == 0:
        try:
            run_git(Path(upstream.path), "gc", "--auto", "--quiet", timeout=60.0)
        except GitError:
            pass  # a gc that cannot run now leaves loose objects, which cost a little room and no more
