"""The team's git layer with real git: clones, classified pushes, upstream updates under races, team init, git://."""

from __future__ import annotations

import os
import random
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from clude.gitcli import GitError
from clude.team.board import layout
from clude.team.protocol.failures import PushResult, classify_push
from clude.team.protocol.git import Repo, same_url
from clude.team.protocol.sync import UpstreamRejected, race_backoff, update_upstream
from clude.team.protocol.upstream import TeamInitError, default_upstream, init_team, team_upstream
from gitdaemon import free_port, git_daemon


pytestmark = pytest.mark.usefixtures("bare_git_env")


def git(cwd: Path, *args: str, check: bool = True) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(cwd), *args],
                          check=check, capture_output=True, text=True).stdout.strip()


def make_project(tmp_path: Path, name: str = "proj", files: dict[str, str] | None = None) -> Path:
    root = tmp_path / name
    root.mkdir()
    git(root, "init", "-q", "--initial-branch=work")
    for rel, text in (files or {"README.md": "hello\n"}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "initial")
    return root


@pytest.fixture
def upstream(tmp_path) -> Path:
    """A bare upstream whose main holds one commit (README.md)."""
    bare = tmp_path / "up.git"
    git(tmp_path, "init", "-q", "--bare", "--initial-branch=main", str(bare))
    seed = make_project(tmp_path, "seed")
    git(seed, "push", "-q", str(bare), "HEAD:refs/heads/main")
    return bare


def files_at(bare: Path, ref: str = "main") -> list[str]:
    return git(bare, "ls-tree", "-r", "--name-only", ref).splitlines()


def add_hook(bare: Path, name: str, body: str) -> None:
    hook = bare / "hooks" / name
    hook.write_text("#!/bin/sh\n" + body)
    hook.chmod(0o755)


# --- layout -------------------------------------------------------------------------------

def test_layout_paths():
    assert layout.task_path("TASK-001") == "tasks/TASK-001.md"
    assert layout.lock_path("TASK-001") == "current_tasks/TASK-001.lock"
    assert layout.failure_path("TASK-001", 2) == "tasks/failures/TASK-001_attempt_2.md"
    for bad in ("", "../x", "a/b", ".hidden"):
        with pytest.raises(ValueError):
            layout.task_path(bad)
    with pytest.raises(ValueError):
        layout.failure_path("TASK-001", 0)


# --- Repo -----------------------------------------------------------------------------------

def test_clone_commit_push_reset(tmp_path, upstream):
    a = Repo.clone(str(upstream), tmp_path / "a", agent="a1")
    b = Repo.clone(str(upstream), tmp_path / "b", agent="b1")
    base = a.head()
    assert b.head() == base == git(upstream, "rev-parse", "main")
    assert not a.commit_all("nothing")

    (a.path / "new.txt").write_text("one\n")
    (a.path / "README.md").unlink()
    assert a.commit_all("a1 adds new.txt")
    assert git(a.path, "log", "-1", "--format=%an <%ae>|%cn|%s") == "a1 <a1@clude.localhost>|a1|a1 adds new.txt"
    assert a.push().status == "ok"
    assert a.push().status == "ok"  # nothing new: still ok
    assert files_at(upstream) == ["new.txt"]
    assert a.changed_files(base, a.head()) == ["README.md", "new.txt"]
    assert a.show(a.head(), "new.txt") == "one\n"
    assert a.show(base, "new.txt") is None and a.show(a.head(), "README.md") is None
    assert a.show(base, "README.md") == "hello\n"
    with pytest.raises(GitError):
        a.show("no-such-ref", "README.md")
    assert a.commit_time("README.md") == float(git(a.path, "log", "-1", "--format=%ct", "--", "README.md"))
    assert a.commit_time("never.txt") is None

    # b has local edits, untracked files, an ignored file and clude's state: reset keeps only the last two
    (b.path / "README.md").write_text("local edit\n")
    (b.path / "junk.txt").write_text("x")
    (b.path / "build").mkdir()
    (b.path / "build" / "out.o").write_text("x")
    (b.path / ".gitignore").write_text("*.log\n")
    (b.path / "keep.log").write_text("ignored")
    (b.path / ".clude" / "logs").mkdir(parents=True)
    (b.path / ".clude" / "logs" / "b1.log").write_text("log")
    b.fetch()
    assert b.reset_to_upstream() == a.head() == b.head()
    assert sorted(p.name for p in b.path.iterdir()) == [".clude", ".git", "keep.log", "new.txt"]
    (b.path / "keep.log").unlink()  # no longer ignored: its untracked .gitignore was cleaned away
    (b.path / ".clude" / "state.json").write_text("{}")
    assert not b.commit_all("clude's state is never committed")


