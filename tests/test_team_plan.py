"""`clude team plan`: a goal into a graph of tasks by a scripted model, checked like `clude run`'s plans (an
invalid plan goes back to the model with its errors), added in one push, then finished by a team."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from clude.cli.main import main
from team_helpers import agent_script, team_project, upstream_file, upstream_log

CLUDE = [sys.executable, "-m", "clude"]


def reply(steps: list[dict], title: str = "Mean and its docs") -> dict:
    return {"text": "The tasks:\n```json\n" + json.dumps({"title": title, "steps": steps}) + "\n```"}


GOOD = [
    {"id": "fix", "title": "Fix mean()", "description": "mean divides by one too many", "role": "implementer",
     "tests": "test_calc.py::test_mean", "files": ["calc.py"], "dependencies": []},
    {"id": "docs", "title": "Document mean()", "role": "docs", "tests": "test_calc.py::test_add",
     "files": "DOCS.md", "dependencies": ["fix"]},
]
BAD = [  # a cycle, an unknown dependency, a role this team does not have
    {"id": "fix", "title": "Fix mean()", "dependencies": ["docs"]},
    {"id": "docs", "title": "Document mean()", "dependencies": ["fix", "review"]},
    {"id": "magic", "title": "Make it fast", "role": "wizard"},
]


def planned_project(tmp_path: Path, replies: list) -> tuple[Path, str]:
    root, upstream = team_project(tmp_path)
    (root / "script.json").write_text(json.dumps(replies))
    with open(root / "clude.toml", "a") as f:
        f.write('[model]\nprovider = "scripted"\nscript = "script.json"\n')
    return root, upstream


def test_an_invalid_plan_goes_back_with_its_errors_and_the_fixed_one_is_added_in_one_push(tmp_path):
    root, upstream = planned_project(tmp_path, [reply(BAD), reply(GOOD)])
    before = len(upstream_log(upstream))
    result = CliRunner().invoke(main, ["team", "plan", "Fix mean and document it", "--yes", "--json",
                                       "-C", str(root)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.strip().splitlines()[-1])
    assert out["added"] == [{"step": "fix", "task": "TASK-001"}, {"step": "docs", "task": "TASK-002"}]
    log = upstream_log(upstream)
    assert len(log) == before + 1 and log[-1].startswith("add 2 tasks (TASK-001 .. TASK-002)")
    docs = upstream_file(upstream, "tasks/TASK-002.md")
    assert "deps: [TASK-001]" in docs and "role: docs" in docs and "files: [DOCS.md]" in docs
    assert "made_by: plan" in docs and "Part of the goal: Fix mean and document it" in docs
    assert "planned for the goal: Fix mean and document it" in upstream_file(upstream, "PROGRESS.md")


def test_the_model_is_told_what_was_wrong_and_gives_up_after_its_attempts(tmp_path):
    root, upstream = planned_project(tmp_path, [reply(BAD)])
    result = CliRunner().invoke(main, ["team", "plan", "Fix mean", "--yes", "--attempts", "1", "-C", str(root)])
    assert result.exit_code == 3, result.output
    for said in ("dependency cycle: fix -> docs -> fix", "'review', which is not a step id",
                 "role 'wizard' is not a role of this team"):
        assert said in result.output
    assert not [s for s in upstream_log(upstream) if s.startswith("add ")]  # nothing added


def test_a_plan_is_shown_and_rejected_or_edited_before_anything_is_added(tmp_path, monkeypatch):
    root, upstream = planned_project(tmp_path, [reply(GOOD), reply(GOOD)])
    rejected = CliRunner().invoke(main, ["team", "plan", "Fix mean", "-C", str(root)], input="r\n")
    assert rejected.exit_code == 1 and "Add these tasks?" in rejected.output and "fix <- " not in rejected.output
    assert "docs <- fix" in rejected.output and "rejected: nothing added" in rejected.output
    # $EDITOR: a script that drops the docs task
    editor = tmp_path / "editor.py"
    editor.write_text("import json, sys\np = sys.argv[1]\nplan = json.load(open(p))\n"
                      "plan['steps'] = plan['steps'][:1]\njson.dump(plan, open(p, 'w'))\n")
    monkeypatch.setenv("EDITOR", f"{sys.executable} {editor}")
    edited = CliRunner().invoke(main, ["team", "plan", "Fix mean", "-C", str(root)], input="e\na\n")
    assert edited.exit_code == 0, edited.output
    assert "added 1 task(s): TASK-001 (fix)" in edited.output
    assert upstream_file(upstream, "tasks/TASK-002.md") is None


AGENT = '''
import pathlib, sys
prompt = pathlib.Path(sys.argv[2]).read_text()
if "Fix mean()" in prompt:
    p = pathlib.Path("calc.py")
    p.write_text(p.read_text().replace("(len(values) + 1)", "len(values)"))
if "Document mean()" in prompt:
    pathlib.Path("DOCS.md").write_text("mean(values): the average of values\\n")
'''


def test_a_goal_becomes_a_graph_of_tasks_that_a_team_then_finishes(tmp_path):
    root, upstream = planned_project(tmp_path, [reply(GOOD)])
    result = CliRunner().invoke(main, ["team", "plan", "Fix mean and document it", "--yes", "-C", str(root)])
    assert result.exit_code == 0, result.output
    done = subprocess.run([*CLUDE, "team", "run", "--agents", "2", "--backend", "command", "--command",
                           agent_script(tmp_path, "agent", AGENT), "--no-doctor", "--json", "--roles",
                           "implementer=1,docs=1", "-C", str(root)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    board = json.loads(done.stdout)
    assert board["counts"]["done"] == 2
    order = [s for s in upstream_log(upstream) if s.startswith("done ")]
    assert order[0].startswith("done TASK-001") and order[1].startswith("done TASK-002")  # the graph's order
    assert upstream_file(upstream, "DOCS.md") == "mean(values): the average of values\n"


def test_forever_with_a_goal_a_planner_adds_the_next_tasks_within_max_auto_tasks(tmp_path):
    """The board empties, the planner proposes a task (twice); the third ask never comes: max_auto_tasks is
    2. Each task is noted in PROGRESS.md with why it was made. The run is stopped with `clude team stop`."""
    import threading

    from clude.team.supervision.control import running_team

    first = [dict(GOOD[0], description="mean() is off by one, and the goal wants it right")]
    second = [dict(GOOD[1], dependencies=["TASK-001"], description="the goal asks for documented functions")]
    third = [{"id": "more", "title": "Never asked for"}]
    root, upstream = planned_project(tmp_path, [reply(first), reply(second), reply(third)])
    with open(root / "clude.toml", "a") as f:
        f.write("[team]\nmax_auto_tasks = 2\npoll_s = 0.2\n")
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "cfg"],
                   check=True)

    def stop_when_both_done() -> None:
        for _ in range(3000):
            if sum(s.startswith("done TASK-") for s in upstream_log(upstream)) >= 2 and \
                    running_team(root / ".clude") is not None:
                subprocess.run([*CLUDE, "team", "stop", "-C", str(root)], check=True, capture_output=True)
                return
            threading.Event().wait(0.05)

    stopper = threading.Thread(target=stop_when_both_done, daemon=True)
    stopper.start()
    done = subprocess.run([*CLUDE, "team", "run", "--forever", "--goal", "A correct, documented mean()",
                           "--agents", "2", "--roles", "implementer=1,docs=1", "--backend", "command", "--command",
                           agent_script(tmp_path, "agent", AGENT), "--no-doctor", "--json", "-C", str(root)],
                          capture_output=True, text=True, timeout=600)
    stopper.join(timeout=30)
    assert done.returncode == 130, done.stderr  # stopped as Ctrl-C stops it
    board = json.loads(done.stdout)
    assert [(t["id"], t["state"]) for t in board["tasks"]] == [("TASK-001", "done"), ("TASK-002", "done")]
    assert "made_by: auto" in upstream_file(upstream, "tasks/TASK-002.md")
    progress = upstream_file(upstream, "PROGRESS.md")
    assert "TASK-001 (planner): made by the planner (--forever) towards the goal: mean() is off by one" in progress
    assert "the goal asks for documented functions" in progress
    assert "the planner added TASK-002 (0 more allowed in this run)" in done.stderr


def test_the_planner_reads_the_project_with_read_only_tools_before_it_answers(tmp_path):
    """It reads calc.py, finds write_file and run_shell are not there and .git/ closed, and answers knowing
    the code."""
    from clude.llm.scripted import ScriptedModel
    from clude.team.plan.propose import propose
    from team_helpers import team_project

    root, _ = team_project(tmp_path)
    seen: list[str] = []

    def script(messages, tools):
        seen.append(",".join(sorted(t["function"]["name"] for t in tools or [])))
        results = [m["content"] for m in messages if m.get("role") == "tool"]
        if not results:
            return {"tool_calls": [{"name": "read_file", "arguments": {"path": "calc.py"}},
                                   {"name": "write_file", "arguments": {"path": "calc.py", "content": "x"}},
                                   {"name": "run_shell", "arguments": {"command": "touch pwned"}},
                                   {"name": "read_file", "arguments": {"path": ".git/config"}},
                                   {"name": "grep", "arguments": {"pattern": "url", "path": ".git"}}]}
        assert "(len(values) + 1)" in results[0]  # it read the code
        assert "no tool named 'write_file'" in results[1] and "no tool named 'run_shell'" in results[2]
        assert all("not read here" in r for r in results[3:])  # a clone's config may hold credentials
        return reply(GOOD)

    before = (root / "calc.py").read_text()
    plan = propose(ScriptedModel(script), root, "Fix mean", roles=["implementer", "docs", "tester"], board={})
    assert [s.id for s in plan.steps] == ["fix", "docs"]
    assert seen == ["grep,list_files,read_file"] * 2  # only the read-only tools are offered
    assert (root / "calc.py").read_text() == before and not (root / "pwned").exists()
