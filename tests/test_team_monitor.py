"""The monitor: restart rules (pure), and whole `team run`s with workers that cannot work, are killed,
or lose their monitor."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from clude.team.supervision.crashloop import Policy, Run, decide
from team_helpers import agent_script, landed, team_project, upstream_file, upstream_files, upstream_log

POLICY = Policy(k=3, window_s=600, base_s=1, cap_s=8, healthy_s=120)


def run(start, end, code=1, worked=False, reason="boom") -> Run:
    return Run(started=start, ended=end, exit_code=code, worked=worked, reason=reason)


def test_restarts_back_off_and_a_crash_loop_blocks_with_the_reason():
    assert decide([run(0, 1)], POLICY).action == "restart"
    assert decide([run(0, 1)], POLICY).delay_s == 1
    assert decide([run(0, 1), run(2, 3)], POLICY).delay_s == 2
    third = decide([run(0, 1), run(2, 3), run(5, 6, reason="Missing environment variable X")], POLICY)
    assert third.action == "blocked" and "3 starts failed before doing any work" in third.reason
    assert "Missing environment variable X" in third.reason


def test_progress_tells_each_event_once_and_nothing_of_an_earlier_run():
    from clude.team.logs.progress import Progress

    progress = Progress(since=100.0)
    key = "OPENAI_API_KEY is not set"
    events = [{"at": 50, "agent": "a1", "kind": "claimed", "task": "TASK-009", "attempt": 1},  # an earlier run
              {"at": 101, "agent": "a1", "kind": "worker_started", "backend": "codex"},
              {"at": 102, "agent": "a1", "kind": "worker_blocked", "reason": key},
              {"at": 103, "agent": "a1", "kind": "worker_restarted", "by": "monitor", "restarts": 1},
              {"at": 104, "agent": "a1", "kind": "worker_started", "backend": "codex"},
              {"at": 105, "agent": "a1", "kind": "worker_blocked", "reason": key},
              {"at": 106, "agent": "a2", "kind": "claimed", "task": "TASK-001", "attempt": 2},
              {"at": 107, "agent": "a2", "kind": "agent_started", "task": "TASK-001", "attempt": 2},
              {"at": 108, "agent": "a2", "kind": "queued", "task": "TASK-001", "attempt": 2},
              {"at": 109, "agent": "a3", "kind": "done", "task": "TASK-001", "attempt": 2, "queued_by": "a2",
               "verified": True}]
    assert [line for e in events if (line := progress.line(e))] == [
        "worker a1 started (codex backend)", f"worker a1 cannot work: {key}", "a2 claimed TASK-001 (attempt 2)",
        "a2 finished TASK-001 (attempt 2): checked, queued to land",
        "done TASK-001 (attempt 2): a2's change landed"]


def test_work_or_a_healthy_while_resets_the_backoff_and_old_failures_do_not_count():
    assert decide([run(0, 1), run(2, 3), run(4, 5, worked=True), run(6, 7)], POLICY).delay_s == 1
    assert decide([run(0, 1), run(2, 3), run(4, 500), run(501, 502)], POLICY).action == "restart"
    spread = [run(0, 1), run(400, 401), run(1000, 1001)]  # three failures, not within 600 s
    assert decide(spread, POLICY).action == "restart"
    assert decide([run(0, 1)] * 10, Policy(k=20, cap_s=8, base_s=1)).delay_s == 8


def test_exit_codes_that_end_or_block_at_once():
    assert decide([run(0, 1, code=0)], POLICY).action == "done"
    assert decide([run(0, 1, code=3, reason="hook declined")], POLICY).action == "blocked"
    ran = decide([Run(started=0, ended=9, exit_code=4, worked=False, claimed=True, reason="auth x3")], POLICY)
    assert ran.action == "blocked" and ran.reason == "auth x3"  # its agent runs failed alike
    assert decide([run(0, 1, code=4)], POLICY).action == "restart"  # before any claim: a streak
    crashing = [Run(started=t, ended=t + 1, exit_code=5, worked=False, claimed=True, reason="bug") for t in (0, 2, 4)]
    assert decide(crashing, POLICY).action == "blocked"  # claims that never come to anything


def clude(*args: str, root: Path, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CLUDE_", "PYTEST_"))}
    return subprocess.run([sys.executable, "-m", "clude", *args, "-C", str(root)], capture_output=True,
                          text=True, env={**base, **(env or {})}, timeout=kw.pop("timeout", 300), **kw)


FAST_TEAM = "[team]\npoll_s = 0.2\nrestart_s = 0.2\nheartbeat_s = 1\n"
WRITE_CHECK = '''
import pathlib, sys
pathlib.Path("checks", sys.argv[1] + ".txt").write_text("ok\\n")
print("wrote the check of", sys.argv[1])
'''


def test_a_backend_missing_its_key_is_blocked_after_one_start_and_spends_no_attempt(tmp_path):
    root, upstream = team_project(tmp_path, fast=True, team=FAST_TEAM)
    assert clude("team", "task", "add", "check 1", root=root).returncode == 0
    nokey = agent_script(tmp_path, "nokey", '''
        import sys
        print("ERROR: Missing environment variable: `OPENAI_API_KEY`", file=sys.stderr)
        sys.exit(1)
    ''')
    done = clude("team", "run", "--agents", "1", "--backend", "command", "--command", nokey, "--json", root=root)
    assert done.returncode == 4, done.stderr
    result = json.loads(done.stdout)
    assert result["stopped"] == "all workers blocked"
    worker = result["workers"]["a1"]
    assert worker["state"] == "blocked" and "OPENAI_API_KEY" in worker["reason"]
    events = [json.loads(line) for line in (root / ".clude/events.jsonl").read_text().splitlines()]
    assert sum(1 for e in events if e["kind"] == "agent_started") == 1  # a missing key never heals
    assert sum(1 for e in events if e["kind"] == "worker_blocked") == 1  # said once, by the worker
    assert upstream_files(upstream, "tasks/failures") == [".gitkeep"]
    assert "status: open" in upstream_file(upstream, "tasks/TASK-001.md")
    assert "blocked worker a1" in upstream_file(upstream, "PROGRESS.md")
    status = json.loads(clude("team", "status", "--json", root=root).stdout)
    assert [w["state"] for w in status["workers"] if w["agent"] == "a1"] == ["blocked"]


def test_a_required_variable_missing_before_any_claim_is_a_crash_loop_of_three_starts(tmp_path):
    team = FAST_TEAM + '\n[backends.needs-key]\ncommand = "true"\nrequired_env = ["DEMO_MODEL_KEY"]\n'
    root, upstream = team_project(tmp_path, fast=True, team=team)
    assert clude("team", "task", "add", "check 1", root=root).returncode == 0
    # --no-doctor: doctor would catch the missing variable before any worker starts (test_doctor.py)
    done = clude("team", "run", "--agents", "1", "--backend", "needs-key", "--json", "--no-doctor", root=root)
    result = json.loads(done.stdout)
    assert done.returncode == 4 and result["workers"]["a1"]["state"] == "blocked"
    assert result["workers"]["a1"]["restarts"] == 2 and "DEMO_MODEL_KEY" in result["workers"]["a1"]["reason"]
    assert not any(s.startswith("claim ") for s in upstream_log(upstream))


def test_kill_9_of_the_whole_team_run_then_a_new_run_loses_no_task_and_runs_none_twice(tmp_path):
    root, upstream = team_project(tmp_path, fast=True, team=FAST_TEAM + "lease_s = 3\n")
    for n in range(1, 9):
        assert clude("team", "task", "add", f"check {n}", root=root).returncode == 0
    slow = agent_script(tmp_path, "slow", '''
        import pathlib, sys, time
        time.sleep(0.5)
        pathlib.Path("checks", sys.argv[1] + ".txt").write_text("ok\\n")
    ''')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLUDE_", "PYTEST_"))}
    first = subprocess.Popen([sys.executable, "-m", "clude", "team", "run", "--agents", "3", "--backend",
                              "command", "--command", slow, "-C", str(root)], env=env, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while sum(1 for s in landed(upstream) if s.startswith("done ")) < 2:
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    beats = {p.stem: json.loads(p.read_text())["pid"] for p in (root / ".clude/heartbeats").glob("*.json")}
    os.killpg(first.pid, signal.SIGKILL)  # the monitor...
    for pid in beats.values():  # ... and every worker, all at once
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    first.wait()
    again = clude("team", "run", "--agents", "3", "--backend", "command", "--command", slow, "--json", root=root)
    assert again.returncode == 0, again.stderr
    dones = Counter(s.split()[1].rstrip(":") for s in landed(upstream) if s.startswith("done "))
    assert sorted(dones) == [f"TASK-00{n}" for n in range(1, 9)] and set(dones.values()) == {1}
    assert len(upstream_files(upstream, "checks")) == 9


def test_workers_stop_and_release_their_task_when_their_monitor_is_killed(tmp_path):
    root, upstream = team_project(tmp_path, fast=True, team=FAST_TEAM)
    assert clude("team", "task", "add", "check 1", root=root).returncode == 0
    started = root / ".clude/agents/a1/work/started"  # in its work tree: /tmp is the sandbox's own
    hang = agent_script(tmp_path, "hang", '''
        import pathlib, time
        pathlib.Path("started").write_text("yes")
        time.sleep(600)
    ''')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLUDE_", "PYTEST_"))}
    monitor = subprocess.Popen([sys.executable, "-m", "clude", "team", "run", "--agents", "1", "--backend",
                                "command", "--command", hang, "-C", str(root)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not started.exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pid = json.loads((root / ".clude/heartbeats/a1.json").read_text())["pid"]
    monitor.kill()  # SIGKILL: no chance to stop its workers
    monitor.wait()
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:  # the heartbeat notices
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists()
    assert upstream_files(upstream, "current_tasks") == [".gitkeep"]  # released, not left to expire


def test_the_environment_is_the_suspect_when_runs_fail_alike():
    from clude.team.backends import InfraFailure
    from clude.team.supervision.crashloop import environment_suspect

    key = InfraFailure(kind="missing_env", message="OPENAI_API_KEY is not set", name="OPENAI_API_KEY")
    limit = InfraFailure(kind="rate_limited", message="429", retry_after_s=30)
    down = InfraFailure(kind="server_error", message="503 Service Unavailable")
    odd = InfraFailure(kind="start_failed", message="the agent exited with 2 before changing anything")
    assert environment_suspect([key], [])["cause"] == "missing_env"  # at once: retrying cannot heal it
    assert environment_suspect([limit, key], [])["cause"] == "missing_env"
    assert environment_suspect([key, limit], []) is None  # the key was found since: now it waits
    assert environment_suspect([limit] * 5 + [down] * 5, []) is None  # transient: they back off
    assert environment_suspect([odd] * 5, []) is None  # unknown: weighed by work/blame.py
    same = "ImportError: No module named 'requests'"
    suspect = environment_suspect([], [("T1", same), ("T2", same), ("T3", same)])
    assert suspect["cause"] == "same_failure" and "different tasks" in suspect["reason"]
    assert environment_suspect([], [("T1", same)] * 3) is None  # one hard task is not the environment


def test_credentials_in_urls_never_reach_events_or_logs(tmp_path):
    from clude.team.logs.events import EventLog, read_events

    EventLog(tmp_path, "a1", env={}).emit("worker_started", upstream="https://bob:hunter2pass@host/r.git")
    assert "hunter2pass" not in json.dumps(read_events(tmp_path))
    assert "hunter2pass" not in (tmp_path / "logs" / "a1.log").read_text()