def test_commit_all_paths_only(tmp_path, upstream):
    repo = Repo.clone(str(upstream), tmp_path / "c")
    (repo.path / "tasks").mkdir()
    (repo.path / "tasks" / "T1.md").write_text("t1")
    (repo.path / "other.txt").write_text("not mine")
    (repo.path / "README.md").unlink()
    assert not repo.commit_all("nothing that exists", paths=["never.txt"])
    assert repo.commit_all("task and deletion", paths=["tasks/T1.md", "README.md", "never.txt"])
    assert git(repo.path, "show", "--name-status", "--format=", "HEAD").splitlines() == \
        ["D\tREADME.md", "A\ttasks/T1.md"]
    assert git(repo.path, "status", "--porcelain") == "?? other.txt"
    assert git(repo.path, "log", "-1", "--format=%an <%ae>") == "clude <clude@clude.localhost>"


def test_clone_reuses_a_clone_of_the_same_upstream(tmp_path, upstream):
    first = Repo.clone(str(upstream), tmp_path / "w")
    (first.path / "wip.txt").write_text("work in progress")
    other = Repo.clone(str(upstream), tmp_path / "other")
    (other.path / "more.txt").write_text("more")
    other.commit_all("more")
    assert other.push().status == "ok"

    again = Repo.clone(f"file://{upstream}", tmp_path / "w")  # same repository, spelled differently
    assert (again.path / "wip.txt").exists()  # reused, not re-cloned
    assert git(again.path, "rev-parse", "origin/main") == other.head()  # fetched

    elsewhere = tmp_path / "elsewhere.git"
    git(tmp_path, "init", "-q", "--bare", str(elsewhere))
    with pytest.raises(GitError, match="already a git repository"):
        Repo.clone(str(elsewhere), tmp_path / "w")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(GitError, match="not an empty folder"):
        Repo.clone(str(upstream), tmp_path / "full")


def test_clone_of_an_empty_upstream_starts_main(tmp_path):
    bare = tmp_path / "empty.git"
    git(tmp_path, "init", "-q", "--bare", "--initial-branch=trunk", str(bare))
    repo = Repo.clone(str(bare), tmp_path / "e")
    (repo.path / "first.txt").write_text("1")
    assert repo.commit_all("first")
    assert repo.push().status == "ok"
    assert files_at(bare, "main") == ["first.txt"]

    git(bare, "update-ref", "-d", "refs/heads/main")
    repo.fetch()
    with pytest.raises(GitError, match="no main branch"):
        repo.reset_to_upstream()


