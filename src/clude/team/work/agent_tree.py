"""The agent's work tree, and taking its result back. The agent gets a fresh copy of the upstream's
commit with a git repository of its own and no remote (nothing in it leads to the upstream); the worker
reads the agent's result as files into its own clone, so git never runs under the agent's config or
hooks, and what the agent left behind never reaches the next task."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from clude.gitcli import run_git
from clude.gitsafe import ISOLATED
from clude.team.protocol.git import LOCAL_EXCLUDES, Repo
from clude.team.board.layout import TEAM_PATHS, agent_identity

# The index the worker stages the agent's files in, inside its own clone's git folder.
IMPORT_INDEX = "clude-agent-index"
GITLINK_MODE = "160000"
REMOVE_TIMEOUT_S = 600.0


class TooLarge(Exception):
    """The agent left a file larger than a change may hold; the message names it and the limit."""


def remove_tree(path: Path) -> None:
    """Remove what an agent left, whatever it made of it: `rm -rf` (no recursion limit, symlinks removed
    and never followed), after opening up folders it made unreadable or unwritable."""
    if not os.path.lexists(path):
        return
    for attempt in range(2):
        done = subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)], capture_output=True,
                              timeout=REMOVE_TIMEOUT_S)
        if done.returncode == 0 and not os.path.lexists(path):
            return
        subprocess.run(["chmod", "-R", "u+rwx", "--", str(path)], capture_output=True, timeout=REMOVE_TIMEOUT_S)
    raise OSError(f"cannot remove the agent's old tree {path}: {done.stderr.decode('utf-8', 'replace').strip()}")


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
    run_git(work, "remote", "remove", "origin")
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


def take_result(land: Repo, work: Path, base: str, message: str, *, max_file_bytes: int | None = None) -> str | None:
    """The agent's files as one commit on `base` in land's own git folder (read with land's config:
    the agent's .git is never used), its edits to the team's files (tasks/, locks, PROGRESS.md) and
    nested repositories dropped. None when nothing changed. TooLarge when a file is over max_file_bytes
    (a sparse file of terabytes is cheap to make and would exhaust the worker)."""
    big = too_large(work, max_file_bytes) if max_file_bytes is not None else None
    if big is not None:
        raise TooLarge(f"the agent left {ascii(big[0])[1:-1]} of {big[1] / 1048576:.1f} MB, over the "
                       f"{max_file_bytes / 1048576:g} MB a file may have ([team] max_file_mb): a change "
                       "carries code, not data")
    index = {"GIT_INDEX_FILE": str(land.git_dir / IMPORT_INDEX), **ISOLATED}
    land.git("read-tree", base, env=index)
    land.git(f"--work-tree={work}", "add", "-A", env=index)
    land.git("reset", "-q", base, "--", *TEAM_PATHS, env=index, ok=(0, 1))
    nested = [line.split("\t", 1)[1] for line in land.git("ls-files", "-s", env=index).splitlines()
              if line.startswith(GITLINK_MODE + " ")]
    if nested:
        land.git("rm", "-q", "--cached", "--", *nested, env=index)
    tree = land.git("write-tree", env=index)
    if tree == land.git("rev-parse", f"{base}^{{tree}}"):
        return None
    return land.git("commit-tree", tree, "-p", base, "-F", "-", input=message)
