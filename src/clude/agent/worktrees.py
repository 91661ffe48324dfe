"""Git worktrees for parallel steps: snapshot the working directory, one worktree per step, clean-up."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

# GitError is re-exported: callers of this module have always caught it from here.
from clude.gitcli import IDENTITY_ENV, GitError, git_text, run_git

# Serializes `git worktree add/remove/prune`: git's bookkeeping under .git/worktrees is not safe
# against concurrent changes (a prune can drop the entry of a worktree another thread is adding).
WORKTREE_LOCK = threading.Lock()
# Serializes whatever reads or writes the user's working directory as a whole: merge_back (merges
# apply one at a time, each against the files as the previous one left them) and snapshot (so a
# snapshot never captures half of a merge).
MERGE_LOCK = threading.Lock()

# Commits are made with clude's identity (gitcli.IDENTITY_ENV), so no user git config is needed.
IDENTITY = IDENTITY_ENV
# Ignored top-level folders never linked into a worktree: git's own, clude's state, and caches that
# parallel steps would fight over (each worktree rebuilds its own).
NOT_LINKED = frozenset({".git", ".clude", "__pycache__", ".pytest_cache", ".mypy_cache",
                        ".ruff_cache", ".hypothesis"})
# In a worktree's admin folder (.git/worktrees/<name>): the symlinks we made, NUL-separated.
LINKS_FILE = "clude-links"
# clude's state folders are never part of a snapshot or of a step's changes.
EXCLUDE_CLUDE = ":(exclude,glob)**/.clude/**"
NO_HOOKS = ("-c", f"core.hooksPath={os.devnull}")


class NotAGitRepo(GitError):
    """--parallel was asked for in a folder that is not inside a git work tree."""

    def __init__(self, root: Path) -> None:
        super().__init__(f"--parallel needs a git repository: {root} is not one "
                         f"(git init, or run without --parallel)")
        self.root = root


def locate(root: Path) -> tuple[Path, str]:
    """(top folder of root's work tree, root's path under it as "sub/dir/" or ""); NotAGitRepo."""
    try:
        out = git_text(root, "rev-parse", "--show-toplevel", "--show-prefix")
    except GitError as e:
        if e.returncode is None:
            raise
        raise NotAGitRepo(root) from None
    top, _, prefix = out.partition("\n")
    if not top:
        raise NotAGitRepo(root)
    return Path(top), prefix


def is_git_repo(root: Path) -> bool:
    try:
        locate(root)
    except NotAGitRepo:
        return False
    return True


def _head(top: Path) -> str:
    """The HEAD commit, or "" in a repository without commits."""
    return git_text(top, "rev-parse", "-q", "--verify", "HEAD^{commit}", ok=(0, 1))


def _commit(cwd: Path, tree: str, parent: str, message: str) -> str:
    args = ["commit-tree", "--no-gpg-sign", tree, "-m", message]
    if parent:
        args += ["-p", parent]
    return git_text(cwd, *args)


def snapshot(root: Path) -> str:
    """A commit holding root's working tree as it is now: tracked changes, deletions and untracked
    files (honouring .gitignore; clude's .clude folders left out), parent HEAD if any. Root's HEAD,
    index and stash are untouched: the commit is built in a temporary index seeded from HEAD."""
    top, _ = locate(root)
    head = _head(top)
    with MERGE_LOCK, tempfile.TemporaryDirectory(prefix="clude-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        if head:
            run_git(top, "read-tree", head, env=env)
        run_git(top, "add", "-A", "--", ".", EXCLUDE_CLUDE, env=env)
        tree = git_text(top, "write-tree", env=env)
    return _commit(top, tree, head, "clude: snapshot of the working directory")


def _admin_dir(path: Path) -> Path | None:
    """A linked worktree's folder under .git/worktrees, read from its .git file (None if gone)."""
    try:
        text = (path / ".git").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith("gitdir:"):
        return None
    admin = Path(text[len("gitdir:"):].strip())
    return admin if admin.is_absolute() else path / admin


def _read_links(path: Path) -> list[str]:
    admin = _admin_dir(path)
    try:
        data = (admin / LINKS_FILE).read_bytes() if admin else b""
    except OSError:
        return []
    return [os.fsdecode(name) for name in data.split(b"\0") if name]


def _link_ignored(root: Path, workdir: Path, top: Path) -> tuple[str, ...]:
    """Symlink into workdir every ignored top-level folder of root that workdir lacks (.venv,
    node_modules, ...), so the step can run the project's tools; returns their paths under top."""
    names = [e.name for e in os.scandir(root) if e.name not in NOT_LINKED and e.is_dir()
             and not os.path.lexists(workdir / e.name)]
    if not names:
        return ()
    out = run_git(root, "check-ignore", "-z", "--stdin", ok=(0, 1),
                  input=b"".join(os.fsencode(n) + b"\0" for n in names)).stdout
    links = []
    for name in sorted(os.fsdecode(n) for n in out.split(b"\0") if n):
        (workdir / name).symlink_to(root.absolute() / name, target_is_directory=True)
        links.append((workdir / name).relative_to(top).as_posix())
    if links:
        admin = _admin_dir(top)
        assert admin is not None, f"{top} is not a linked worktree"
        (admin / LINKS_FILE).write_bytes(b"".join(os.fsencode(n) + b"\0" for n in links))
    return tuple(links)


@dataclass(frozen=True)
class StepWorktree:
    """One step's private checkout of a snapshot, detached (no branch), removed when done.

    Ignored top-level folders of root (.venv, node_modules, ...) are symlinked in, so the step's
    commands run there. They are root's folders, shared: an editable install in root's .venv still
    imports root's code, not the worktree's (put the worktree's source first on PYTHONPATH to test
    it), which is why the final verification runs in root after merging.
    """

    root: Path  # the user's working directory
    base: str  # the snapshot commit checked out
    path: Path  # the worktree's top folder
    workdir: Path  # where the step works: path, or the subfolder matching root's place in its repo
    links: tuple[str, ...] = ()  # symlinks made, relative to path; never committed

    @classmethod
    def create(cls, root: Path, base: str, path: Path) -> StepWorktree:
        """`git worktree add --detach path base`, then the symlinks; path must not exist or be empty."""
        root, path = Path(root), Path(path).absolute()
        _, prefix = locate(root)
        path.parent.mkdir(parents=True, exist_ok=True)
        with WORKTREE_LOCK:
            run_git(root, *NO_HOOKS, "worktree", "add", "--detach", "--no-checkout", str(path), base)
        try:
            # The checkout itself runs outside the lock: it only writes the worktree's own files.
            run_git(path, "read-tree", "--reset", "-u", "HEAD")
            workdir = path / prefix if prefix else path
            workdir.mkdir(parents=True, exist_ok=True)
            links = _link_ignored(root, workdir, path)
        except BaseException:
            remove_worktree(root, path)
            raise
        return cls(root, base, path, workdir, links)

    def commit(self) -> str:
        """The step's work as a commit on top of base (see worktree_changes)."""
        return worktree_changes(self.path, self.base)

    def remove(self) -> None:
        remove_worktree(self.root, self.path)

    def __enter__(self) -> StepWorktree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def create_worktree(root: Path, base: str, path: Path) -> Path:
    """Create a worktree of `base` at `path` (see StepWorktree.create); returns where the step
    works (path itself unless root is a subfolder of its repository)."""
    return StepWorktree.create(root, base, path).workdir


def worktree_changes(path: Path, base: str) -> str:
    """Commit everything in the worktree at `path` (any folder in it) on top of `base`, staged in
    the worktree's own index; the symlinks we made are left out even when .gitignore does not
    cover them (a `.venv/` pattern matches a folder, not a symlink). Nothing changed -> a commit
    with base's tree."""
    top = Path(git_text(path, "rev-parse", "--show-toplevel"))
    links = _read_links(top)
    run_git(top, "add", "-A", "--", ".", EXCLUDE_CLUDE)
    if links:  # unstaged after adding: git refuses an exclude pathspec naming an ignored path
        run_git(top, "rm", "--cached", "-r", "-q", "--ignore-unmatch", "--",
                *(f":(literal){name}" for name in links))
    tree = git_text(top, "write-tree")
    return _commit(top, tree, base, "clude: a step's changes")




def changed_files(repo: Path, base: str, commit: str) -> list[str]:
    """Paths (relative to the repository's top) that differ between two commits."""
    out = run_git(repo, "diff-tree", "-r", "-z", "--no-renames", "--name-only", base, commit).stdout
    return sorted(os.fsdecode(p) for p in out.split(b"\0") if p)


def _unlink_links(path: Path) -> None:
    for name in _read_links(path):
        link = path / name
        if link.is_symlink():
            link.unlink()


def remove_worktree(root: Path, path: Path) -> None:
    """Remove a step's worktree and git's record of it; safe if it is already (partly) gone.

    Our symlinks are removed first, so nothing ever deletes through them into root's folders.
    """
    path = Path(path).absolute()
    with WORKTREE_LOCK:
        _unlink_links(path)
        if os.path.lexists(path):
            try:  # --force twice: also a worktree left locked by an interrupted `worktree add`
                run_git(root, "worktree", "remove", "--force", "--force", str(path))
            except GitError as e:
                if e.returncode is None:
                    raise
        run_git(root, "worktree", "prune")
        if path.is_dir() and (path / ".git").is_file():  # unregistered leftover of a worktree
            shutil.rmtree(path, ignore_errors=True)


def _registered(root: Path) -> list[Path]:
    """The linked worktrees of root's repository (the main one excluded)."""
    out = git_text(root, "worktree", "list", "--porcelain")
    paths = [Path(line[len("worktree "):]) for line in out.splitlines()
             if line.startswith("worktree ")]
    return paths[1:]


def prune_worktrees(root: Path, under: Path) -> list[Path]:
    """Remove every worktree under the folder `under`, registered or a leftover folder with a .git
    file (after a crash or kill -9), and prune git's records; returns the paths removed."""
    under = Path(under).resolve()
    top, _ = locate(root)
    found = [p for p in _registered(root)
             if p.resolve().is_relative_to(under) and p.resolve() != top.resolve()]
    if under.is_dir():
        found += [child for child in sorted(under.iterdir())
                  if child.is_dir() and not child.is_symlink() and (child / ".git").is_file()
                  and child.resolve() not in {p.resolve() for p in found}]
    for path in found:
        remove_worktree(root, path)
    with WORKTREE_LOCK:
        run_git(root, "worktree", "prune")
    return found