def test_two_clones_racing_one_push_one_wins(tmp_path, upstream):
    a = Repo.clone(str(upstream), tmp_path / "a", agent="a")
    b = Repo.clone(str(upstream), tmp_path / "b", agent="b")
    for round_ in range(4):
        for repo in (a, b):
            repo.fetch()
            repo.reset_to_upstream()
            (repo.path / f"{repo.agent}-{round_}.txt").write_text(repo.agent)
            assert repo.commit_all(f"{repo.agent} round {round_}")
        barrier = threading.Barrier(2)
        results: dict[str, PushResult] = {}

        def push(repo: Repo) -> None:
            barrier.wait()
            results[repo.agent] = repo.push()

        threads = [threading.Thread(target=push, args=(r,)) for r in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(r.status for r in results.values()) == ["ok", "race"], results
        winner = next(name for name, r in results.items() if r.status == "ok")
        loser = results["b" if winner == "a" else "a"]
        assert classify_push(loser.message) == "race" and loser.message
        assert git(upstream, "rev-parse", "main") == (a if winner == "a" else b).head()


# --- classify_push --------------------------------------------------------------------------

@pytest.mark.parametrize("stderr, expected", [
    (" ! [rejected]        HEAD -> main (fetch first)\nerror: failed to push some refs", "race"),
    (" ! [rejected]        HEAD -> main (non-fast-forward)", "race"),
    (" ! [remote rejected] HEAD -> main (failed to update ref)", "race"),
    ("remote: error: cannot lock ref 'refs/heads/main': is at 1a but expected 2b", "race"),
    ("error: cannot lock ref 'refs/heads/main': reference already exists", "race"),
    ("remote: error: incorrect old value provided", "race"),
    (" ! [rejected] main -> main (stale info)", "race"),
    ("error: Unable to create '/up.git/refs/heads/main.lock': File exists.", "race"),
    ("remote: refused by policy\n ! [remote rejected] HEAD -> main (pre-receive hook declined)", "rejected"),
    (" ! [remote rejected] HEAD -> main (hook declined)", "rejected"),
    ("error: Unable to create '/up.git/refs/heads/main.lock': Permission denied", "rejected"),
    ("remote: fatal: write error: No space left on device\n ! [remote rejected] main (failed to update ref)",
     "rejected"),
    ("error: remote unpack failed: unable to create temporary object directory\n"
     " ! [remote rejected] HEAD -> main (unpacker error)", "rejected"),
    ("fatal: unable to write new index file", "rejected"),
    ("fatal: '/nowhere' does not appear to be a git repository", "rejected"),
    ("fatal: Authentication failed for 'https://example.com/x.git/'", "rejected"),
    ("fatal: unable to connect to 127.0.0.1:\n127.0.0.1[0: 127.0.0.1]: errno=Connection refused", "rejected"),
    ("remote: the repository is read-only", "rejected"),
    ("something nobody has seen before", "rejected"),
])
def test_classify_push(stderr, expected):
    assert classify_push(stderr) == expected


def test_pre_receive_hook_refusal_is_rejected_with_its_words(tmp_path, upstream):
    add_hook(upstream, "pre-receive", "echo 'pushes are frozen for the release' >&2\nexit 1\n")
    repo = Repo.clone(str(upstream), tmp_path / "h")
    (repo.path / "x.txt").write_text("x")
    repo.commit_all("x")
    result = repo.push()
    assert result.status == "rejected"
    assert "pushes are frozen for the release" in result.message
    assert "hook declined" in result.message


def test_read_only_upstream_is_rejected(tmp_path, upstream):
    repo = Repo.clone(str(upstream), tmp_path / "r")
    (repo.path / "x.txt").write_text("x")
    repo.commit_all("x")
    if os.geteuid() != 0:
        objects = upstream / "objects"
        dirs = [objects, *(p for p in objects.rglob("*") if p.is_dir())]
        for d in dirs:
            d.chmod(d.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        try:
            result = repo.push()
        finally:
            for d in dirs:
                d.chmod(d.stat().st_mode | stat.S_IWUSR)
    else:  # root ignores permissions: push from a mount namespace where the upstream is mounted read-only
        script = ("import sys; from clude.team.protocol.git import Repo; r = Repo(sys.argv[1]).push(); "
                  "print(r.status); print(r.message)")
        proc = subprocess.run(
            ["unshare", "-m", "sh", "-c", 'mount --bind -o ro "$1" "$1" && exec "$2" -c "$3" "$4"', "sh",
             str(upstream), sys.executable, script, str(repo.path)],
            capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            pytest.skip(f"running as root without a read-only mount namespace: {proc.stderr.strip()}")
        status, _, message = proc.stdout.partition("\n")
        result = PushResult(status, message)  # type: ignore[arg-type]
    assert result.status == "rejected", result.message
    assert upstream_main(str(upstream)) != repo.head()


def test_same_url():
    assert same_url("/a/b/../up.git", "file:///a/up.git")
    assert same_url("git://h:9/x.git", "git://h:9/x")
    assert not same_url("/a/up.git", "/a/other.git")


# --- update_upstream ------------------------------------------------------------------------

def test_eight_agents_each_land_exactly_once(tmp_path, upstream):
    clones = [Repo.clone(str(upstream), tmp_path / f"agent{i}", agent=f"agent{i}") for i in range(8)]
    barrier = threading.Barrier(len(clones))
    calls = [0] * len(clones)
    errors: list[BaseException] = []

    def work(i: int, repo: Repo) -> None:
        def change(path: Path) -> str:
            calls[i] += 1
            (path / f"agent{i}.txt").write_text(f"agent {i}\n")
            with open(path / "log.txt", "a") as log:  # a file every agent edits: the races are real
                log.write(f"agent {i}\n")
            return f"agent {i} was here"
        barrier.wait()
        try:
            update_upstream(repo, change, rng=random.Random(i))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i, r)) for i, r in enumerate(clones)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(files_at(upstream)) == sorted(["README.md", "log.txt", *(f"agent{i}.txt" for i in range(8))])
    log = git(upstream, "show", "main:log.txt").splitlines()
    assert sorted(log) == sorted(f"agent {i}" for i in range(8))
    subjects = git(upstream, "log", "--format=%s", "main").splitlines()
    assert sorted(s for s in subjects if "was here" in s) == sorted(f"agent {i} was here" for i in range(8))
    assert sum(calls) >= 8


def test_change_that_no_longer_applies_pushes_nothing(tmp_path, upstream):
    repo = Repo.clone(str(upstream), tmp_path / "n")
    before = git(upstream, "rev-parse", "main")
    assert update_upstream(repo, lambda path: None) is None
    assert update_upstream(repo, lambda path: "a message, but no edit") == before
    assert git(upstream, "rev-parse", "main") == before

    def edit(path: Path) -> str:
        (path / "a.txt").write_text("a")
        return "add a"
    pushed = update_upstream(repo, edit)
    assert pushed == git(upstream, "rev-parse", "main") != before


def test_a_lost_race_redoes_the_change_on_the_new_upstream(tmp_path, upstream):
    repo = Repo.clone(str(upstream), tmp_path / "me", agent="me")
    rival = Repo.clone(str(upstream), tmp_path / "rival", agent="rival")
    seen: list[bool] = []
    sleeps: list[float] = []

    def change(path: Path) -> str:
        seen.append((path / "rival.txt").exists())
        if len(seen) == 1:  # the rival lands between our fetch and our push
            (rival.path / "rival.txt").write_text("r")
            rival.commit_all("rival")
            assert rival.push().status == "ok"
        (path / "mine.txt").write_text("m")
        return "mine"

    update_upstream(repo, change, sleep=sleeps.append, rng=random.Random(0))
    assert seen == [False, True] and len(sleeps) == 1 and 0.025 <= sleeps[0] <= 0.05
    assert sorted(files_at(upstream)) == ["README.md", "mine.txt", "rival.txt"]


def test_gives_up_after_attempts_lost_races(tmp_path, upstream):
    repo = Repo.clone(str(upstream), tmp_path / "me")
    rival = Repo.clone(str(upstream), tmp_path / "rival")
    sleeps: list[float] = []

    def change(path: Path) -> str:
        rival.fetch()
        rival.reset_to_upstream()
        (rival.path / "rival.txt").write_text(str(len(sleeps)) + os.urandom(4).hex())
        rival.commit_all("rival again")
        assert rival.push().status == "ok"
        (path / "mine.txt").write_text("m")
        return "mine"

    with pytest.raises(UpstreamRejected, match="gave up after 3 lost races"):
        update_upstream(repo, change, attempts=3, sleep=sleeps.append, rng=random.Random(1))
    assert len(sleeps) == 2 and "mine.txt" not in files_at(upstream)


def test_backoff_grows_to_two_seconds():
    rng = random.Random(5)
    delays = [race_backoff(n, rng) for n in range(1, 30)]
    assert 0.025 <= delays[0] <= 0.05 and all(1.0 <= d <= 2.0 for d in delays[8:])


def test_hook_refusal_raises_upstream_rejected_at_once(tmp_path, upstream):
    add_hook(upstream, "pre-receive", "echo 'quota exceeded for team' >&2\nexit 1\n")
    repo = Repo.clone(str(upstream), tmp_path / "q")
    calls = []

    def change(path: Path) -> str:
        calls.append(1)
        (path / "x.txt").write_text("x")
        return "x"

    with pytest.raises(UpstreamRejected, match="quota exceeded for team") as info:
        update_upstream(repo, change, sleep=lambda s: pytest.fail("a refusal is not retried"))
    assert calls == [1] and "hook declined" in info.value.stderr and "hooks" in str(info.value)


# --- init_team ------------------------------------------------------------------------------

def upstream_main(url: str) -> str:
    return subprocess.run(["git", "ls-remote", url, "refs/heads/main"], capture_output=True,
                          text=True, check=True).stdout.split("\t")[0]


def test_init_creates_a_sibling_upstream_and_is_idempotent(tmp_path):
    root = make_project(tmp_path)
    (root / "staged.txt").write_text("user's own staged work")
    git(root, "add", "staged.txt")
    url = init_team(root, None)
    assert Path(url) == default_upstream(root) == tmp_path / "proj.upstream.git"
    assert git(Path(url), "rev-parse", "--is-bare-repository") == "true"
    assert team_upstream(root) == url
    assert sorted(files_at(Path(url))) == sorted(["PROGRESS.md", "README.md", "current_tasks/.gitkeep",
                                                  "tasks/.gitkeep", "tasks/failures/.gitkeep"])
    assert "running log" in git(Path(url), "show", "main:PROGRESS.md")
    assert git(root, "log", "-1", "--format=%s") == "clude team init"
    assert git(root, "rev-parse", "--abbrev-ref", "HEAD") == "work"
    assert git(root, "status", "--porcelain") == "A  staged.txt"  # the user's index is untouched
    head, main = git(root, "rev-parse", "HEAD"), upstream_main(url)
    assert head == main

    (root / ".clude").mkdir()
    (root / ".clude" / "x").write_text("local")
    assert init_team(root, None) == url  # again: nothing new anywhere
    assert init_team(root, url) == url
    assert git(root, "rev-parse", "HEAD") == head and upstream_main(url) == main
    assert git(root, "status", "--porcelain") == "A  staged.txt"  # .clude/ is excluded

    clone = Repo.clone(url, tmp_path / "agent")  # what a worker does next
    assert (clone.path / "tasks" / "failures" / ".gitkeep").exists()


def test_init_with_existing_upstreams(tmp_path):
    root = make_project(tmp_path)
    bare = tmp_path / "shared" / "team.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    url = init_team(root, f"file://{bare}")
    assert url == f"file://{bare}" and team_upstream(root) == url
    assert "PROGRESS.md" in files_at(bare)

    # another repository that already is this project: an upstream whose main lacks the layout
    other = make_project(tmp_path, "other", {"a.py": "x = 1\n"})
    bare2 = tmp_path / "existing.git"
    git(tmp_path, "clone", "-q", "--bare", str(other), str(bare2))
    git(bare2, "branch", "-m", "work", "main")
    url2 = init_team(other, str(bare2))  # upstream main == HEAD: fast-forward with the layout
    assert sorted(files_at(bare2)) == sorted(["PROGRESS.md", "a.py", "current_tasks/.gitkeep",
                                              "tasks/.gitkeep", "tasks/failures/.gitkeep"])
    assert team_upstream(other) == url2 == str(bare2)

    # switching a repository to an upstream that is another team's: refused, nothing pushed
    before = upstream_main(str(bare2))
    with pytest.raises(TeamInitError, match="unrelated"):
        init_team(root, str(bare2))
    assert upstream_main(str(bare2)) == before
    assert team_upstream(root) == url  # still the first upstream


def test_init_refuses_an_upstream_ahead_of_the_branch(tmp_path):
    root = make_project(tmp_path)
    bare = tmp_path / "ahead.git"
    git(tmp_path, "clone", "-q", "--bare", str(root), str(bare))
    git(bare, "branch", "-m", "work", "main")
    ahead = tmp_path / "ahead"
    git(tmp_path, "clone", "-q", "-b", "main", str(bare), str(ahead))
    (ahead / "new.txt").write_text("n")
    git(ahead, "add", "-A")
    git(ahead, "commit", "-qm", "ahead")
    git(ahead, "push", "-q", "origin", "main")
    with pytest.raises(TeamInitError, match="git pull upstream main"):
        init_team(root, str(bare))


def test_init_errors_say_what_to_do(tmp_path):
    empty = tmp_path / "fresh"
    empty.mkdir()
    git(empty, "init", "-q")
    with pytest.raises(TeamInitError, match="no commits yet.*git commit"):
        init_team(empty, None)
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(TeamInitError, match="not a git repository.*git init"):
        init_team(plain, None)
    root = make_project(tmp_path)
    with pytest.raises(TeamInitError, match="cannot reach the upstream"):
        init_team(root, f"file://{tmp_path}/missing.git")
    with pytest.raises(TeamInitError, match=r"cannot reach the upstream git://127\.0\.0\.1"):
        init_team(root, f"git://127.0.0.1:{free_port()}/team.git")
    assert team_upstream(root) is None
    assert not (root / "PROGRESS.md").exists()


# --- over the network: git daemon on loopback ------------------------------------------------

def test_round_trip_through_git_daemon(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    git(served, "init", "-q", "--bare", "--initial-branch=main", "team.git")
    root = make_project(tmp_path)
    with git_daemon(served) as base:
        url = base + "team.git"
        assert init_team(root, url) == url  # an existing git:// upstream
        assert "tasks/.gitkeep" in files_at(served / "team.git")

        a = Repo.clone(url, tmp_path / "a", agent="a")
        b = Repo.clone(url, tmp_path / "b", agent="b")
        (a.path / "a.txt").write_text("a")
        a.commit_all("a over git://")
        assert a.push().status == "ok"
        (b.path / "b.txt").write_text("b")
        b.commit_all("b, behind")
        lost = b.push()
        assert lost.status == "race", lost.message

        def add_b(path: Path) -> str:
            (path / "b.txt").write_text("b")
            return "b over git://"
        assert update_upstream(b, add_b) == upstream_main(url)
        a.fetch()
        a.reset_to_upstream()
        assert (a.path / "b.txt").read_text() == "b"
        assert git(served / "team.git", "log", "-1", "--format=%an %s", "main") == "b b over git://"


def test_refresh_fetches_only_when_the_upstream_s_main_moved(tmp_path, bare_git_env):
    from clude.team.protocol.git import Repo, upstream_head
    upstream = tmp_path / "up.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(upstream)], check=True)
    seed = tmp_path / "seed"
    subprocess.run(["git", "clone", "-q", str(upstream), str(seed)], check=True, capture_output=True)
    git = ["git", "-C", str(seed), "-c", "user.name=s", "-c", "user.email=s@s"]
    subprocess.run(git + ["commit", "-q", "--allow-empty", "-m", "one"], check=True)
    subprocess.run(git + ["push", "-q", "origin", "HEAD:main"], check=True)
    clone = Repo.clone(str(upstream), tmp_path / "c")
    assert clone.refresh() is True and clone.refresh() is False  # nothing moved: no fetch
    subprocess.run(git + ["commit", "-q", "--allow-empty", "-m", "two"], check=True)
    subprocess.run(git + ["push", "-q", "origin", "HEAD:main"], check=True)
    assert upstream_head(str(upstream)) == subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True,
                                                         text=True).stdout.strip()
    assert clone.refresh() is True and clone.head() == upstream_head(str(upstream))
    subprocess.run(["git", "--git-dir", str(upstream), "pack-refs", "--all"], check=True)  # now in packed-refs
    assert upstream_head(str(upstream)) == clone.head() and clone.refresh() is False


def test_waiting_for_the_upstream_ends_when_its_main_moves(tmp_path, upstream):
    """An idle worker's wait: a local upstream's ref file looked at (no process), over at the first move."""
    from clude.team.protocol.git import upstream_head, wait_for_move
    repo = Repo.clone(str(upstream), tmp_path / "w")
    seen = upstream_head(str(upstream))
    looks = []

    def pause(seconds: float) -> None:
        looks.append(seconds)
        if len(looks) == 3:  # meanwhile, someone pushes
            (repo.path / "moved.txt").write_text("x")
            repo.commit_all("move")
            assert repo.push().ok

    clock = iter(range(1000)).__next__  # a second a look: the timeout is never what ends it here
    moved = wait_for_move(str(upstream), seen, 60.0, look_s=1.0, clock=clock, pause=pause)
    assert moved != seen and moved == upstream_head(str(upstream)) and len(looks) == 3
    assert wait_for_move(str(upstream), moved, 3.0, look_s=1.0, clock=iter(range(1000)).__next__,
                         pause=lambda s: None) == moved  # nothing moved: back after the timeout
    asked = []
    assert wait_for_move("https://example.invalid/x.git", "abc", 5.0, pause=asked.append) == "abc"
    assert asked == [5.0]  # another host's upstream: one wait, no ls-remote


def test_an_upstream_out_of_reach_is_waited_out_and_any_other_git_failure_is_not():
    from clude.team.protocol.failures import reaching

    pauses: list[float] = []
    clock = iter(range(0, 10_000, 5)).__next__  # 5 s a look
    answers = [GitError("fetch failed", stderr="fatal: unable to connect to 127.0.0.1:\nConnection refused"),
               GitError("fetch failed", stderr="fetch-pack: unexpected disconnect while reading sideband packet"),
               GitError("push failed (exit -13): ", returncode=-13),  # SIGPIPE: the connection dropped
               GitError("fetch failed", stderr="fatal: expected flush after ref listing"),  # cut mid-advertisement
               "fetched"]

    def fetch():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert reaching(fetch, sleep=pauses.append, clock=clock) == "fetched" and len(pauses) == 4
    quoted = GitError("push failed", stderr="remote: tests: Connection refused\n ! [remote rejected] HEAD -> main "
                                            "(pre-receive hook declined)")
    with pytest.raises(GitError):  # the upstream answered (its hook quoting a refusal): never waited for
        reaching(lambda: (_ for _ in ()).throw(quoted), sleep=pauses.append, clock=clock)
    lost_race = GitError("push failed", stderr="error: atomic push failed for ref refs/heads/main. status: 5\n\n"
                                               "fatal: the remote end hung up unexpectedly\n ! [rejected] HEAD -> "
                                               "main (fetch first)")
    with pytest.raises(GitError):  # a lost race (git's atomic push says "hung up"): fetched and redone instead
        reaching(lambda: (_ for _ in ()).throw(lost_race), sleep=pauses.append, clock=clock)
    refused = GitError("push failed", stderr="remote: hook declined")
    with pytest.raises(GitError, match="push failed"):  # not the network's: at once
        reaching(lambda: (_ for _ in ()).throw(refused), sleep=pauses.append, clock=clock)
    assert len(pauses) == 4
    down = GitError("fetch failed", stderr="Connection refused")
    with pytest.raises(GitError):  # still down after wait_s: it counts as a failure
        reaching(lambda: (_ for _ in ()).throw(down), wait_s=60, sleep=pauses.append, clock=clock)
    assert 4 < len(pauses) <= 4 + 13



def counting_git(tmp_path: Path, monkeypatch) -> Path:
    """A `git` first on PATH that writes down each call, then runs the real one."""
    real = subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True).stdout.strip()
    shims = tmp_path / "shims"
    shims.mkdir()
    calls = tmp_path / "git-calls"
    (shims / "git").write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec {real} "$@"\n')
    (shims / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}{os.environ['PATH']}")
    return calls


