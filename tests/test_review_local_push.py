"""An adversarial review of the in-process push to a local upstream and of the turn thread (issue 12):
each test is a weakness a helper session found and proved, failing, against the first version; all
are mended. Real git in temp dirs, nothing of the code under test replaced."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from team_helpers import committed_change as change, protected_upstream

from clude.team.protocol import local
from clude.team.protocol.git import Repo

FIXED = {"GIT_AUTHOR_DATE": "2000-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2000-01-01T00:00:00Z",
         "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
         "GIT_COMMITTER_EMAIL": "t@t"}


def git(cwd: Path, *args: str, check: bool = True, input: str | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(cwd), *args], check=check, capture_output=True, text=True,
                          input=input, env={**os.environ, **FIXED, **(env or {})})


@pytest.fixture
def upstream(tmp_path) -> Path:
    """A bare upstream as `clude team init` makes it; its main is a fixed (deterministic) seed commit."""
    return protected_upstream(tmp_path, git)


def frozen_hooks(tmp_path: Path) -> Path:
    hooks = tmp_path / "frozen-hooks"
    hooks.mkdir()
    hook = hooks / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is frozen' >&2\nexit 1\n")
    hook.chmod(0o755)
    return hooks


# 1 -------------------------------------------------------------------------------------------------
def test_hooks_path_from_a_conditional_include_is_not_bypassed(tmp_path, upstream):
    """git applies `[includeIf "gitdir:..."]` (and hasconfig:) to receive-pack, libgit2 does not: the
    upstream's rules are read from git itself, and any include at all means `git push`, whose
    receive-pack runs the pre-receive hook that freezes main."""
    hooks = frozen_hooks(tmp_path)
    included = tmp_path / "frozen.cfg"
    included.write_text(f"[core]\n\thooksPath = {hooks}\n")
    config = upstream / "config"
    config.write_text(config.read_text() + f'[includeIf "gitdir:{upstream}/"]\n\tpath = {included}\n')
    assert git(upstream, "config", "core.hooksPath").stdout.strip() == str(hooks)  # git sees it
    before = git(upstream, "rev-parse", "main").stdout.strip()
    a = Repo.clone(str(upstream), tmp_path / "a", agent="a1")
    change(a, "b.py", "b = 2\n")
    result = a.push()
    assert result.status == "rejected" and "frozen" in result.message, result
    assert git(upstream, "rev-parse", "main").stdout.strip() == before


# 2 -------------------------------------------------------------------------------------------------
def test_hooks_path_from_the_users_global_config_is_not_bypassed(tmp_path, upstream, monkeypatch):
    """receive-pack (run by `git push`) reads the user's global and system config, which clude's libgit2
    does not: a core.hooksPath or receive rule the user set there means `git push`, which honours it."""
    hooks = frozen_hooks(tmp_path)
    globalcfg = tmp_path / "global.cfg"
    globalcfg.write_text(f"[core]\n\thooksPath = {hooks}\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(globalcfg))
    a = Repo.clone(str(upstream), tmp_path / "a", agent="a1")
    change(a, "b.py", "b = 2\n")
    # control: a plain `git push` (the path used before this change) is refused by the hook
    real = git(a.path, "push", "origin", "HEAD:refs/heads/side", check=False)
    assert real.returncode != 0 and "frozen" in real.stderr
    before = git(upstream, "rev-parse", "main").stdout.strip()
    result = a.push()
    assert result.status == "rejected" and "frozen" in result.message, result
    assert git(upstream, "rev-parse", "main").stdout.strip() == before


# 3 -------------------------------------------------------------------------------------------------
def test_an_interrupted_copy_never_lets_a_later_push_land_a_commit_with_missing_objects(tmp_path, upstream):
    """copy_objects stops at any object the upstream has, assuming what it holds is there too: so every
    object must be written after its parts. The first version wrote a tree before a blob it shared with a
    tree found earlier: a copy cut short (kill, ENOSPC, I/O error: here a file where the blob's fan-out
    folder goes) left the tree without its blob, and a later push of a commit reaching that tree moved
    main to a commit git fsck calls broken."""
    a = Repo.clone(str(upstream), tmp_path / "a", agent="a1")
    assert local.direct(str(upstream)) is not None  # pushed to in process, not by git

    def blob(text: str) -> str:
        return git(a.path, "hash-object", "-w", "--stdin", input=text).stdout.strip()

    def tree(lines: list[str]) -> str:
        return git(a.path, "mktree", input="".join(lines)).stdout.strip()

    shared, one, two = blob("shared\n"), blob("one\n"), blob("two\n")
    t1 = tree([f"100644 blob {shared}\tx.txt\n", f"100644 blob {one}\ty.txt\n"])
    t2 = tree([f"100644 blob {shared}\tx.txt\n", f"100644 blob {two}\tz.txt\n"])
    base = git(a.path, "rev-parse", "HEAD").stdout.strip()
    src = git(a.path, "rev-parse", "HEAD:src").stdout.strip()
    root = tree([f"040000 tree {t1}\tdir1\n", f"040000 tree {t2}\tdir2\n", f"040000 tree {src}\tsrc\n"])
    first = git(a.path, "commit-tree", root, "-p", base, "-m", "two dirs").stdout.strip()
    new = {shared, one, two, t1, t2, root, first}
    assert len({oid[:2] for oid in new}) == len(new)  # the fixed content keeps fan-out folders apart

    # the copy is cut short at the shared blob (its fan-out folder cannot be made)
    blocker = upstream / "objects" / shared[:2]
    blocker.write_text("")
    cut = a.push_refs(f"{first}:refs/heads/main")
    assert cut.status == "rejected"
    blocker.unlink()
    assert git(upstream, "cat-file", "-e", shared, check=False).returncode != 0  # the blob did not land
    # ... and nothing that holds it did (the first version had written t1 before it)
    assert all(git(upstream, "cat-file", "-e", oid, check=False).returncode != 0 for oid in (t1, t2, root, first))

    # a later push (same clone or another worker) of a commit holding dir1 as it was
    later_root = tree([f"040000 tree {t1}\tdir1\n", f"040000 tree {src}\tsrc\n"])
    later = git(a.path, "commit-tree", later_root, "-p", base, "-m", "dir1 only").stdout.strip()
    pushed = a.push_refs(f"{later}:refs/heads/main")
    fsck = git(upstream, "fsck", "--no-dangling", check=False)
    assert pushed.status != "ok" or fsck.returncode == 0, f"main moved to {later}; fsck: {fsck.stdout}{fsck.stderr}"


# 4 -------------------------------------------------------------------------------------------------
TURN_CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from clude.team.protocol.turns import in_turn
    state, marker = Path(sys.argv[1]), Path(sys.argv[2])
    try:
        in_turn(state, lambda: marker.write_text("claimed"))
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
""")


