"""Overlapping work kept apart: the rule (pure), claims on a real upstream by several workers, and the
files a failed attempt touched learned as the task's."""

from __future__ import annotations

import random
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from clude.team.board.overlap import apart, learned, normal, overlap
from clude.team.protocol.git import Repo
from clude.team.protocol.repository import TeamRepository
from team_helpers import agent_script, team_project, upstream_file

CLUDE = [sys.executable, "-m", "clude"]


@pytest.mark.parametrize("a, b, meet", [
    (["src/a.py"], ["src/a.py"], True),
    (["./src/a.py"], ["src//a.py"], True),
    (["src/"], ["src/deep/a.py"], True),
    (["src/*.py"], ["src/a.py"], True),
    (["src/*.py"], ["lib/a.py"], False),
    (["src/a.py"], ["src/ab.py"], False),
    (["src/a"], ["src/a/b.py"], False),  # a file named src/a is not the folder src/a/
    (["docs/"], ["src/"], False),
    ([], ["src/a.py"], False),  # a task that names no files meets nothing
])
def test_overlap_rule(a, b, meet):
    assert overlap(a, b) is meet and overlap(b, a) is meet


def test_paths_are_normalized_and_learned_files_kept_once_in_order():
    assert normal("./src\\a.py") == "src/a.py" and normal("/src/") == "src/" and normal("./") == ""
    assert learned(["src/a.py"], ["tests/t.py", "./src/a.py", "src/b.py"]) == ["src/a.py", "tests/t.py", "src/b.py"]
    assert len(learned([], [f"f{i}.py" for i in range(500)])) == 50


def clude(root: Path, *args: str) -> str:
    done = subprocess.run([*CLUDE, *args, "-C", str(root)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def repository(tmp_path: Path, upstream: str, agent: str, *, keep_apart: bool = True) -> TeamRepository:
    control = Repo.clone(upstream, tmp_path / agent / "control", agent=agent)
    land = Repo.clone(upstream, tmp_path / agent / "land", agent=agent)
    return TeamRepository(control, land, agent=agent, host="h", role=None, lease_s=120,
                          clock=lambda: datetime.now(timezone.utc), state_dir=tmp_path / "state",
                          rng=random.Random(0), keep_apart=keep_apart)


@pytest.fixture
def three(tmp_path):
    """TASK-001 and TASK-002 touch calc.py (the first two by priority), TASK-003 other.py."""
    root, upstream = team_project(tmp_path)
    clude(root, "team", "task", "add", "One", "--tests", "test_calc.py::test_add", "--priority", "2",
          "--files", "calc.py")
    clude(root, "team", "task", "add", "Two", "--tests", "test_calc.py::test_add", "--priority", "1",
          "--files", "calc.py,README.md")
    clude(root, "team", "task", "add", "Three", "--tests", "test_calc.py::test_add", "--files", "other.py")
    return root, upstream


@pytest.mark.parametrize("keep_apart, second", [(True, "TASK-003"), (False, "TASK-002")])
def test_a_worker_takes_a_task_apart_from_those_in_progress_while_one_is_ready(tmp_path, three, keep_apart,
                                                                             second):
    _, upstream = three
    assert "files: [calc.py, README.md]" in upstream_file(upstream, "tasks/TASK-002.md")
    one, two, three_ = (repository(tmp_path, upstream, a, keep_apart=keep_apart) for a in ("a1", "a2", "a3"))
    assert one.claim()[0].task.id == "TASK-001"
    assert two.claim()[0].task.id == second
    # the one left is taken all the same: keeping apart never leaves a worker idle with work ready
    assert three_.claim()[0].task.id == ({"TASK-002", "TASK-003"} - {second}).pop()


def test_apart_prefers_but_never_withholds(tmp_path, three):
    _, upstream = three
    a1 = repository(tmp_path, upstream, "a1")
    a1.claim()
    board = a1.look()
    assert apart(board, ["TASK-002", "TASK-003"]) == ["TASK-003"]
    assert apart(board, ["TASK-002"]) == ["TASK-002"]


BREAK = '''
import pathlib
p = pathlib.Path("calc.py")
p.write_text(p.read_text().replace("return a + b", "return a - b"))
pathlib.Path("notes.txt").write_text("tried")
'''


def test_a_failed_attempt_s_changed_files_become_the_task_s(tmp_path):
    from clude.config.loader import load_settings
    from clude.team.backends import get_backend
    from clude.team.work.worker import Worker, WorkerConfig

    root, upstream = team_project(tmp_path)
    clude(root, "team", "task", "add", "Break add", "--tests", "test_calc.py::test_add", "--max-attempts", "1",
          "--files", "README.md")
    settings, _ = load_settings(root)
    sleeps: list[float] = []
    worker = Worker(WorkerConfig(agent_id="a1", upstream=upstream, workdir=tmp_path / "agents" / "a1",
                                 state_dir=tmp_path / "state", backend=get_backend(
                                     "command", command=agent_script(tmp_path, "break", BREAK)),
                                 settings=settings, sleep=sleeps.append))
    assert worker.run() == 0
    text = upstream_file(upstream, "tasks/TASK-001.md")
    assert "status: failed" in text
    assert "files: [README.md, calc.py, notes.txt]" in text  # planned first, then what the attempt touched
