"""A local upstream pushed to in process (protocol/local.py): what lands is whole to `git fsck`, a push
that is not a fast-forward or finds the ref's lock held is a race that moves nothing, a push of two refs
moves both or neither, and an upstream with receive hooks or rules of its own gets a real `git push`
that runs them."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from team_helpers import committed_change as change, protected_upstream

from clude.team.protocol.git import Repo
from clude.team.protocol.sync import update_upstream


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(cwd), *args],
                          check=check, capture_output=True, text=True)


@pytest.fixture
def upstream(tmp_path) -> Path:
    """A bare upstream made as `clude team init` makes it (fast-forwards only, no deletions)."""
    return protected_upstream(tmp_path, git)


@pytest.fixture
def no_git(tmp_path, monkeypatch) -> Path:
    """A `git` first on PATH that notes each call (then runs the real one): the file of calls."""
    real = subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True).stdout.strip()
    shims, calls = tmp_path / "shims", tmp_path / "git-calls"
    shims.mkdir()
    (shims / "git").write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec {real} "$@"\n')
    (shims / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}:{subprocess.os.environ['PATH']}")
    return calls


def test_a_push_lands_whole_without_a_process(tmp_path, upstream, no_git):
    a = Repo.clone(str(upstream), tmp_path / "a", agent="a1")
    no_git.unlink(missing_ok=True)
    first = change(a, "a1.py", "x = 1\n")
    assert a.push().status == "ok"
    # one look at the configuration git would push under (asked of git: it reads what libgit2 misses)
    assert [c.split()[-3:] for c in no_git.read_text().splitlines()] == [["--includes", "--show-scope", "-z"]]
    no_git.unlink()
    commit = change(a, "b.py", "b = 2\n")
    assert a.push().status == "ok" and a.is_ancestor(first, commit)
    assert not no_git.exists(), no_git.read_text()  # and none again while those files are unchanged
    assert git(upstream, "rev-parse", "main").stdout.strip() == commit
    assert a.rev("refs/remotes/origin/main") == commit  # the remote-tracking branch follows, as with git
    assert git(upstream, "fsck", "--strict", "--no-dangling").returncode == 0
    assert git(upstream, "show", "main:src/b.py").stdout == "b = 2\n"
    # a clone made by git from what was pushed in process has it all
    git(tmp_path, "clone", "-q", str(upstream), str(tmp_path / "check"))
    assert (tmp_path / "check" / "src" / "b.py").read_text() == "b = 2\n"


def test_a_push_that_is_not_a_fast_forward_is_a_race_that_moves_nothing(tmp_path, upstream):
    a = Repo.clone(str(upstream), tmp_path / "a", agent="a1")
    b = Repo.clone(str(upstream), tmp_path / "b", agent="a2")
    first = change(a, "a1.py", "x = 1\n")
    mine = change(b, "a2.py", "x = 2\n")
    assert a.push().status == "ok"
    lost = b.push(f"{mine}:refs/clude/queued")
    assert lost.status == "race" and "fetch first" in lost.message
    # atomic: the queue's ref, which alone would have been a new ref, was not made either
    assert git(upstream, "rev-parse", "main").stdout.strip() == first
    assert git(upstream, "rev-parse", "-q", "--verify", "refs/clude/queued", check=False).stdout == ""


def test_a_held_ref_lock_is_a_race(tmp_path, upstream):
    a = Repo.clone(str(upstream), tmp_path / "a", agent="a1")
    before = git(upstream, "rev-parse", "main").stdout.strip()
    change(a, "b.py", "b = 2\n")
    held = upstream / "refs" / "heads" / "main.lock"  # what a `git push` holds while it updates main
    held.write_text("")
    try:
        result = a.push()
    finally:
        held.unlink()
    assert result.status == "race" and "lock" in result.message
    assert git(upstream, "rev-parse", "main").stdout.strip() == before
    assert a.push().status == "ok"


def test_a_ref_lock_left_by_a_killed_pusher_is_taken_away_and_the_push_lands(tmp_path, upstream):
    """A worker SIGKILLed in the middle of a push leaves main's lock file behind: once it is older than
    any live push holds one, the next push takes it away and lands (it would lose to it forever); a
    clone's own ref lock left that way does not stop its fetches either."""
    import os
    import time

    from clude.team.protocol.local import STALE_REF_LOCK_S

    a = Repo.clone(str(upstream), tmp_path / "a", agent="a1")
    commit = change(a, "b.py", "b = 2\n")
    left = upstream / "refs" / "heads" / "main.lock"
    left.write_text("")
    old = time.time() - STALE_REF_LOCK_S - 1
    os.utime(left, (old, old))
    assert a.push().status == "ok" and not left.exists()
    assert git(upstream, "rev-parse", "main").stdout.strip() == commit
    b = Repo.clone(str(upstream), tmp_path / "b", agent="b1")
    newer = change(b, "c.py", "c = 3\n")
    assert b.push().status == "ok"
    stale = a.path / ".git" / "refs" / "remotes" / "origin" / "main.lock"
    stale.write_text("")
    os.utime(stale, (old, old))
    a.fetch()
    assert a.rev("refs/remotes/origin/main") == newer and not stale.exists()