def _blocked_on_flock(pid: int) -> bool:
    """Whether a thread of `pid` waits for a flock (a "->" line of /proc/locks)."""
    return any("->" in line and str(pid) in line.split() for line in Path("/proc/locks").read_text().splitlines())


def test_a_worker_stopped_while_waiting_for_its_turn_stops_and_does_not_take_the_turn_afterwards(tmp_path):
    """A stop (Ctrl-C / SIGTERM made an exception in the main thread) while a worker waits for the turn
    ends the wait and the worker; its turn's work is never done afterwards. The first version waited in
    the turn thread: the stopped worker hung until the turn was free, then pushed its claim anyway."""
    from clude.store import exclusive
    from clude.team.protocol.turns import PUSH_TURN_FILE

    state, marker = tmp_path / "state", tmp_path / "claimed"
    state.mkdir()
    script = tmp_path / "child.py"
    script.write_text(TURN_CHILD)
    with exclusive(state / PUSH_TURN_FILE) as held:  # another worker holds the turn
        assert held
        child = subprocess.Popen([sys.executable, str(script), str(state), str(marker)],
                                 stdout=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 10
            while not _blocked_on_flock(child.pid):  # the child waits for the turn now
                assert child.poll() is None and time.monotonic() < deadline
                time.sleep(0.01)
            child.send_signal(signal.SIGINT)  # stop it
            try:
                child.wait(timeout=3)
                exited_while_turn_held = True
            except subprocess.TimeoutExpired:
                exited_while_turn_held = False
        finally:
            pass  # the turn is released here
    try:
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    problems = ([] if exited_while_turn_held else ["the stopped worker hung until another worker released the turn"]) \
        + (["the stopped worker still did its turn's work (a claim) afterwards"] if marker.exists() else [])
    assert not problems, problems


# 5 -------------------------------------------------------------------------------------------------
def test_an_invalid_ref_name_is_never_written_to_the_upstream(tmp_path, upstream):
    """libgit2's transaction accepts a ref name git refuses ("a..b"): such a name goes to `git push`,
    which refuses it, and nothing is written to the upstream."""
    a = Repo.clone(str(upstream), tmp_path / "a", agent="a1")
    try:
        result = a.push_refs("HEAD:refs/heads/a..b")
    except Exception as error:  # noqa: BLE001
        result = error
    assert not (upstream / "refs" / "heads" / "a..b").exists(), f"written to the upstream; push gave {result!r}"
    assert git(upstream, "fsck", "--no-dangling", check=False).returncode == 0


# 6 -------------------------------------------------------------------------------------------------
def test_a_local_fetch_keeps_the_remote_head_symref(tmp_path, upstream):
    """`git fetch --prune` keeps refs/remotes/origin/HEAD (made by clone); so does a fetch in process."""
    a = Repo.clone(str(upstream), tmp_path / "a", agent="a1")
    git(a.path, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main")
    b = Repo.clone(str(upstream), tmp_path / "b", agent="a2")
    change(b, "b.py", "b = 2\n")
    assert b.push().status == "ok"  # the upstream's main moved: the next fetch is done
    a.fetch()
    assert git(a.path, "symbolic-ref", "-q", "refs/remotes/origin/HEAD", check=False).returncode == 0
