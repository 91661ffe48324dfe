"""Steering a team by hand, with the real CLI and real git: retry, block and unblock tasks; pause and
resume a worker; stop a team run. The dashboard calls the same functions (tests/test_team_serve.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from clude.exits import USAGE
from clude.team.supervision.control import RUN_PIDFILE, is_paused
from team_helpers import agent_script, set_task_status, team_project, upstream_file, upstream_log

CLUDE = [sys.executable, "-m", "clude"]
FIX_MEAN = '''
import pathlib
p = pathlib.Path("calc.py")
p.write_text(p.read_text().replace("(len(values) + 1)", "len(values)"))
'''


def clude(root: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([*CLUDE, *args, "-C", str(root)], capture_output=True, text=True, timeout=120)
    if ok:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def team(tmp_path):
    root, upstream = team_project(tmp_path)
    clude(root, "team", "task", "add", "Fix mean", "--tests", "test_calc.py::test_mean")
    clude(root, "team", "task", "add", "Later", "--tests", "test_calc.py::test_add", "--deps", "TASK-001")
    return root, upstream


def test_retry_opens_a_failed_task_with_more_attempts_and_keeps_its_records(tmp_path, team):
    root, upstream = team
    set_task_status(tmp_path, upstream, "TASK-001", "failed")
    assert "failed" in clude(root, "team", "task", "show", "TASK-001").stdout
    said = clude(root, "team", "task", "retry", "TASK-001", "--attempts", "2").stdout
    assert "TASK-001 retried with 2 more attempts" in said
    text = upstream_file(upstream, "tasks/TASK-001.md")
    assert "status: open" in text and "max_attempts: 2" in text  # none used before: 0 + 2
    assert "retried with 2 more attempts (by " in upstream_file(upstream, "PROGRESS.md")
    refused = clude(root, "team", "task", "retry", "TASK-001", ok=False)
    assert refused.returncode == USAGE and "TASK-001 is open, not failed" in refused.stderr


def test_block_and_unblock_a_task_and_its_dependents_follow(team):
    root, upstream = team
    said = clude(root, "team", "task", "block", "TASK-001", "--reason", "waiting for the API").stdout
    assert "TASK-001 blocked: waiting for the API" in said and "TASK-002 blocked" in said
    board = clude(root, "team", "task", "list", "--json").stdout
    assert '"blocked"' in board and "blocked by hand" in upstream_file(upstream, "tasks/TASK-001.md")
    refused = clude(root, "team", "task", "unblock", "TASK-002", ok=False)  # blocked by its dependency
    assert refused.returncode == USAGE and "opens by itself" in refused.stderr
    said = clude(root, "team", "task", "unblock", "TASK-001").stdout
    assert "TASK-001 unblocked" in said and "TASK-002 open again" in said
    assert "status: open" in upstream_file(upstream, "tasks/TASK-002.md")


def test_steering_refusals_name_the_task_and_what_to_do(tmp_path, team):
    root, upstream = team
    unknown = clude(root, "team", "task", "block", "TASK-009", "--reason", "x", ok=False)
    assert unknown.returncode == USAGE and "no task 'TASK-009'" in unknown.stderr and "TASK-001" in unknown.stderr
    empty = clude(root, "team", "task", "block", "TASK-001", "--reason", "  ", ok=False)
    assert "give the reason" in empty.stderr
    set_task_status(tmp_path, upstream, "TASK-001", "done")
    done = clude(root, "team", "task", "block", "TASK-001", "--reason", "x", ok=False)
    assert "TASK-001 is done" in done.stderr
    before = upstream_log(upstream)
    assert clude(root, "team", "task", "unblock", "TASK-001", ok=False).returncode == USAGE
    assert upstream_log(upstream) == before  # a refusal pushes nothing


def test_a_paused_worker_claims_nothing_until_resumed(tmp_path, team):
    """The worker looks at the board while paused (its injected sleep is the clock) and claims nothing;
    resumed on its third wait, it takes and finishes the work."""
    from clude.config.loader import load_settings
    from clude.team.backends import get_backend
    from clude.team.work.worker import Worker, WorkerConfig

    root, upstream = team
    state = tmp_path / "state"
    assert "a1 paused" in clude(root, "team", "pause", "a1").stdout  # writes the project's .clude
    pause_file = root / ".clude" / "team" / "paused" / "a1"
    assert pause_file.is_file()
    (state / "team" / "paused").mkdir(parents=True)
    pause_file.rename(state / "team" / "paused" / "a1")  # the worker below keeps its state in tmp_path/state
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if is_paused(state, "a1"):
            assert not any(s.startswith("claim ") for s in upstream_log(upstream)), "a paused worker claimed"
            if len(waits) == 3:
                (state / "team" / "paused" / "a1").unlink()

    settings, _ = load_settings(root)
    worker = Worker(WorkerConfig(agent_id="a1", upstream=upstream, workdir=tmp_path / "agents" / "a1",
                                 state_dir=state, backend=get_backend("command", command=agent_script(
                                     tmp_path, "fix", FIX_MEAN)), settings=settings, sleep=sleep))
    assert worker.run() == 0
    assert len(waits) >= 3 and not is_paused(state, "a1")
    assert "status: done" in upstream_file(upstream, "tasks/TASK-001.md")


def test_pause_and_resume_refuse_a_name_that_is_no_worker_s(team):
    root, _ = team
    bad = clude(root, "team", "pause", "../../etc", ok=False)
    assert bad.returncode == USAGE and "not a worker's name" in bad.stderr
    assert "was not paused" in clude(root, "team", "resume", "a2").stdout


def test_stop_signals_the_recorded_team_run_and_only_while_it_is_that_process(tmp_path, team):
    root, _ = team
    state = root / ".clude"
    none = clude(root, "team", "stop", ok=False)
    assert none.returncode == 1 and "no `clude team run` is running" in none.stderr
    run = subprocess.Popen([sys.executable, "-c", "import signal, sys\n"
                            "from pathlib import Path\n"
                            "from clude.team.supervision.control import record_run\n"
                            "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})\n"
                            f"record_run(Path({str(state)!r}))\n"
                            "print('running', flush=True)\n"
                            "print('stopped by', signal.sigwait({signal.SIGTERM}), flush=True)\n"],
                           stdout=subprocess.PIPE, text=True)
    try:
        assert run.stdout.readline() == "running\n"
        said = clude(root, "team", "stop").stdout
        assert f"pid {run.pid}" in said
        assert run.stdout.readline().startswith("stopped by")
        assert run.wait(timeout=30) == 0
    finally:
        run.kill()
    # the pidfile left by a run that died: its pid may be another process's now, which is never signalled
    (state / RUN_PIDFILE).write_text(f"{os.getpid()} 1\n")
    stale = clude(root, "team", "stop", ok=False)
    assert stale.returncode == 1 and "no `clude team run` is running" in stale.stderr
    assert signal.getsignal(signal.SIGTERM) is not None  # this test process was not signalled
