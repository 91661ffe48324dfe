"""`clude team` as a user runs it: init, tasks, status, `team run` with real worker processes, a
worker killed with SIGKILL, a race of 16 workers for 200 tasks, and workers over `git daemon`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from clude.cli.main import main
from gitdaemon import daemon_available, git_daemon
from team_helpers import agent_script, git, landed, team_project, upstream_file, upstream_files, upstream_log

FIX_MEAN = '''
import pathlib
p = pathlib.Path("calc.py")
p.write_text(p.read_text().replace("(len(values) + 1)", "len(values)"))
print("fixed mean")
'''
WRITE_CHECK = '''
import pathlib, sys
pathlib.Path("checks", sys.argv[1] + ".txt").write_text("ok\\n")
print("wrote the check of", sys.argv[1])
'''


def clude(*args: str, root: Path, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLUDE_", "PYTEST_"))}
    return subprocess.run([sys.executable, "-m", "clude", *args, "-C", str(root)], capture_output=True,
                          text=True, env=env, timeout=kw.pop("timeout", 300), **kw)


def test_init_tasks_list_show_and_dependency_problems(tmp_path):
    root, upstream = team_project(tmp_path)
    runner = CliRunner()
    add = runner.invoke(main, ["team", "task", "add", "Fix mean", "--tests", "test_calc.py::test_mean",
                               "--body", "mean is off by one", "--priority", "2", "-C", str(root)])
    assert add.exit_code == 0, add.output
    assert "added TASK-001: Fix mean" in add.output
    ghost = runner.invoke(main, ["team", "task", "add", "Later", "--deps", "TASK-009", "-C", str(root)])
    assert "TASK-002" in ghost.output and "TASK-009, which does not exist" in ghost.output
    cycle_a = runner.invoke(main, ["team", "task", "add", "A", "--deps", "TASK-004", "-C", str(root)])
    cycle_b = runner.invoke(main, ["team", "task", "add", "B", "--deps", "TASK-003", "-C", str(root)])
    assert cycle_a.exit_code == 0 and "cycle" in cycle_b.output
    listed = json.loads(runner.invoke(main, ["team", "task", "list", "--json", "-C", str(root)]).output)
    states = {t["id"]: (t["state"], t["reason"] or "") for t in listed["tasks"]}
    assert states["TASK-001"] == ("open", "")
    assert states["TASK-002"][0] == "blocked" and "does not exist" in states["TASK-002"][1]
    assert states["TASK-003"][0] == "blocked" and "cycle" in states["TASK-003"][1]
    show = runner.invoke(main, ["team", "task", "show", "TASK-001", "-C", str(root)])
    assert "mean is off by one" in show.output and "state: open" in show.output
    assert "priority: 2" in upstream_file(upstream, "tasks/TASK-001.md")
    # a broken task file is reported with its path and skipped
    (tmp_path / "edit").mkdir()
    git(tmp_path / "edit", "clone", "-q", upstream, ".")
    (tmp_path / "edit/tasks/TASK-050.md").write_text("---\nid: [oops\n---\nbody\n")
    git(tmp_path / "edit", "add", "-A")
    git(tmp_path / "edit", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "broken task")
    git(tmp_path / "edit", "push", "-q", "origin", "HEAD:main")
    listed = runner.invoke(main, ["team", "task", "list", "-C", str(root)])
    assert "tasks/TASK-050.md" in listed.output and listed.exit_code == 0


def test_team_run_with_three_workers_does_every_task_and_reports(tmp_path):
    root, upstream = team_project(tmp_path, fast=True, team="[team]\npoll_s = 0.2")
    for n in range(1, 7):
        assert clude("team", "task", "add", f"check {n}", root=root).returncode == 0
    template = agent_script(tmp_path, "check", WRITE_CHECK)
    done = clude("team", "run", "--agents", "3", "--backend", "command", "--command", template, "--json",
                 root=root)
    assert done.returncode == 0, done.stderr + done.stdout
    result = json.loads(done.stdout)
    assert result["stopped"] == "settled" and result["counts"]["done"] == 6
    assert sorted(upstream_files(upstream, "checks")) == sorted(["base.txt"] + [f"TASK-00{n}.txt" for n in range(1, 7)])
    status = json.loads(clude("team", "status", "--json", root=root).stdout)
    assert {w["agent"] for w in status["workers"]} == {"a1", "a2", "a3"}
    assert all(t["state"] == "done" for t in status["tasks"])


def test_a_worker_killed_with_sigkill_mid_task_loses_nothing(tmp_path):
    root, upstream = team_project(tmp_path, fast=True, team="[team]\nlease_s = 3\npoll_s = 0.2")
    assert clude("team", "task", "add", "check 1", root=root).returncode == 0
    started = root / ".clude/agents/victim/work/started"  # in its work tree: /tmp is the sandbox's own
    hang = agent_script(tmp_path, "hang", '''
        import pathlib, time
        pathlib.Path("started").write_text("yes")
        time.sleep(600)
    ''')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLUDE_", "PYTEST_"))}
    victim = subprocess.Popen([sys.executable, "-m", "clude", "team", "worker", "--upstream", upstream,
                               "--agent-id", "victim", "--backend", "command", "--command", hang,
                               "-C", str(root)], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import time
        deadline = time.monotonic() + 60
        while not started.exists():  # the agent runs: the task is claimed
            assert victim.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
    assert upstream_files(upstream, "current_tasks") == [".gitkeep", "TASK-001.lock"]
    rescue = clude("team", "worker", "--upstream", upstream, "--agent-id", "rescuer", "--backend", "command",
                   "--command", agent_script(tmp_path, "check", WRITE_CHECK), root=root)
    assert rescue.returncode == 0, rescue.stderr
    log = upstream_log(upstream)
    assert "claim TASK-001 (agent rescuer, attempt 1), breaking the expired lock of victim" in log
    assert "done TASK-001: check 1 (agent rescuer)" in landed(upstream)
    assert upstream_files(upstream, "tasks/failures") == [".gitkeep"]


def test_sixteen_workers_race_for_two_hundred_tasks_each_done_exactly_once(tmp_path):
    root, upstream = team_project(tmp_path, fast=True, team="[team]\npoll_s = 0.2")
    from clude.team.protocol.admin import view
    from clude.team.protocol.sync import update_upstream
    from clude.team.board.tasks import Task, render_task

    def two_hundred(checkout: Path) -> str:
        for n in range(1, 201):
            task = Task(id=f"TASK-{n:03d}", title=f"check {n}")
            (checkout / "tasks" / f"TASK-{n:03d}.md").write_text(render_task(task))
        return "add 200 tasks"

    update_upstream(view(root, upstream), two_hundred)
    template = agent_script(tmp_path, "check", WRITE_CHECK)
    done = clude("team", "run", "--agents", "16", "--backend", "command", "--command", template, "--json",
                 root=root, timeout=900)
    assert done.returncode == 0, done.stderr + done.stdout[-3000:]
    log = upstream_log(upstream)
    claims = Counter(s.split()[1] for s in log if s.startswith("claim "))
    claims.update(s.split("; claim ")[1].split()[0] for s in log if "; claim " in s)  # with a landing
    settled = landed(upstream)
    dones = Counter(s.split()[1].rstrip(":") for s in settled if s.startswith("done "))
    assert len(dones) == 200 and set(dones.values()) == {1}
    assert len(claims) == 200 and set(claims.values()) == {1}  # nobody claimed a task someone held
    assert len(upstream_files(upstream, "checks")) == 201
    workers = Counter(s.split("(agent ", 1)[1].split(")")[0] for s in settled if s.startswith("done "))
    assert len(workers) >= 8  # the work was shared


@pytest.mark.skipif(not daemon_available(), reason="this git has no `git daemon`")
def test_two_workers_on_other_machines_share_a_git_daemon_upstream(tmp_path):
    root, upstream = team_project(tmp_path, fast=True, team="[team]\npoll_s = 0.2")
    for n in range(1, 5):
        assert clude("team", "task", "add", f"check {n}", root=root).returncode == 0
    template = agent_script(tmp_path, "check", WRITE_CHECK)
    with git_daemon(Path(upstream).parent) as base_url:
        url = base_url + Path(upstream).name
        machines = []
        for name in ("m1", "m2"):
            home = tmp_path / name
            home.mkdir()
            (home / "clude.toml").write_text((root / "clude.toml").read_text())
            machines.append(subprocess.Popen(
                [sys.executable, "-m", "clude", "team", "worker", "--upstream", url, "--agent-id", name,
                 "--backend", "command", "--command", template, "-C", str(home)], cwd=home,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        outputs = [m.communicate(timeout=300)[0] for m in machines]
    assert [m.returncode for m in machines] == [0, 0], outputs
    assert sorted(s.split()[1].rstrip(":") for s in landed(upstream) if s.startswith("done ")) == [
        f"TASK-00{n}" for n in range(1, 5)]
    assert all((tmp_path / name / ".clude/agents" / name / "work/.git").is_dir() for name in ("m1", "m2"))


def test_a_settled_team_run_finishes_its_workers_cleanly(tmp_path):
    """Every task settled: the workers exit 0 as finished, none shows as interrupted or in error."""
    root, upstream = team_project(tmp_path, fast=True, team="[team]\npoll_s = 30")  # they would sleep long
    for n in (1, 2):
        assert clude("team", "task", "add", f"check {n}", root=root).returncode == 0
    ran = clude("team", "run", "--agents", "3", "--backend", "command", "--command",
                agent_script(tmp_path, "check", WRITE_CHECK), "--json", root=root)
    assert ran.returncode == 0, ran.stderr
    from clude.team.logs.events import read_events
    events = read_events(root / ".clude")
    ends = {e["agent"]: e["kind"] for e in events if e["kind"] in ("worker_done", "worker_stopped")}
    assert ends == {"a1": "worker_done", "a2": "worker_done", "a3": "worker_done"}, ends
    status = json.loads(clude("team", "status", "--json", root=root).stdout)
    assert {w["state"] for w in status["workers"]} == {"finished"}
    analyzed = clude("team", "logs", "analyze", root=root)
    assert "interrupted" not in analyzed.stdout and "ERROR" not in analyzed.stdout


def test_outside_a_git_repository_team_run_and_status_say_to_git_init_first(tmp_path):
    runner = CliRunner(env={"GIT_CEILING_DIRECTORIES": str(tmp_path.parent)})  # whatever holds tmp_path
    for args in (["team", "run"], ["team", "status"]):
        result = runner.invoke(main, [*args, "-C", str(tmp_path)])
        assert result.exit_code == 2
        assert "is not a git repository: run `git init`" in result.output, result.output
        assert result.output.rstrip().endswith("then `clude team init`")
    git(tmp_path, "init", "-q")  # a repository without commits: commit first
    result = runner.invoke(main, ["team", "run", "-C", str(tmp_path)])
    assert result.exit_code == 2 and "has no commits yet: commit your project first" in result.output
    (tmp_path / "a.txt").write_text("a\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    result = runner.invoke(main, ["team", "run", "-C", str(tmp_path)])  # a repository: team init is next
    assert result.exit_code == 2 and "has no team upstream: run `clude team init` first" in result.output
