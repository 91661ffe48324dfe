"""`clude team` from several shells at once, and task options: `status --watch` and two loops of `task
add` on one machine lose no task (each named clone is taken in turns), a project without tests refuses a
task that could not be verified, and a task landed unverified is never shown as plainly done."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from team_helpers import git, team_project, upstream_file, upstream_files

from clude.team.board.tasks import Task, allows_test_changes, parse_task, render_task

ADDS = 25  # `task add` commands in each of the two shells


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("CLUDE_", "PYTEST_"))}


def clude(*args: str, root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clude", *args, "-C", str(root)], capture_output=True,
                          text=True, env=env(), timeout=300, check=False)


def push_to_upstream(tmp_path: Path, upstream: str, files: dict[str, str]) -> None:
    """Commit `files` to the upstream's main from a clone of someone else's."""
    edit = tmp_path / "edit"
    if not edit.exists():
        edit.mkdir()
        git(edit, "clone", "-q", upstream, ".")
    git(edit, "pull", "-q", "origin", "main")
    for name, text in files.items():
        (edit / name).parent.mkdir(parents=True, exist_ok=True)
        (edit / name).write_text(text, encoding="utf-8")
    git(edit, "add", "-A")
    git(edit, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "by hand")
    git(edit, "push", "-q", "origin", "HEAD:main")


def test_status_watch_and_two_shells_adding_tasks_lose_nothing(tmp_path):
    root, upstream = team_project(tmp_path, fast=True)
    watcher = subprocess.Popen([sys.executable, "-m", "clude", "team", "status", "--watch", "-C", str(root)],
                               env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    loop = ('for i in $(seq 1 {n}); do "$PYTHON" -m clude team task add "shell {shell} task $i" -C "$ROOT" '
            '|| {{ echo "task add $i failed"; exit 1; }}; done')
    try:
        shells = [subprocess.Popen(["bash", "-c", loop.format(n=ADDS, shell=shell)],
                                   env={**env(), "PYTHON": sys.executable, "ROOT": str(root)},
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                  for shell in (1, 2)]
        outputs = [shell.communicate(timeout=600)[0] for shell in shells]
    finally:
        watcher.send_signal(signal.SIGINT)  # Ctrl-C
        watched = watcher.communicate(timeout=60)[1]
    assert [shell.returncode for shell in shells] == [0, 0], outputs
    assert all(out.count("added TASK-") == ADDS and "Traceback" not in out for out in outputs), outputs
    assert watcher.returncode == 0 and "Traceback" not in watched, watched
    files = [name for name in upstream_files(upstream, "tasks") if name.endswith(".md")]
    assert sorted(files) == [f"TASK-{n:03d}.md" for n in range(1, 2 * ADDS + 1)]
    titles = [parse_task(upstream_file(upstream, f"tasks/{name}"), f"tasks/{name}").title for name in files]
    assert sorted(titles) == sorted(f"shell {s} task {i}" for s in (1, 2) for i in range(1, ADDS + 1))
    assert (root / ".clude/team/watch/.git").is_dir() and (root / ".clude/team/watch.lock").is_file()
    assert (root / ".clude/team/view.lock").is_file()


def test_a_task_that_may_change_the_tests(tmp_path):
    root, upstream = team_project(tmp_path, fast=True)
    assert clude("team", "task", "add", "Write tests for mean", "--allow-tests", root=root).returncode == 0
    assert clude("team", "task", "add", "Fix mean", root=root).returncode == 0
    assert clude("team", "task", "add", "Cover parse", "--role", "tester", root=root).returncode == 0
    first, second, third = (parse_task(upstream_file(upstream, f"tasks/TASK-00{n}.md"), f"tasks/TASK-00{n}.md")
                            for n in (1, 2, 3))
    assert "allow_tests: true" in upstream_file(upstream, "tasks/TASK-001.md")
    assert "allow_tests" not in upstream_file(upstream, "tasks/TASK-002.md")  # written only when true
    assert (first.allow_tests, allows_test_changes(first)) == (True, True)
    assert (second.allow_tests, allows_test_changes(second)) == (False, False)
    assert (third.allow_tests, allows_test_changes(third)) == (False, True)  # a tester's task


def test_the_task_file_writes_verified_only_when_false():
    done = Task(id="TASK-001", title="x", status="done", verified=False, allow_tests=True)
    text = render_task(done)
    assert "verified: false" in text and "allow_tests: true" in text
    assert text.index("status:") < text.index("verified:") < text.index("tests:") < text.index("allow_tests:")
    assert parse_task(text, "tasks/TASK-001.md") == done
    assert "verified" not in render_task(done.model_copy(update={"verified": True}))


def test_a_task_landed_unverified_is_shown_done_unverified(tmp_path):
    root, upstream = team_project(tmp_path, fast=True)
    push_to_upstream(tmp_path, upstream, {
        "tasks/TASK-001.md": render_task(Task(id="TASK-001", title="Landed blind", status="done", verified=False)),
        "tasks/TASK-002.md": render_task(Task(id="TASK-002", title="Landed tested", status="done")),
        "tasks/TASK-003.md": render_task(Task(id="TASK-003", title="Next", deps=["TASK-001"]))})
    listed = json.loads(clude("team", "task", "list", "--json", root=root).stdout)
    tasks = {t["id"]: (t["state"], t["verified"]) for t in listed["tasks"]}
    assert tasks == {"TASK-001": ("done-unverified", False), "TASK-002": ("done", True),
                     "TASK-003": ("open", True)}  # an unverified dependency is still done
    assert listed["counts"]["done"] == 1 and listed["counts"]["done-unverified"] == 1
    table = clude("team", "task", "list", root=root).stdout
    line = next(row for row in table.splitlines() if "TASK-001" in row)
    assert "done-unverified" in line
    assert "1 done, 1 done-unverified" in table
    show = clude("team", "task", "show", "TASK-001", root=root).stdout
    assert "state: done-unverified" in show and "verified: false" in show
    status = json.loads(clude("team", "status", "--json", root=root).stdout)
    assert {t["id"]: t["state"] for t in status["tasks"]}["TASK-001"] == "done-unverified"
    assert "done-unverified" in clude("team", "status", root=root).stdout


def _plain_project(tmp_path: Path, files: dict[str, str]) -> tuple[Path, str]:
    """A git project of `files` made a team: (project, upstream)."""
    from clude.team.protocol.upstream import init_team

    root = tmp_path / "plain"
    for name, text in {"README.md": "A project.\n", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    return root, init_team(root, str(tmp_path / "plain.git"))


def test_a_task_without_tests_on_a_project_without_tests_is_refused(tmp_path):
    root, upstream = _plain_project(tmp_path, {"calc.py": "def mean(v):\n    return sum(v) / len(v)\n"})
    refused = clude("team", "task", "add", "Tidy the README", root=root)
    assert refused.returncode == 2, refused.stderr
    assert "no tests were detected in the upstream's tree" in refused.stderr
    assert "--tests" in refused.stderr and '[team] verify = "none"' in refused.stderr
    assert "clude.toml" in refused.stderr and "Traceback" not in refused.stderr
    assert [n for n in upstream_files(upstream, "tasks") if n.endswith(".md")] == []
    given = clude("team", "task", "add", "Add a test", "--tests", "test_calc.py", root=root)
    assert given.returncode == 0 and "added TASK-001" in given.stdout, given.stderr


def test_verify_none_or_a_test_command_lets_such_a_task_in(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    root, upstream = _plain_project(tmp_path / "a", {"clude.toml": '[team]\nverify = "none"\n'})
    added = clude("team", "task", "add", "Tidy the README", root=root)
    assert added.returncode == 0 and "added TASK-001" in added.stdout, added.stderr
    assert "Tidy the README" in upstream_file(upstream, "tasks/TASK-001.md")
    root, upstream = _plain_project(tmp_path / "b", {"clude.toml": '[test]\ncommand = "sh check.sh"\n'})
    added = clude("team", "task", "add", "Tidy the README", root=root)
    assert added.returncode == 0 and "added TASK-001" in added.stdout, added.stderr


def test_tests_detected_in_the_upstream_tree_are_enough(tmp_path):
    root, _ = _plain_project(tmp_path, {"test_calc.py": "import pytest\n\n\ndef test_one():\n    assert 1\n"})
    added = clude("team", "task", "add", "Fix mean", root=root)
    assert added.returncode == 0 and "added TASK-001" in added.stdout, added.stderr
