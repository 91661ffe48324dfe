"""Parallel steps on git worktrees: snapshots, per-step worktrees, merging back, clean-up (real git)."""

from __future__ import annotations

import os
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from clude.agent.merge import merge_back
from clude.agent.worktrees import (NotAGitRepo, StepWorktree, changed_files, create_worktree,
                                   is_git_repo, prune_worktrees, remove_worktree, snapshot,
                                   worktree_changes)
from conftest import write_files


pytestmark = pytest.mark.usefixtures("bare_git_env")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(cwd),
                           *args], check=True, capture_output=True, text=True).stdout


def make_repo(tmp_path: Path, files: dict[str, str], name: str = "repo") -> Path:
    root = tmp_path / name
    root.mkdir()
    git(root, "init", "-q")
    write_files(root, files)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    return root


def tree_files(repo: Path, commit: str) -> set[str]:
    return set(git(repo, "ls-tree", "-r", "--name-only", commit).splitlines())


def run_step(root: Path, base: str, path: Path, edit) -> str:
    """A whole step: worktree, edit(workdir), commit, remove; returns the step's commit."""
    with StepWorktree.create(root, base, path) as wt:
        edit(wt.workdir)
        return wt.commit()


def worktree_paths(root: Path) -> list[str]:
    return [line[len("worktree "):] for line in git(root, "worktree", "list", "--porcelain")
            .splitlines() if line.startswith("worktree ")]


def no_markers(root: Path) -> bool:
    return not any(b"<<<<<<<" in p.read_bytes() for p in root.rglob("*")
                   if p.is_file() and ".git" not in p.parts)


LINES = "".join(f"line {i}\n" for i in range(1, 21))


def test_snapshot_holds_the_working_tree_and_leaves_root_untouched(tmp_path):
    root = make_repo(tmp_path, {"a.txt": "a\n", "b.txt": "b\n", "c.txt": "c\n",
                                ".gitignore": "*.log\n"})
    (root / "c.txt").write_text("stashed\n")
    git(root, "stash", "-q")
    (root / "a.txt").write_text("a changed\n")
    (root / "b.txt").unlink()
    write_files(root, {"d/new.txt": "new\n", "x.log": "ignored\n", "e.txt": "staged\n",
                       ".clude/state.json": "{}\n"})
    git(root, "add", "e.txt")
    before = (git(root, "rev-parse", "HEAD"), git(root, "status", "--porcelain"),
              git(root, "stash", "list"), git(root, "branch"))
    index_before = (root / ".git" / "index").read_bytes()

    commit = snapshot(root)

    assert (root / ".git" / "index").read_bytes() == index_before
    assert (git(root, "rev-parse", "HEAD"), git(root, "status", "--porcelain"),
            git(root, "stash", "list"), git(root, "branch")) == before
    assert tree_files(root, commit) == {".gitignore", "a.txt", "c.txt", "d/new.txt", "e.txt"}
    assert git(root, "show", f"{commit}:a.txt") == "a changed\n"
    assert git(root, "show", f"{commit}:c.txt") == "c\n"
    assert git(root, "rev-parse", f"{commit}^") == before[0]


def test_snapshot_in_a_repository_without_commits(tmp_path):
    root = tmp_path / "fresh"
    root.mkdir()
    git(root, "init", "-q")
    write_files(root, {"main.py": "print(1)\n", "pkg/mod.py": "x = 1\n"})
    commit = snapshot(root)
    assert tree_files(root, commit) == {"main.py", "pkg/mod.py"}
    assert git(root, "rev-list", "--parents", "-n", "1", commit).split() == [commit]
    assert subprocess.run(["git", "-C", str(root), "rev-parse", "-q", "--verify", "HEAD"],
                          capture_output=True).returncode == 1
    assert not (root / ".git" / "index").exists()


