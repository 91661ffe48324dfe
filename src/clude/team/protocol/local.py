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
import os
import time
from pathlib import Path

import pygit2

from clude.gitcli import GitError, run_git
from clude.team.protocol import objects
from clude.team.protocol.transfer import copy_objects
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