def test_in_process_and_git_pushers_racing_never_lose_a_commit(tmp_path, upstream):
    """Four workers append lines to one file through update_upstream at once: two push in process,
    two by `git push` (they name the upstream by a file:// URL, which git serves): every line lands."""
    urls = [str(upstream), str(upstream), f"file://{upstream}", f"file://{upstream}"]
    repos = [Repo.clone(url, tmp_path / f"w{i}", agent=f"w{i}") for i, url in enumerate(urls)]
    errors: list[BaseException] = []

    def work(repo: Repo) -> None:
        try:
            for k in range(6):
                def add(checkout: Path, line=f"{repo.agent} {k}") -> str:
                    log = checkout / "src" / "log.txt"
                    log.write_text((log.read_text() if log.exists() else "") + line + "\n")
                    return line
                update_upstream(repo, add)
        except BaseException as error:  # noqa: BLE001 - shown by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(r,)) for r in repos]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    lines = git(upstream, "show", "main:src/log.txt").stdout.splitlines()
    assert sorted(lines) == sorted(f"w{i} {k}" for i in range(4) for k in range(6))
    assert git(upstream, "fsck", "--strict", "--no-dangling").returncode == 0


def test_an_upstream_with_a_receive_hook_gets_git_push_which_runs_it(tmp_path, upstream, no_git):
    hook = upstream / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'remote: main is frozen' >&2\nexit 1\n")
    hook.chmod(0o755)
    a = Repo.clone(str(upstream), tmp_path / "a", agent="a1")
    before = git(upstream, "rev-parse", "main").stdout.strip()
    change(a, "b.py", "b = 2\n")
    no_git.unlink(missing_ok=True)
    result = a.push()
    assert result.status == "rejected" and "frozen" in result.message
    assert any(" push " in f" {line} " for line in no_git.read_text().splitlines())
    assert git(upstream, "rev-parse", "main").stdout.strip() == before


@pytest.mark.parametrize("key", ["receive.fsckObjects", "transfer.fsckObjects"])
def test_an_upstream_with_rules_of_its_own_gets_git_push(tmp_path, upstream, no_git, key):
    git(upstream, "config", key, "true")
    a = Repo.clone(str(upstream), tmp_path / "a", agent="a1")
    change(a, "b.py", "b = 2\n")
    no_git.unlink(missing_ok=True)
    assert a.push().status == "ok"
    assert any("push" in line.split() for line in no_git.read_text().splitlines())


def test_a_forced_push_is_never_made_in_process(tmp_path, upstream):
    """A refspec with + goes to `git push`, where the upstream's denyNonFastForwards refuses it."""
    a = Repo.clone(str(upstream), tmp_path / "a", agent="a1")
    seed = git(upstream, "rev-parse", "main").stdout.strip()
    change(a, "b.py", "b = 2\n")
    assert a.push().status == "ok"
    result = a.push_refs(f"+{seed}:refs/heads/main")
    assert result.status == "rejected" or result.status == "race"
    assert git(upstream, "rev-parse", "main").stdout.strip() == a.head()


# -- copy_objects on random histories -------------------------------------------------------------------
PATHS = ["a.txt", "d/b.txt", "d/e/c.txt", "d/e/f/g.txt", "h/i.txt", "h/j/k.txt"]


def _history(repo, steps) -> list:
    """Commits made with libgit2 from `steps`: (parents picked among the earlier commits, files set or
    removed); the commits, oldest first."""
    import pygit2

    sig = pygit2.Signature("t", "t@t", 0, 0)
    commits: list = []
    for n, (picks, edits) in enumerate(steps):
        parents = sorted({commits[p % len(commits)] for p in picks}) if commits else []
        index = pygit2.Index()
        if parents:
            index.read_tree(repo[parents[0]].tree)
        for path_n, content in edits:
            path = PATHS[path_n % len(PATHS)]
            if content is None:
                if path in index:
                    index.remove(path)
                continue
            blocked = [e.path for e in index if e.path.startswith(path + "/") or path.startswith(e.path + "/")]
            for other in blocked:  # a file where a folder must go, or the other way round
                index.remove(other)
            index.add(pygit2.IndexEntry(path, repo.create_blob(content.encode()), pygit2.enums.FileMode.BLOB))
        tree = index.write_tree(repo)
        commits.append(repo.create_commit(None, sig, sig, f"c{n}", tree, parents))
    return commits