def test_a_local_upstream_is_fetched_in_process_and_only_when_it_moved(tmp_path, upstream, monkeypatch):
    """Fetching, pushing, checking out, committing and reading a board take no git process on a local
    upstream; a fetch with nothing new does nothing; the queue's refs come with a fetch that asks for them."""
    a = Repo.clone(str(upstream), tmp_path / "a", agent="a1")
    b = Repo.clone(str(upstream), tmp_path / "b", agent="a2")
    calls = counting_git(tmp_path, monkeypatch)
    (a.path / "new.txt").write_text("new\n")
    assert a.commit_all("add new.txt")
    assert a.push().status == "ok"
    tip = a.head()
    assert a.push_refs(f"{tip}:refs/clude/queued").status == "ok"
    pushes = calls.read_text().splitlines()  # nor the pushes (protocol/local.py), but for one look at
    assert len(pushes) == 1 and "config --list --includes" in pushes[0], pushes  # the upstream's rules
    assert git(upstream, "rev-parse", "main", "refs/clude/queued").split() == [tip, tip]
    calls.unlink()  # that rev-parse was a git process
    b.fetch()
    assert b.rev("refs/remotes/origin/main") == tip and b.rev("refs/clude/queued") is None
    b.fetch("+refs/clude/*:refs/clude/*")
    assert b.rev("refs/clude/queued") == tip
    assert b.reset_to_upstream() == tip and (b.path / "new.txt").read_text() == "new\n"
    assert b.show(tip, "new.txt") == "new\n" and b.changed_files(tip + "^", tip) == ["new.txt"]
    b.fetch("+refs/clude/*:refs/clude/*")  # nothing moved
    assert not calls.exists(), calls.read_text()

    git(a.path, "push", "-q", "origin", ":refs/clude/queued")  # gone upstream: pruned here
    b.fetch("+refs/clude/*:refs/clude/*")
    assert b.rev("refs/clude/queued") is None


