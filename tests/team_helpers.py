"""Shared pieces of the team tests: a team project with a bare upstream, agents as small scripts, and
reading what happened from the upstream's history."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from agent_helpers import sample_project
from conftest import write_files

# A test command that costs a few milliseconds (shell builtins only): a JUnit report with one test per
# file under checks/, passing when the file says "ok".
FAST_TESTS = """\
status=0
{
  echo '<testsuite name="checks">'
  for f in checks/*.txt; do
    IFS= read -r text < "$f" || text=""
    name=${f##*/}; name=${name%.txt}
    if [ "$text" = ok ]; then
      echo "<testcase classname=\\"checks\\" name=\\"$name\\" file=\\"$f\\" line=\\"1\\"/>"
    else
      echo "<testcase classname=\\"checks\\" name=\\"$name\\" file=\\"$f\\" line=\\"1\\">\\
<failure message=\\"$name says $text\\">$f:1</failure></testcase>"
      status=1
    fi
  done
  echo '</testsuite>'
} > junit.xml
exit $status
"""


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout


def team_project(tmp_path: Path, *, fast: bool = False, team: str = "", files: dict | None = None) -> tuple[Path, str]:
    """A git project made a team: (project, upstream path). `fast`: the JUnit-writing test command."""
    from clude.team.protocol.upstream import init_team

    root = tmp_path / "project"
    extra = dict(files or {})
    if fast:
        command = json.dumps(["sh", "run_checks.sh"])
        extra.update({"run_checks.sh": FAST_TESTS, "checks/base.txt": "ok\n", ".gitignore": "junit.xml\n",
                      "clude.toml": f'[test]\ncommand = {command}\nframework = "generic"\njunit = "junit.xml"\n'
                                    f"{team}\n"})
        write_files(root, extra)
        for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                     ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "start"]):
            git(root, *args)
    else:
        sample_project(root, **extra)
        if team:
            with open(root / "clude.toml", "a") as f:
                f.write(team + "\n")
            git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "team settings")
    upstream = init_team(root, str(tmp_path / "upstream.git"))
    return root, upstream


def backend_worker(root: Path, upstream: str, tmp_path: Path, backend, env: dict[str, str], agent: str = "a1"):
    """A worker running `backend` (an agent CLI) with `env` as the workers' environment, its folder
    tmp_path/agents/AGENT, never sleeping."""
    from clude.config.loader import load_settings
    from clude.team.work.worker import Worker, WorkerConfig

    settings, _ = load_settings(root)
    return Worker(WorkerConfig(agent_id=agent, upstream=upstream, workdir=tmp_path / "agents" / agent,
                               state_dir=tmp_path / "state", backend=backend, settings=settings, env=env,
                               sleep=lambda s: None))


def agent_script(tmp_path: Path, name: str, body: str) -> str:
    """A command-backend template running a Python script (the agent); the script sees the task id in
    sys.argv[1] and runs in the worker's clone."""
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return f"{sys.executable} {path} {{task_id}} {{prompt_file}}"


def upstream_log(upstream: str) -> list[str]:
    """The subjects of every commit on the upstream's main, oldest first."""
    out = subprocess.run(["git", "--git-dir", upstream, "log", "--format=%s", "--reverse", "main"],
                         capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def landed(upstream: str) -> list[str]:
    """What the merge queue settled on the upstream's main, oldest first, a line per task ("done TASK-001:
    title (agent a1)", "attempt 1 of TASK-002 failed: ...", "release ..."), whether one task landed alone
    (the commit's subject) or several in a batch (a line each in its body)."""
    out = subprocess.run(["git", "--git-dir", upstream, "log", "--format=%B%x00", "--reverse", "main"],
                         capture_output=True, text=True, check=True).stdout
    lines = []
    for message in out.split("\0"):
        subject, _, body = message.strip().partition("\n\n")
        if subject.startswith("land ") and "(lander " in subject:
            lines += [line for line in body.splitlines() if line.strip()]
        elif subject.startswith(("done ", "release ")) or " failed: " in subject:
            lines.append(subject)
    return lines


def upstream_file(upstream: str, path: str) -> str | None:
    done = subprocess.run(["git", "--git-dir", upstream, "show", f"main:{path}"], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def upstream_files(upstream: str, folder: str) -> list[str]:
    out = subprocess.run(["git", "--git-dir", upstream, "ls-tree", "--name-only", f"main:{folder}"],
                         capture_output=True, text=True)
    return out.stdout.split() if out.returncode == 0 else []


def set_task_status(tmp_path: Path, upstream: str, task: str, status: str) -> None:
    """The task's file edited on the upstream's main as a person (or an earlier run) would leave it."""
    other = tmp_path / f"edit-{task}-{status}"
    subprocess.run(["git", "clone", "-q", upstream, str(other)], check=True)
    path = other / "tasks" / f"{task}.md"
    path.write_text(path.read_text().replace("status: open", f"status: {status}"))
    git(other, "-c", "user.name=p", "-c", "user.email=p@p", "commit", "-qam", f"{task} {status}")
    git(other, "push", "-q", "origin", "HEAD:main")


def protected_upstream(tmp_path: Path, git) -> Path:
    """A bare upstream as `clude team init` makes it (fast-forwards only, no deletions), its main one
    commit holding src/a.py; `git(cwd, *args)` runs git (the caller's: its environment decides the ids)."""
    bare = tmp_path / "up.git"
    git(tmp_path, "init", "-q", "--bare", "--initial-branch=main", str(bare))
    for key in ("receive.denyNonFastForwards", "receive.denyDeletes"):
        git(bare, "config", key, "true")
    seed = tmp_path / "seed"
    git(tmp_path, "init", "-q", "--initial-branch=main", str(seed))
    (seed / "src").mkdir()
    (seed / "src" / "a.py").write_text("a = 1\n")
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "-m", "seed")
    git(seed, "push", "-q", str(bare), "HEAD:refs/heads/main")
    return bare


def committed_change(repo, name: str, text: str) -> str:
    """A clone (protocol/git.Repo) made the upstream's main with src/<name> written and committed: the
    commit."""
    repo.fetch()
    repo.reset_to_upstream()
    (repo.path / "src" / name).write_text(text)
    assert repo.commit_all(f"write {name}")
    return repo.head()
