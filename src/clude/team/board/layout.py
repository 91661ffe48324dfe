"""The paths in a team repository (relative POSIX paths) and the git identity clude commits with."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from clude.gitcli import identity_env

# One Markdown file per task: tasks/TASK-001.md (front matter + body).
TASKS_DIR = "tasks"
# Failure records of attempts that did not verify: tasks/failures/TASK-001_attempt_1.md.
FAILURES_DIR = "tasks/failures"
# Lock files of claimed tasks: current_tasks/TASK-001.lock (JSON; who holds it, until when).
LOCKS_DIR = "current_tasks"
# The team's running log: done, failed, blocked, notes and failed approaches.
PROGRESS = "PROGRESS.md"
# The upstream branch every agent pulls from and pushes to.
BRANCH = "main"
# The name of the team upstream's remote in the user's repository (agent clones use "origin").
REMOTE = "upstream"
# The domain of agents' commit emails: agent a1 commits as a1 <a1@clude.localhost>.
EMAIL_DOMAIN = "clude.localhost"
# Paths the team's bookkeeping owns: an agent's edits to them are dropped before its work is committed,
# and a change of main touching only them leaves the code (and its verdict) as it was.
TEAM_PATHS = (TASKS_DIR, LOCKS_DIR, PROGRESS)
# Empty files that keep the layout's folders in git.
KEEP_FILES = (f"{TASKS_DIR}/.gitkeep", f"{FAILURES_DIR}/.gitkeep", f"{LOCKS_DIR}/.gitkeep")

# A task id usable as a file name: letters, digits, ".", "_", "-"; no leading dot.
_TASK_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def _checked(task_id: str) -> str:
    if not _TASK_ID.fullmatch(task_id or ""):
        raise ValueError(f"not a usable task id: {task_id!r} (letters, digits, '.', '_', '-')")
    return task_id


def is_team_path(path: str) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in TEAM_PATHS)


def task_path(task_id: str) -> str:
    """tasks/<id>.md"""
    return str(PurePosixPath(TASKS_DIR, f"{_checked(task_id)}.md"))


def lock_path(task_id: str) -> str:
    """current_tasks/<id>.lock"""
    return str(PurePosixPath(LOCKS_DIR, f"{_checked(task_id)}.lock"))


def failure_path(task_id: str, attempt: int) -> str:
    """tasks/failures/<id>_attempt_<N>.md (attempts count from 1)."""
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise ValueError(f"attempt must be a whole number >= 1, not {attempt!r}")
    return str(PurePosixPath(FAILURES_DIR, f"{_checked(task_id)}_attempt_{attempt}.md"))


def agent_identity(agent: str = "clude") -> dict[str, str]:
    """The GIT_AUTHOR_*/GIT_COMMITTER_* variables for an agent's commits: agent <agent@clude.localhost>."""
    return identity_env(agent, f"{agent}@{EMAIL_DOMAIN}")
