"""What INTAKE checks before a plan is asked for: a goal, a workspace, tests that can start."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from clude.config.settings import Settings


def intake_problem(root: Path, goal: str, settings: Settings, env: Mapping[str, str], *,
                   parallel: int, verify: str) -> tuple[str, str] | None:
    """None when the run can start; else (outcome, reason): ("blocked" | "error", why) stops it,
    ("unverified", why) lets it go on without a verification."""
    from clude.harness.process import MissingProgram, resolve_program
    from clude.harness.runner import choose

    if not goal.strip():
        return "blocked", "the goal is empty: give the task as an argument or with --task-file"
    if not root.is_dir():
        return "error", f"the workspace {root} is not a directory"
    if parallel > 1:
        from clude.agent.worktrees import is_git_repo

        if not is_git_repo(root):
            return "error", (f"--parallel needs a git repository: {root} is not one "
                             "(git init, or run without --parallel)")
    if verify == "never":
        return None
    test_env = {**env, **settings.test.env}
    chosen = choose(root, settings.test, None, test_env)
    if isinstance(chosen, str):
        return "unverified", chosen
    _, argv = chosen
    try:
        resolve_program(argv, root, test_env)
    except MissingProgram as missing:
        return "error", (f"the tests cannot run, so no work could be verified: {missing} "
                         "(fix the environment, or set [agent] verify = \"never\")")
    return None
