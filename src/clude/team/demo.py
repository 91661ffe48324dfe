"""`clude team demo`: a sample project with failing tests, its tasks and team, made from data files."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

from clude.gitcli import git_env
from clude.team.board.layout import BRANCH, REMOTE
from clude.team.protocol.admin import add_task, view
from clude.team.protocol.upstream import init_team

# Files of the demo project that are templates: {python} becomes the interpreter running clude.
TEMPLATES = ("clude.toml",)
# How the demo's workers run: three with clude's own agent, one whose backend lacks its API key.
WORKERS = [("a1", "clude"), ("a2", "clude"), ("a3", "clude"), ("a4", "cloud")]


def create_demo(folder: Path) -> tuple[Path, str]:
    """The demo project in `folder`/textkit (a git repository made a team, its tasks added);
    returns (project, upstream)."""
    source = resources.files("clude.team").joinpath("demo_project")
    root = folder / "textkit"
    with resources.as_file(source) as src:
        shutil.copytree(src, root, ignore=shutil.ignore_patterns("__pycache__", "tasks.toml"))
        tasks = tomllib.loads((Path(src) / "tasks.toml").read_text(encoding="utf-8"))["task"]
    (root / "gitignore.txt").rename(root / ".gitignore")
    for name in TEMPLATES:
        path = root / name
        path.write_text(path.read_text(encoding="utf-8").replace("{python}", sys.executable), encoding="utf-8")
    env = git_env()
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "textkit: the start"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, env=env)
    upstream = init_team(root)
    repo = view(root, upstream)
    for task in tasks:
        add_task(repo, {"max_attempts": 3, **task})
    return root, upstream


PULL = ["pull", "-q", "--ff-only", REMOTE, BRANCH]


def pull_upstream(root: Path) -> int:
    """Bring the team's work into the project folder: a fast-forward pull of the upstream's main (the
    workers' fixes landed there, not here). Returns how many commits came in; CalledProcessError (its
    stderr says why) when the pull fails."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True,
                              env=git_env()).stdout.strip()

    before = git("rev-parse", "HEAD")
    git(*PULL)
    return int(git("rev-list", "--count", f"{before}..HEAD"))
