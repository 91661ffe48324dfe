"""`clude team run --from-tests`: failing tests as the to-do list, grouped by cause (pure), and a whole team
run on a project with 12 failing tests in 3 modules, with a failure that appears mid-run."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from clude.harness.verdict import Failure
from clude.team.board.from_tests import MADE_BY, group, new_tasks
from clude.team.board.tasks import Task
from clude.team.protocol.upstream import init_team
from team_helpers import agent_script, git, upstream_file, upstream_files, upstream_log

CLUDE = [sys.executable, "-m", "clude"]


def test_failures_group_by_place_and_error_signature_and_are_never_made_twice():
    failures = [Failure(id=f"tests/test_a.py::test_{n}", file="tests/test_a.py", line=n,
                        reason=f"assert {n} == {n + 1}") for n in range(4)]
    failures += [Failure(id="tests/test_b.py::test_x", file="src/b.py", line=3, reason="KeyError: 'x'"),
                 Failure(id="tests/test_b.py::test_y", file="src/b.py", line=3, reason="KeyError: 'y'"),
                 Failure(id="tests/test_b.py::test_z", file="src/b.py", line=9, reason="TypeError: bad")]
    groups = group(failures)
    assert [(g.where, len(g.failures)) for g in groups] == [("tests/test_a.py", 4), ("src/b.py", 2), ("src/b.py", 1)]
    made = new_tasks(failures, {}, max_attempts=2)
    assert len(made) == 3 and made[0]["made_by"] == MADE_BY and made[0]["max_attempts"] == 2
    assert made[0]["tests"] == " ".join(f"tests/test_a.py::test_{n}" for n in range(4))
    assert made[1]["files"] == ["src/b.py"] and "Make 2 failing tests in src/b.py pass" in made[1]["title"]
    existing = {"TASK-001": Task(id="TASK-001", title="t", tests=made[0]["tests"], made_by=MADE_BY, status="failed"),
                "TASK-002": Task(id="TASK-002", title="by hand", tests="tests/test_b.py::test_x")}
    again = new_tasks(failures, existing, max_attempts=2)  # a task a person wrote does not cover them
    assert [m["tests"] for m in again] == ["tests/test_b.py::test_x tests/test_b.py::test_y",
                                           "tests/test_b.py::test_z"]


MODULES = {"mod_a": ("double", "x * 3", "x * 2"), "mod_b": ("half", "x / 3", "x / 2"),
           "mod_c": ("square", "x + x", "x * x")}

FIX = '''
import pathlib, sys, time
prompt = pathlib.Path(sys.argv[2]).read_text()
time.sleep(0.5)
fixes = {FIXES}
for test_file, (module, wrong, right) in fixes.items():
    if test_file in prompt:
        p = pathlib.Path(module + ".py")
        if p.exists():
            p.write_text(p.read_text().replace(wrong, right))
        else:
            p.write_text(right)
'''


def project(tmp_path: Path) -> tuple[Path, str]:
    root = tmp_path / "project"
    (root / "tests").mkdir(parents=True)
    for module, (name, wrong, _) in MODULES.items():
        (root / f"{module}.py").write_text(f"def {name}(x):\n    return {wrong}\n")
        cases = [(n, eval(f"lambda x: {MODULES[module][2]}")(n)) for n in (3, 4, 5, 6)]
        (root / "tests" / f"test_{module[-1]}.py").write_text(f"from {module} import {name}\n\n" + "".join(
            f"\ndef test_{name}_{n}():\n    assert {name}({n}) == {want}\n" for n, want in cases))
    command = json.dumps([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"])
    (root / "clude.toml").write_text(f"[test]\ncommand = {command}\n[team]\npoll_s = 0.2\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit",
                                                                "-q", "-m", "start"]):
        git(root, *args)
    return root, init_team(root, str(tmp_path / "upstream.git"))


def test_a_team_run_from_tests_makes_one_task_per_cause_and_a_new_failure_a_task_once(tmp_path):
    root, upstream = project(tmp_path)
    fixes = {"test_a.py": ("mod_a", "x * 3", "x * 2"), "test_b.py": ("mod_b", "x / 3", "x / 2"),
             "test_c.py": ("mod_c", "x + x", "x * x"),
             "test_d.py": ("mod_d", "x + 3", "x * 3")}
    agent = agent_script(tmp_path, "fixer", FIX.replace("{FIXES}", repr(fixes)))
    pushed = threading.Event()

    def add_a_failing_test_once_a_task_is_done() -> None:
        """A teammate pushes a new failing test while the team works (after the first task landed)."""
        for _ in range(2400):
            if any(s.startswith("done ") or "done TASK-" in s for s in upstream_log(upstream)):
                break
            threading.Event().wait(0.05)
        other = tmp_path / "teammate"
        subprocess.run(["git", "clone", "-q", upstream, str(other)], check=True)
        (other / "mod_d.py").write_text("def triple(x):\n    return x + 3\n")
        (other / "tests" / "test_d.py").write_text(textwrap.dedent('''\
            from mod_d import triple


            def test_triple():
                assert triple(2) == 6
            '''))
        git(other, "add", "-A")
        git(other, "-c", "user.name=p", "-c", "user.email=p@p", "commit", "-qm", "a new test, failing")
        for _ in range(50):  # the workers push too: a lost race is fetched and tried again
            pulled = subprocess.run(["git", "-C", str(other), "pull", "-q", "--rebase", "origin", "main"],
                                    capture_output=True).returncode == 0
            if pulled and subprocess.run(["git", "-C", str(other), "push", "-q", "origin", "HEAD:main"],
                                         capture_output=True).returncode == 0:
                pushed.set()
                return

    teammate = threading.Thread(target=add_a_failing_test_once_a_task_is_done, daemon=True)
    teammate.start()
    done = subprocess.run([*CLUDE, "team", "run", "--from-tests", "--agents", "1", "--backend", "command",
                           "--command", agent, "--no-doctor", "--json", "-C", str(root)],
                          capture_output=True, text=True, timeout=600)
    teammate.join(timeout=60)
    assert pushed.is_set(), "the teammate's push never landed"
    assert done.returncode == 0, done.stderr
    board = json.loads(done.stdout)
    tasks = {t["id"]: t for t in board["tasks"]}
    assert board["counts"]["done"] == 4 and len(tasks) == 4, board
    assert "made from 12 failing test(s)" in upstream_file(upstream, "PROGRESS.md")
    texts = {name: upstream_file(upstream, f"tasks/{name}") for name in upstream_files(upstream, "tasks")
             if name.endswith(".md")}
    assert all(f"made_by: {MADE_BY}" in text for text in texts.values())
    fourth = [t for t in tasks.values() if "tests/test_d.py" in (t["tests"] or "")]
    assert len(fourth) == 1  # the failure that appeared mid-run became one task, once
    assert sorted(len(t["tests"].split()) for t in tasks.values()) == [1, 4, 4, 4]
    # the suite on the upstream's main is green at the end
    final = tmp_path / "final"
    subprocess.run(["git", "clone", "-q", upstream, str(final)], check=True)
    assert subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=final,
                          capture_output=True).returncode == 0