def _holding(source, path: Path, known: list):
    """A bare repository holding the commits `known` of `source`, whole, each at a ref (as a clone has
    what its refs reach)."""
    import pygit2

    from clude.team.protocol.transfer import copy_objects

    target = pygit2.init_repository(str(path), bare=True)
    copy_objects(source, target, known)
    for n, commit in enumerate(known):
        target.references.create(f"refs/heads/known{n}", commit)
    return target


def _reachable(repo, tips) -> set:
    """The objects reachable from `tips` (not a nested repository's commit: no repository holds it)."""
    from pygit2.enums import FileMode, ObjectType

    seen, stack = set(), list(tips)
    while stack:
        oid = stack.pop()
        if oid in seen:
            continue
        seen.add(oid)
        obj = repo[oid]
        if obj.type == ObjectType.COMMIT:
            stack += [obj.tree_id, *obj.parent_ids]
        elif obj.type == ObjectType.TREE:
            stack += [entry.id for entry in obj if entry.filemode != FileMode.COMMIT]
    return seen


@given(steps=st.lists(st.tuples(st.lists(st.integers(0, 50), min_size=1, max_size=2),
                                st.lists(st.tuples(st.integers(0, 50), st.one_of(st.none(), st.sampled_from("xyz"))),
                                         min_size=1, max_size=4)), min_size=1, max_size=8),
       have=st.integers(0, 8))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_copy_brings_everything_reachable_and_a_copy_cut_short_leaves_no_object_without_its_parts(
        tmp_path_factory, steps, have):
    """Whatever the history (merges, files becoming folders, removals) and however much of it the target
    has: a whole copy leaves it every object reachable from the tips; a copy cut short after any number
    of writes leaves no object in it whose parts are missing (the next copy may stop at any object)."""
    import pygit2

    from clude.team.protocol.transfer import copy_objects

    base = tmp_path_factory.mktemp("copy")
    source = pygit2.init_repository(str(base / "source"), bare=True)
    commits = _history(source, steps)
    known, tips = commits[:min(have, len(commits) - 1)], [commits[-1]]

    def target_at(name: str):
        return _holding(source, base / name, known)

    whole = target_at("whole")
    writes = copy_objects(source, whole, tips)
    assert all(oid in whole for oid in _reachable(source, tips))

    class Cut(Exception):
        pass

    for cut in range(writes):
        target = target_at(f"cut{cut}")
        left = [cut]

        def write(kind, data, target=target, left=left):
            if left[0] == 0:
                raise Cut()
            left[0] -= 1
            return target.odb.write(kind, data)

        proxy = type("Target", (), {"odb": type("Odb", (), {"write": staticmethod(write)})(),
                                    "__contains__": lambda self, oid, target=target: oid in target,
                                    "__getitem__": lambda self, oid, target=target: target[oid],
                                    "__getattr__": lambda self, name, target=target: getattr(target, name)})()
        with pytest.raises(Cut):
            copy_objects(source, proxy, tips)
        for oid in _reachable(source, tips):
            if oid in target:
                assert all(part in target for part in _reachable(source, [oid])), (cut, oid)


@given(steps=st.lists(st.tuples(st.lists(st.integers(0, 50), min_size=1, max_size=2),
                                st.lists(st.tuples(st.integers(0, 50), st.one_of(st.none(), st.sampled_from("xyz"))),
                                         min_size=1, max_size=4)), min_size=1, max_size=8),
       have=st.integers(0, 8), strays=st.lists(st.integers(0, 10**6), min_size=1, max_size=6))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_copy_into_a_clone_holding_objects_without_their_parts_brings_everything_all_the_same(
        tmp_path_factory, steps, have, strays):
    """A `git clone` of a local upstream made while a push writes to it can hold objects that no ref of
    the clone reaches and whose parts it lacks (a commit without its tree: git lists the object folders
    in no order). Whatever such objects it holds, a copy leaves it every object reachable from the tips,
    and the clone's refs are what it trusts (a copy that stopped at such a commit left the clone's
    reads failing for good: a lander's every pass, in bench_team)."""
    import pygit2

    from clude.team.protocol.transfer import copy_objects

    base = tmp_path_factory.mktemp("strays")
    source = pygit2.init_repository(str(base / "source"), bare=True)
    commits = _history(source, steps)
    tips = [commits[-1]]
    target = _holding(source, base / "target", commits[:min(have, len(commits) - 1)])
    missing = sorted(oid for oid in _reachable(source, tips) if oid not in target)
    for pick in strays:  # objects written alone, without their parts, as such a clone holds them
        if missing:
            oid = missing.pop(pick % len(missing))
            target.odb.write(*source.odb.read(oid))
    copy_objects(source, target, tips)
    assert all(oid in target for oid in _reachable(source, tips))