def test_worktree_has_the_snapshot_and_links_to_ignored_folders(tmp_path):
    root = make_repo(tmp_path, {"app.py": "x = 1\n", ".gitignore": ".venv/\nnode_modules\n"
                                                                   "__pycache__/\n"})
    write_files(root, {".venv/bin/tool": "#!/bin/sh\n", "node_modules/m/index.js": "1\n",
                       "__pycache__/app.pyc": "", "untracked.py": "y = 2\n"})
    base = snapshot(root)
    wt = StepWorktree.create(root, base, tmp_path / "wt" / "s1")
    assert wt.workdir == wt.path == tmp_path / "wt" / "s1"
    assert (wt.path / "untracked.py").read_text() == "y = 2\n"
    assert (wt.path / ".venv").is_symlink()
    assert (wt.path / ".venv" / "bin" / "tool").read_text() == "#!/bin/sh\n"
    assert (wt.path / "node_modules").resolve() == (root / "node_modules").resolve()
    assert not (wt.path / "__pycache__").exists()
    assert wt.links == (".venv", "node_modules")

    unchanged = wt.commit()
    assert changed_files(root, base, unchanged) == []
    assert git(root, "rev-parse", f"{unchanged}^{{tree}}") == git(root, "rev-parse",
                                                                  f"{base}^{{tree}}")

    (wt.path / "added.py").write_text("z = 3\n")
    git(wt.path, "add", ".venv")  # the `.venv/` pattern does not cover a symlink: staged anyway
    assert changed_files(root, base, worktree_changes(wt.path, base)) == ["added.py"]

    wt.remove()
    assert not wt.path.exists()
    assert (root / ".venv" / "bin" / "tool").read_text() == "#!/bin/sh\n"
    assert (root / "node_modules" / "m" / "index.js").exists()
    assert worktree_paths(root) == [str(root)]


def test_steps_editing_different_files_both_merge(tmp_path):
    root = make_repo(tmp_path, {"a.py": "a = 1\n", "b.py": "b = 1\n"})
    (root / "a.py").write_text("a = 2\n")  # an earlier step's uncommitted work
    head, index = git(root, "rev-parse", "HEAD"), git(root, "ls-files", "-s")
    base = snapshot(root)
    first = run_step(root, base, tmp_path / "wt" / "1", lambda d: (d / "a.py").write_text("a = 3\n"))
    second = run_step(root, base, tmp_path / "wt" / "2", lambda d: (d / "b.py").write_text("b = 3\n"))
    outcome = merge_back(root, base, first)
    assert outcome.ok and outcome.applied == ["a.py"]
    assert "a.py" in outcome.describe()
    assert merge_back(root, base, second).applied == ["b.py"]
    assert (root / "a.py").read_text() == "a = 3\n"
    assert (root / "b.py").read_text() == "b = 3\n"
    assert (git(root, "rev-parse", "HEAD"), git(root, "ls-files", "-s")) == (head, index)


def test_different_lines_of_one_file_merge_cleanly(tmp_path):
    root = make_repo(tmp_path, {"f.txt": LINES})
    base = snapshot(root)
    first = run_step(root, base, tmp_path / "wt" / "1",
                     lambda d: (d / "f.txt").write_text(LINES.replace("line 2\n", "two\n")))
    second = run_step(root, base, tmp_path / "wt" / "2",
                      lambda d: (d / "f.txt").write_text(LINES.replace("line 18\n", "eighteen\n")))
    assert merge_back(root, base, first).ok
    assert merge_back(root, base, second).applied == ["f.txt"]
    assert (root / "f.txt").read_text() == LINES.replace("line 2\n", "two\n").replace(
        "line 18\n", "eighteen\n")


