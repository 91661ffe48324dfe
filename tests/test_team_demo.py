"""`clude team demo` end to end, and the old failure mode of a suite of 390 passing tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import write_files
from team_helpers import agent_script, upstream_file, upstream_files, upstream_log


def test_the_demo_runs_a_whole_team_offline_and_ends_as_designed(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLUDE_", "PYTEST_", "CLOUD_"))}
    done = subprocess.run([sys.executable, "-m", "clude", "team", "demo", "--dir", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    root, upstream = tmp_path / "textkit", str(tmp_path / "textkit.upstream.git")
    assert "worker a4: blocked" in done.stdout and "CLOUD_MODEL_API_KEY" in done.stdout
    assert "3 done, 1 failed" in done.stdout and str(root) in done.stdout
    failures = upstream_files(upstream, "tasks/failures")
    assert failures == [".gitkeep", "TASK-004_attempt_1.md", "TASK-004_attempt_2.md", "TASK-004_attempt_3.md"]
    assert "subtractive forms like IV" in upstream_file(upstream, "tasks/failures/TASK-004_attempt_3.md")
    stats = upstream_file(upstream, "textkit/stats.py")
    assert "sum(values) / len(values)" in stats and "sorted(values)" in stats
    assert not any("(agent a4" in s for s in upstream_log(upstream))  # a4 never claimed anything
    progress = upstream_file(upstream, "PROGRESS.md")
    assert "blocked worker a4" in progress and "failed TASK-004" in progress
    status = json.loads(subprocess.run([sys.executable, "-m", "clude", "team", "status", "--json", "-C", str(root)],
                                       capture_output=True, text=True, env=env, check=True).stdout)
    assert {t["id"]: t["state"] for t in status["tasks"]} == {
        "TASK-001": "done", "TASK-002": "done", "TASK-003": "done", "TASK-004": "failed"}


def test_390_passing_tests_are_never_counted_as_a_failure(tmp_path):
    from clude.config.loader import load_settings
    from clude.team.protocol.admin import add_task, view
    from clude.team.backends import get_backend
    from clude.team.protocol.upstream import init_team
    from clude.team.work.worker import EXIT_SETTLED, Worker, WorkerConfig

    root = tmp_path / "big"
    files = {f"tests/test_part{n}.py": "".join(f"def test_{n}_{i}():\n    assert {i} == {i}\n\n" for i in range(39))
             for n in range(10)}
    command = json.dumps([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"])
    write_files(root, {**files, "clude.toml": f"[test]\ncommand = {command}\n", "README.md": "big\n"})
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "start"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    upstream = init_team(root, str(tmp_path / "up.git"))
    add_task(view(root, upstream), {"title": "Touch the README", "max_attempts": 1})
    touch = agent_script(tmp_path, "touch", '''
        import pathlib
        pathlib.Path("README.md").write_text("big, and touched\\n")
    ''')
    settings, _ = load_settings(root)
    worker = Worker(WorkerConfig(agent_id="a1", upstream=upstream, workdir=tmp_path / "a1", state_dir=tmp_path / "s",
                                 backend=get_backend("command", command=touch), settings=settings))
    assert worker.run() == EXIT_SETTLED
    assert "done TASK-001: Touch the README (agent a1)" in upstream_log(upstream)
    assert upstream_files(upstream, "tasks/failures") == [".gitkeep"]
    from clude.harness.runner import run_tests
    verdict = run_tests(Path(tmp_path / "a1" / "work"), settings.test, use_cache=False)
    assert verdict.status.value == "passed" and verdict.counts.passed == 390 and verdict.counts.failed == 0
