"""`clude team demo` end to end, and the old failure mode of a suite of 390 passing tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_files
from team_helpers import agent_script, upstream_file, upstream_files, upstream_log


ENV = {k: v for k, v in os.environ.items() if not k.startswith(("CLUDE_", "PYTEST_", "CLOUD_"))}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One `clude team demo` for the tests of this module: (folder, stdout, stderr, exit code, whether the
    first claim was printed while the demo still ran)."""
    folder = tmp_path_factory.mktemp("demo")
    proc = subprocess.Popen([sys.executable, "-m", "clude", "team", "demo", "--dir", str(folder)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    err: list[str] = []
    live = False
    for line in proc.stderr:  # stderr is line-buffered: each line comes as the demo prints it
        err.append(line)
        if " claimed TASK-" in line and not live:
            live = proc.poll() is None  # a task was claimed; its agent, tests and landing are still ahead
    out, rest = proc.communicate(timeout=300)
    return folder, out, "".join(err) + rest, proc.returncode, live


def test_the_demo_runs_a_whole_team_offline_and_ends_as_designed(demo):
    tmp_path, stdout, stderr, code, _ = demo
    assert code == 0, stdout + stderr
    root, upstream = tmp_path / "textkit", str(tmp_path / "textkit.upstream.git")
    assert "worker a4: blocked" in stdout and "CLOUD_MODEL_API_KEY" in stdout
    assert "3 done, 1 failed" in stdout and str(root) in stdout
    failures = upstream_files(upstream, "tasks/failures")
    assert failures == [".gitkeep", "TASK-004_attempt_1.md", "TASK-004_attempt_2.md", "TASK-004_attempt_3.md"]
    assert "subtractive forms like IV" in upstream_file(upstream, "tasks/failures/TASK-004_attempt_3.md")
    stats = upstream_file(upstream, "textkit/stats.py")
    assert "sum(values) / len(values)" in stats and "sorted(values)" in stats
    assert not any("(agent a4" in s for s in upstream_log(upstream))  # a4 never claimed anything
    progress = upstream_file(upstream, "PROGRESS.md")
    assert "blocked worker a4" in progress and "failed TASK-004" in progress
    status = json.loads(subprocess.run([sys.executable, "-m", "clude", "team", "status", "--json", "-C", str(root)],
                                       capture_output=True, text=True, env=ENV, check=True).stdout)
    assert {t["id"]: t["state"] for t in status["tasks"]} == {
        "TASK-001": "done", "TASK-002": "done", "TASK-003": "done", "TASK-004": "failed"}


def test_the_demo_tells_what_happens_as_it_happens(demo):
    _, _, stderr, _, live = demo
    assert live, stderr  # the first claim was printed while the demo was still working
    lines = stderr.splitlines()
    for agent, backend in (("a1", "clude"), ("a4", "cloud")):
        assert f"worker {agent} started ({backend} backend)" in lines
    assert sum(line.startswith("worker a4 started") for line in lines) == 1  # its restarts are not news
    assert any(line.startswith("worker a4 cannot work: CLOUD_MODEL_API_KEY is not set") for line in lines)
    for task in ("TASK-001", "TASK-002", "TASK-003"):
        assert any(f" claimed {task} (attempt 1)" in line for line in lines), stderr
        assert any(line.startswith(f"done {task} (attempt 1): ") for line in lines), stderr
    failed = [line for line in lines if " failed TASK-004 " in line]
    assert len(failed) == 3 and "tests/test_roman.py did not pass" in failed[0]
    assert failed[-1].endswith("no attempts left: the task is failed")


def test_the_project_folder_ends_with_the_teams_work(demo):
    tmp_path, stdout, _, _, _ = demo
    root = tmp_path / "textkit"
    assert f"pulled the team's work into {root}" in stdout
    stats = (root / "textkit/stats.py").read_text()
    assert "sum(values) / len(values)" in stats and "sorted(values)" in stats
    assert subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True,
                          check=True).stdout == ""


def test_status_after_the_demo_shows_attempts_used_and_whole_errors(demo):
    tmp_path, _, _, _, _ = demo
    root = tmp_path / "textkit"
    shown = subprocess.run([sys.executable, "-m", "clude", "team", "status", "-C", str(root)],
                           capture_output=True, text=True, env={**ENV, "COLUMNS": "80"}, check=True).stdout
    rows = {line.split()[0]: line for line in shown.splitlines() if line.startswith(" TASK-")}
    for task in ("TASK-001", "TASK-002", "TASK-003"):
        assert rows[task].split("│")[2].strip() == "1/3", shown  # done at its first attempt: one used
    assert rows["TASK-004"].split("│")[2].strip() == "3/3"
    errors = " ".join(shown.split("last errors", 1)[1].split())  # whole, however rich wrapped it
    assert "a4: CLOUD_MODEL_API_KEY is not set" in errors and "required_env in [backends.cloud])" in errors
    data = json.loads(subprocess.run([sys.executable, "-m", "clude", "team", "status", "--json", "-C", str(root)],
                                     capture_output=True, text=True, env=ENV, check=True).stdout)
    tasks = {t["id"]: t for t in data["tasks"]}
    assert (tasks["TASK-001"]["attempts"], tasks["TASK-001"]["attempts_used"], tasks["TASK-001"]["max_attempts"]) \
        == (0, 1, 3)
    assert (tasks["TASK-004"]["attempts"], tasks["TASK-004"]["attempts_used"]) == (3, 3)
    [a4] = [w for w in data["workers"] if w["agent"] == "a4"]
    assert a4["error"].endswith("(or change required_env in [backends.cloud])") and len(a4["error"]) > 80


def test_what_the_agent_tried_reads_as_a_settings_state(demo):
    tmp_path, _, _, _, _ = demo
    record = upstream_file(str(tmp_path / "textkit.upstream.git"), "tasks/failures/TASK-004_attempt_1.md")
    assert "the plan's one step done; not verified: the setting [agent] verify is \"never\"" in record
    assert "(verify = never)" not in record
    # and the report it quotes says FAILED for the failed assertion, as pytest does
    assert "FAILED tests/test_roman.py:" in record and "ERROR tests/" not in record


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