def test_a_checkout_drops_changes_untracked_files_and_nested_repositories(tmp_path, upstream):
    """check_out(ignored=True) leaves exactly the commit (git clean -ffdx); without it ignored files stay."""
    a = Repo.clone(str(upstream), tmp_path / "a")
    base = a.head()
    (a.path / ".gitignore").write_text("*.log\nbuild/\n")
    a.commit_all("ignore logs")
    (a.path / "README.md").write_text("edited\n")
    (a.path / "deep" / "er").mkdir(parents=True)
    (a.path / "deep" / "er" / "x.py").write_text("x")
    (a.path / "run.log").write_text("log")
    (a.path / "build").mkdir()
    (a.path / "build" / "out.o").write_text("o")
    git(a.path, "init", "-q", "nested")
    (a.path / "nested" / "f").write_text("f")
    a.check_out(a.head())
    assert sorted(p.name for p in a.path.iterdir()) == [".git", ".gitignore", "README.md", "build", "run.log"]
    assert (a.path / "README.md").read_text() == "hello\n"
    a.check_out(base, ignored=True)
    assert sorted(p.name for p in a.path.iterdir()) == [".git", "README.md"]
    assert git(a.path, "status", "--porcelain", "--ignored") == "" and a.head() == base


def agent_change(tmp_path: Path, upstream: Path, make, never_land: tuple[str, ...] = ()
                 ) -> tuple[Repo, str, str | None]:
    """land, base and the commit take_result makes of an agent tree that `make(work)` changed."""
    from clude.team.work.agent_tree import prepare, take_result
    land = Repo.clone(str(upstream), tmp_path / "land", agent="a1")
    base = land.head()
    work = tmp_path / "work"
    prepare(land, work, "a1")
    make(work)
    return land, base, take_result(land, work, base, "the agent's change", never_land=never_land)