def test_merges_compare_files_as_git_stores_them(tmp_path):
    """eol=crlf: the worktree has CRLF, root's file has LF and a change of its own since the
    snapshot; merged on the stored (LF) forms, not line-ending noise, and written back as CRLF."""
    root = make_repo(tmp_path, {"f.txt": LINES, ".gitattributes": "*.txt text eol=crlf\n"})
    (root / "f.txt").write_text(LINES.replace("line 10\n", "ten\n"))
    base = snapshot(root)
    (root / "f.txt").write_text(LINES.replace("line 10\n", "ten\n").replace("line 9\n", "nine\n"))

    def edit(d: Path) -> None:
        assert (d / "f.txt").read_bytes().startswith(b"line 1\r\n")
        (d / "f.txt").write_bytes((d / "f.txt").read_bytes().replace(b"line 2\r", b"two\r"))

    assert merge_back(root, base, run_step(root, base, tmp_path / "wt" / "1", edit)).ok
    expected = LINES.replace("line 2\n", "two\n").replace("line 9\n", "nine\n").replace(
        "line 10\n", "ten\n")
    assert (root / "f.txt").read_bytes() == expected.replace("\n", "\r\n").encode()


def test_same_lines_conflict_and_nothing_of_the_step_is_applied(tmp_path):
    root = make_repo(tmp_path, {"f.txt": LINES, "g.txt": "g\n"})
    base = snapshot(root)
    first = run_step(root, base, tmp_path / "wt" / "1",
                     lambda d: (d / "f.txt").write_text(LINES.replace("line 5\n", "five\n")))

    def second_edit(d: Path) -> None:
        (d / "f.txt").write_text(LINES.replace("line 5\n", "FIVE\n"))
        (d / "g.txt").write_text("g changed\n")
        (d / "h.txt").write_text("new\n")

    second = run_step(root, base, tmp_path / "wt" / "2", second_edit)
    assert merge_back(root, base, first).ok
    outcome = merge_back(root, base, second)
    assert not outcome.ok
    assert (outcome.conflicts, outcome.applied) == (["f.txt"], [])
    hunk = outcome.details[0].hunks[0]
    assert (hunk.line, hunk.current, hunk.step) == (5, ("five",), ("FIVE",))
    text = outcome.describe()
    assert "f.txt" in text and "'FIVE'" in text and "'five'" in text and "\n" not in text
    assert (root / "f.txt").read_text() == LINES.replace("line 5\n", "five\n")
    assert (root / "g.txt").read_text() == "g\n"
    assert not (root / "h.txt").exists()
    assert no_markers(root)


def test_delete_against_a_change_conflicts(tmp_path):
    root = make_repo(tmp_path, {"f.txt": "f\n"})
    base = snapshot(root)
    deleting = run_step(root, base, tmp_path / "wt" / "1", lambda d: (d / "f.txt").unlink())
    (root / "f.txt").write_text("changed here\n")
    outcome = merge_back(root, base, deleting)
    assert outcome.conflicts == ["f.txt"] and "deleted by the step" in outcome.describe()
    assert (root / "f.txt").read_text() == "changed here\n"


def test_step_deleting_a_file_and_adding_one_in_a_new_folder(tmp_path):
    root = make_repo(tmp_path, {"old/gone.py": "x\n", "keep.py": "k\n"})
    base = snapshot(root)

    def edit(d: Path) -> None:
        (d / "old" / "gone.py").unlink()
        write_files(d, {"new/deep/mod.py": "y = 1\n"})

    result = run_step(root, base, tmp_path / "wt" / "1", edit)
    assert changed_files(root, base, result) == ["new/deep/mod.py", "old/gone.py"]
    outcome = merge_back(root, base, result)
    assert outcome.applied == ["new/deep/mod.py", "old/gone.py"]
    assert not (root / "old").exists()
    assert (root / "new" / "deep" / "mod.py").read_text() == "y = 1\n"


def test_executable_bits_are_kept(tmp_path):
    root = make_repo(tmp_path, {"run.sh": "#!/bin/sh\necho 1\n", "tool.sh": "#!/bin/sh\n"})
    (root / "tool.sh").chmod(0o755)
    base = snapshot(root)

    def edit(d: Path) -> None:
        (d / "run.sh").chmod(0o755)
        (d / "tool.sh").write_text("#!/bin/sh\necho tool\n")
        (d / "new.sh").write_text("#!/bin/sh\n")
        (d / "new.sh").chmod(0o755)

    outcome = merge_back(root, base, run_step(root, base, tmp_path / "wt" / "1", edit))
    assert outcome.applied == ["new.sh", "run.sh", "tool.sh"]
    for name in ("run.sh", "tool.sh", "new.sh"):
        assert os.stat(root / name).st_mode & stat.S_IXUSR, name
    assert (root / "tool.sh").read_text() == "#!/bin/sh\necho tool\n"


