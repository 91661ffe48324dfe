"""--parallel: independent ready steps at once, each in its own git worktree, merged back into the project."""

from __future__ import annotations

import subprocess
import threading

from agent_helpers import CALC, AgentScript, call, done, plan, sample_project
from clude.agent import start_run
from clude.config.loader import load_settings
from clude.config.settings import AgentConfig
from clude.llm.scripted import ScriptedModel


def git(root, *args) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout


def together(script: AgentScript, *steps: str) -> threading.Barrier:
    """Make the first request of each step wait for the others': proof they run at the same time
    (run one after another, the barrier would break and the script fail)."""
    barrier = threading.Barrier(len(steps), timeout=30)
    for step in steps:
        script.hooks[(step, 1)] = barrier.wait
    return barrier


def parallel_run(root, script, n=3, **agent):
    settings, _ = load_settings(root)
    settings.agent = AgentConfig(parallel=n, verify="never", **agent)
    return start_run(root, "several things", settings, ScriptedModel(script))


def test_independent_steps_run_at_once_and_all_their_changes_land(tmp_path):
    root = sample_project(tmp_path / "p")
    head, status = git(root, "rev-parse", "HEAD"), git(root, "status", "--porcelain")
    script = AgentScript(
        [plan("p", ("new", "New module"), ("add", "Touch add"), ("mean", "Fix mean"),
              ("check", "Check", ["new", "add", "mean"]))],
        {"new": [call("write_file", path="pkg/extra.py", content="X = 1\n"), done("new module")],
         "add": [call("edit_file", path="calc.py", search="    return a + b", replace="    return b + a"),
                 done("add")],
         "mean": [call("edit_file", path="calc.py", search="(len(values) + 1)", replace="len(values)"),
                  done("mean")],
         "check": [call("read_file", path="calc.py"), done("checked")]})
    together(script, "new", "add", "mean")
    result = parallel_run(root, script)
    assert result.status == "done", result.reason
    assert (root / "pkg/extra.py").read_text() == "X = 1\n"
    calc = (root / "calc.py").read_text()
    assert "return b + a" in calc and "/ len(values)" in calc  # two steps, one file, merged
    for step in ("new", "add", "mean"):
        assert f"/worktrees/{step}" in script.requests[step][0][0]["content"]
    assert "/worktrees/" not in script.requests["check"][0][0]["content"]  # alone: in the project
    # the user's branch, index and commits are untouched; no worktree is left behind
    assert git(root, "rev-parse", "HEAD") == head
    assert git(root, "worktree", "list").count("\n") == 1
    assert status == "" and set(git(root, "status", "--porcelain").split()) == {"M", "calc.py", "??", "pkg/"}


def test_two_steps_changing_the_same_lines_conflict_and_the_loser_is_retried_on_the_result(tmp_path):
    root = sample_project(tmp_path / "p")
    script = AgentScript(
        [plan("p", ("one", "One"), ("two", "Two"))],
        {"one": [call("edit_file", path="calc.py", search="    return a + b", replace="    return a + b  # one"),
                 done("one")],
         "two": [call("edit_file", path="calc.py", search="    return a + b", replace="    return (a + b)  # two"),
                 done("two, first try"),
                 call("edit_file", path="calc.py", search="    return a + b  # one",
                      replace="    return a + b  # one, two"), done("two, second try")]})
    together(script, "one", "two")
    result = parallel_run(root, script, n=2)
    assert result.status == "done", result.reason
    steps = {s.id: s for s in result.steps}
    assert steps["one"].attempts == 1 and steps["two"].attempts == 2
    retry_prompt = script.requests["two"][-1][1]["content"]
    assert "conflict" in retry_prompt and "calc.py" in retry_prompt
    calc = (root / "calc.py").read_text()
    assert "return a + b  # one, two" in calc
    assert "<<<<<<<" not in calc and ">>>>>>>" not in calc
    assert calc.replace("  # one, two", "") == CALC


def test_parallel_outside_a_git_repository_stops_with_the_reason(tmp_path):
    root = sample_project(tmp_path / "p", git=False)
    script = AgentScript([], {})
    result = parallel_run(root, script, n=2)
    assert result.status == "error"
    assert "--parallel needs a git repository" in result.reason
    assert script.calls == {}