def test_what_an_agents_tool_leaves_never_lands(tmp_path, upstream):
    """aider's histories and tags cache, a swap file and a backup never land, whatever the agent's tool
    did to them; a copy the upstream itself keeps stays as it is; a change of droppings only is none."""
    from clude.team.backends import get_backend
    seed = tmp_path / "seed"
    (seed / ".aider.chat.history.md").write_text("the upstream keeps this one\n")
    git(seed, "add", "-A")
    git(seed, "commit", "-qm", "a history kept upstream")
    git(seed, "push", "-q", str(upstream), "HEAD:refs/heads/main")
    aider = get_backend("aider").spec
    assert "--analytics-disable" in aider.command

    def make(work: Path) -> None:
        (work / "a.py").write_text("x = 1\n")
        (work / ".aider.chat.history.md").write_text("# the whole chat\n")
        (work / ".aider.input.history").write_text("/add a.py\n")
        (work / ".aider.tags.cache.v4").mkdir()
        (work / ".aider.tags.cache.v4" / "cache.db").write_bytes(b"\0sqlite")
        (work / "sub").mkdir()
        (work / "sub" / ".a.py.swp").write_bytes(b"swap")
        (work / "notes.txt~").write_text("backup\n")

    land, base, commit = agent_change(tmp_path, upstream, make, never_land=aider.never_land)
    assert commit is not None
    assert land.changed_files(base, commit) == ["a.py"]
    assert land.show(commit, ".aider.chat.history.md") == "the upstream keeps this one\n"

    def droppings_only(work: Path) -> None:
        (work / ".aider.chat.history.md").unlink()
        (work / "x.swp").write_text("swap\n")

    assert agent_change(tmp_path / "again", upstream, droppings_only, never_land=aider.never_land)[2] is None