def test_binary_file_changed_on_both_sides_conflicts(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    (root / "data.bin").write_bytes(b"\0\1\2" * 10)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    base = snapshot(root)
    first = run_step(root, base, tmp_path / "wt" / "1",
                     lambda d: (d / "data.bin").write_bytes(b"\0first"))
    second = run_step(root, base, tmp_path / "wt" / "2",
                      lambda d: (d / "data.bin").write_bytes(b"\0second"))
    assert merge_back(root, base, first).ok
    outcome = merge_back(root, base, second)
    assert outcome.conflicts == ["data.bin"] and "binary" in outcome.describe()
    assert (root / "data.bin").read_bytes() == b"\0first"


def test_root_in_a_subfolder_of_its_repository(tmp_path):
    repo = make_repo(tmp_path, {"app/main.py": "x = 1\n", "other/o.py": "o\n"})
    root = repo / "app"
    base = snapshot(root)
    path = tmp_path / "wt" / "1"
    workdir = create_worktree(root, base, path)
    assert workdir == path / "app" and (workdir / "main.py").exists()
    (workdir / "added.py").write_text("y\n")
    outcome = merge_back(root, base, worktree_changes(workdir, base))
    remove_worktree(root, path)
    assert outcome.applied == ["app/added.py"]
    assert (root / "added.py").read_text() == "y\n"


def test_remove_and_prune_after_a_worktree_was_deleted_by_hand(tmp_path):
    import shutil

    root = make_repo(tmp_path, {"a.txt": "a\n"})
    base = snapshot(root)
    under = tmp_path / "wt"
    gone = create_worktree(root, base, under / "gone")
    shutil.rmtree(gone)
    remove_worktree(root, gone)
    remove_worktree(root, gone)  # twice: still fine
    assert worktree_paths(root) == [str(root)]

    leftovers = [create_worktree(root, base, under / f"left{i}") for i in range(3)]
    shutil.rmtree(leftovers[0])  # one folder deleted, two still there (as after kill -9)
    elsewhere = create_worktree(root, base, tmp_path / "elsewhere")
    removed = prune_worktrees(root, under)
    assert sorted(p.name for p in removed) == ["left0", "left1", "left2"]
    assert worktree_paths(root) == [str(root), str(elsewhere)]
    assert not any(under.iterdir())
    assert prune_worktrees(root, tmp_path / "missing") == []


def test_not_a_repository(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    assert not is_git_repo(plain)
    assert is_git_repo(make_repo(tmp_path, {"a": "a\n"}))
    with pytest.raises(NotAGitRepo) as caught:
        snapshot(plain)
    assert str(caught.value) == (f"--parallel needs a git repository: {plain} is not one "
                                 f"(git init, or run without --parallel)")


def test_parallel_steps_all_merge(tmp_path):
    root = make_repo(tmp_path, {"shared.txt": "s\n"})
    write_files(root, {".clude/.gitignore": "*\n"})
    base = snapshot(root)
    errors: list[BaseException] = []

    def step(i: int) -> None:
        try:
            path = root / ".clude" / "worktrees" / f"step-{i}"
            result = run_step(root, base, path,
                              lambda d: (d / f"file{i}.txt").write_text(f"{i}\n"))
            outcome = merge_back(root, base, result)
            assert outcome.applied == [f"file{i}.txt"], outcome.describe()
        except BaseException as e:  # noqa: BLE001 - re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=step, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert all((root / f"file{i}.txt").read_text() == f"{i}\n" for i in range(8))
    assert worktree_paths(root) == [str(root)]
    assert not any((root / ".clude" / "worktrees").iterdir())