def test_a_clone_holding_a_commit_without_its_tree_reads_the_upstream_whole_after_a_fetch(tmp_path, upstream):
    """The case bench_team met: a worker's clone made while another worker pushed holds that push's
    commit but not its tree; the commit is then main's parent, and the next fetch must bring the tree."""
    a = Repo.clone(str(upstream), tmp_path / "a", agent="a1")
    b = Repo.clone(str(upstream), tmp_path / "b", agent="a2")
    first = change(a, "a1.py", "x = 1\n")
    assert a.push().status == "ok"
    raw = a.objects()
    b.objects().odb.write(*raw.odb.read(raw[first].id))  # the commit alone, as the racing clone had it
    second = change(a, "a2.py", "x = 2\n")
    assert a.push().status == "ok"
    b.fetch()
    b.reset_to_upstream()
    assert b.rev("refs/remotes/origin/main") == second
    assert (b.path / "src" / "a1.py").read_text() == "x = 1\n" and (b.path / "src" / "a2.py").read_text() == "x = 2\n"
    assert git(b.path, "fsck", "--connectivity-only", "--no-dangling").returncode == 0


def _tree(repo, spec: dict):
    """A tree made from {name: bytes (a file) | dict (a folder) | Oid (a nested repository's commit)}."""
    import pygit2
    from pygit2.enums import FileMode

    builder = repo.TreeBuilder()
    for name, value in spec.items():
        if isinstance(value, dict):
            builder.insert(name, _tree(repo, value), FileMode.TREE)
        elif isinstance(value, pygit2.Oid):
            builder.insert(name, value, FileMode.COMMIT)
        else:
            builder.insert(name, repo.create_blob(value), FileMode.BLOB)
    return builder.write()


@pytest.mark.parametrize("then", ["a nested repository where a folder was", "a folder holding only an empty folder"])
def test_a_copy_brings_trees_no_file_change_names(tmp_path, then):
    """What a diff of files does not name: a folder that became a submodule (the commit it names is in
    neither repository and is not copied), and a folder that holds only folders without files."""
    import pygit2

    from clude.team.protocol.transfer import copy_objects

    sig = pygit2.Signature("t", "t@t")
    source = pygit2.init_repository(str(tmp_path / "source"), bare=True)
    first = source.create_commit(None, sig, sig, "one", _tree(source, {"README": b"r", "lib": {"x.c": b"x"}}), [])
    target = _holding(source, tmp_path / "target", [first])
    later = ({"README": b"r", "lib": pygit2.Oid(hex="ab" * 20)} if then.startswith("a nested")
             else {"README": b"r", "lib": {"x.c": b"x"}, "empty": {"inner": {}}})
    second = source.create_commit(None, sig, sig, "two", _tree(source, later), [first])
    copy_objects(source, target, [second])
    assert all(oid in target for oid in _reachable(source, [second]))


def _lose_a_blob_of_main(clone: Path) -> None:
    """Take away the object of a file main holds from a clone (as an earlier clude's copy could leave it)."""
    blob = git(clone, "rev-parse", "refs/remotes/origin/main:src/a1.py").stdout.strip()
    (clone / ".git" / "objects" / blob[:2] / blob[2:]).unlink()


def test_a_clone_missing_objects_of_main_is_made_anew_where_it_is_reused(tmp_path, upstream):
    """A worker's clones are reused at its start, and the board's view clone by every command: one an
    earlier clude left without objects main holds is made anew, not kept failing."""
    from clude.team.protocol.admin import view

    a = Repo.clone(str(upstream), tmp_path / "a", agent="a1")
    change(a, "a1.py", "x = 1\n")
    assert a.push().status == "ok"
    worker = Repo.clone(str(upstream), tmp_path / "worker", agent="w1")
    _lose_a_blob_of_main(worker.path)
    again = Repo.clone(str(upstream), tmp_path / "worker", agent="w1", check=True)
    again.reset_to_upstream()
    assert (again.path / "src" / "a1.py").read_text() == "x = 1\n"
    root = tmp_path / "project"
    (root / ".clude").mkdir(parents=True)
    board = view(root, str(upstream))
    _lose_a_blob_of_main(board.path)
    assert (view(root, str(upstream)).path / "src" / "a1.py").read_text() == "x = 1\n"