def test_an_agents_deletions_at_the_top_and_below_are_taken_and_team_files_are_base_s(tmp_path, upstream):
    """What the agent deleted is deleted in its change, a top-level file included; its edits to the
    team's files (the board, PROGRESS.md) are not taken, whatever it did to them."""
    seed = tmp_path / "seed"
    (seed / "old.py").write_text("old\n")
    (seed / "pkg").mkdir()
    (seed / "pkg" / "gone.py").write_text("gone\n")
    (seed / "PROGRESS.md").write_text("the log\n")
    (seed / "tasks").mkdir()
    (seed / "tasks" / "TASK-001.md").write_text("---\nid: TASK-001\n---\n")
    git(seed, "add", "-A")
    git(seed, "commit", "-qm", "files to delete")
    git(seed, "push", "-q", str(upstream), "HEAD:refs/heads/main")

    def make(work: Path) -> None:
        (work / "old.py").unlink()
        (work / "pkg" / "gone.py").unlink()
        (work / "new.py").write_text("new\n")
        (work / "PROGRESS.md").write_text("forged\n")
        (work / "tasks" / "TASK-001.md").unlink()
        (work / "tasks" / "TASK-002.md").write_text("---\nid: TASK-002\n---\n")

    land, base, commit = agent_change(tmp_path, upstream, make)
    assert land.changed_files(base, commit) == ["new.py", "old.py", "pkg/gone.py"]
    assert land.show(commit, "old.py") is None and land.show(commit, "PROGRESS.md") == "the log\n"
    assert land.show(commit, "tasks/TASK-001.md") is not None and land.show(commit, "tasks/TASK-002.md") is None


def test_a_symlink_in_a_change_is_never_written_through(tmp_path, upstream):
    """A folder the agent made a symlink to a place outside: checking the change out and back writes
    nothing there, and the folder is a folder again."""
    seed = tmp_path / "seed"
    (seed / "d").mkdir()
    (seed / "d" / "x").write_text("upstream's x\n")
    git(seed, "add", "-A")
    git(seed, "commit", "-qm", "d/x")
    git(seed, "push", "-q", str(upstream), "HEAD:refs/heads/main")
    outside = tmp_path / "outside"
    outside.mkdir()

    def make(work: Path) -> None:
        subprocess.run(["rm", "-rf", str(work / "d")], check=True)
        (work / "d").symlink_to(outside)

    land, base, commit = agent_change(tmp_path, upstream, make)
    assert commit is not None
    land.check_out(commit, ignored=True)
    land.check_out(base, ignored=True)
    assert list(outside.iterdir()) == []
    assert not (land.path / "d").is_symlink() and (land.path / "d" / "x").read_text() == "upstream's x\n"
    (land.path / "d").rename(land.path / "d.old")  # a test run turning a tracked folder into a link
    (land.path / "d").symlink_to(outside)
    land.check_out(base, ignored=True)
    assert list(outside.iterdir()) == [] and (land.path / "d" / "x").is_file()


def test_nested_repositories_are_dropped_from_a_change_and_stray_dot_gits_alone(tmp_path, upstream):
    def make(work: Path) -> None:
        subprocess.run(["git", "init", "-q", str(work / "vendored")], check=True)
        (work / "vendored" / "lib.py").write_text("x = 1\n")
        (work / "pointer").mkdir()
        (work / "pointer" / ".git").write_text("gitdir: /somewhere/else\n")
        (work / "pointer" / "p.py").write_text("p = 1\n")
        for name in ("empty", "bogus", "linked"):
            (work / name).mkdir()
            (work / name / "code.py").write_text(f"{name} = 1\n")
        (work / "empty" / ".git").mkdir()
        (work / "bogus" / ".git").write_text("not a repository\n")
        (work / "linked" / ".git").symlink_to(work / ".git")
        os.mkfifo(work / "bogus" / "fifo")
        (work / "new.py").write_text("new = 1\n")

    land, base, commit = agent_change(tmp_path, upstream, make)
    assert sorted(land.changed_files(base, commit)) == ["bogus/code.py", "empty/code.py", "linked/code.py",
                                                        "new.py"]


def test_a_folder_nested_deeper_than_libgit2_goes_is_still_cleaned(tmp_path, upstream):
    a = Repo.clone(str(upstream), tmp_path / "a")
    deep = a.path / "u" / "/".join(["a"] * 150)
    deep.mkdir(parents=True)
    (deep / "f").write_text("x")
    a.check_out(a.head())
    assert sorted(p.name for p in a.path.iterdir()) == [".git", "README.md"]


def test_a_stop_signal_during_an_in_process_fetch_is_raised_once_libgit2_has_returned(tmp_path, upstream):
    """libgit2 calls Python back while it fetches, and cffi drops an exception raised in a callback: a
    SIGINT handled there left a worker running (seen in CI). Inside signals_deferred a stop signal is
    noted, and raised on the way out, to the handler it had; the fetch itself is whole."""
    import signal

    from clude.team.protocol.objects import fetch_local, open_repo, signals_deferred
    clone = Repo.clone(str(upstream), tmp_path / "c")
    seed = make_project(tmp_path, "more", {"two.txt": "2\n"})
    git(seed, "push", "-q", "-f", str(upstream), "HEAD:refs/heads/main")
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            fetch_local(open_repo(clone.path), "origin", ["+refs/heads/main:refs/remotes/origin/main"])
            reached.append("fetched")
    assert reached == ["fetched"]
    assert git(clone.path, "rev-parse", "origin/main") == git(upstream, "rev-parse", "main")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler it had, back
