"""Adversarial review of the team's self-directed work (team plan, --from-tests, overlap-aware scheduling,
--forever --goal): each test is a proof of a weakness, failing until it is fixed. Real git, real clones and
real `clude team run` subprocesses, scripted models; nothing under test is mocked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from clude.team.board.tasks import parse_task
from team_helpers import agent_script, git, team_project, upstream_file, upstream_files, upstream_log

CLUDE = [sys.executable, "-m", "clude"]


def push_from_teammate(tmp_path: Path, upstream: str, name: str, make) -> None:
    """A commit pushed to the upstream's main by someone else (a teammate, or an agent's change that landed):
    `make(checkout)` changes the clone's files."""
    other = tmp_path / name
    subprocess.run(["git", "clone", "-q", upstream, str(other)], check=True)
    make(other)
    git(other, "add", "-A")
    git(other, "-c", "user.name=p", "-c", "user.email=p@p", "commit", "-qm", f"{name}: a change")
    git(other, "push", "-q", "origin", "HEAD:main")


def plan_reply(steps: list[dict], title: str = "Next steps") -> dict:
    return {"text": "```json\n" + json.dumps({"title": title, "steps": steps}) + "\n```"}


# 1. The planner's reader reads .git/config through a symlink the upstream holds ----------------------------

def test_the_planner_s_grep_does_not_read_git_s_config_through_a_symlink_on_main(tmp_path):
    """docs/team.md: "`.git/` and `.clude/` are not read, since what it reads goes to the model". An agent's
    change that landed (or a teammate) adds `notes.cfg -> .git/config`; read_file refuses it, but grep over
    "." walks the tree, follows the symlink (its target is inside the workspace) and returns the clone's
    config line by line: remote URLs, http.extraHeader (CI puts an Authorization header there), user data."""
    from clude.llm.scripted import ScriptedModel
    from clude.team.plan.propose import propose
    from clude.team.protocol.admin import view

    root, upstream = team_project(tmp_path)
    push_from_teammate(tmp_path, upstream, "linker", lambda c: (c / "notes.cfg").symlink_to(".git/config"))
    repo = view(root, upstream)  # the clone `team plan` reads, as it makes it
    git(repo.path, "config", "http.extraHeader", "Authorization: Basic c2VjcmV0LXRva2VuLTEyMzQ1")
    results: list[str] = []

    def script(messages, tools):
        results[:] = [m["content"] for m in messages if m.get("role") == "tool"]
        if not results:
            return {"tool_calls": [{"name": "grep", "arguments": {"pattern": ".", "path": "."}},
                                   {"name": "grep", "arguments": {"pattern": "extraHeader|url", "path": ".",
                                                                  "glob": "*.cfg"}}]}
        return plan_reply([{"id": "fix", "title": "Fix mean()"}])

    propose(ScriptedModel(script), repo.path, "Fix mean", roles=["implementer"], board={})
    assert results, "the planner never read anything"
    leaked = [r for r in results if "repositoryformatversion" in r or "c2VjcmV0LXRva2VuLTEyMzQ1" in r]
    assert not leaked, f"the planner's model was sent git's config: {leaked[0][:600]}"


# 2. --forever --goal: a plan cut to max_auto_tasks crashes the monitor ---------------------------------------

def test_a_forever_plan_cut_to_max_auto_tasks_adds_tasks_instead_of_crashing(tmp_path):
    """The planner proposes two tasks, the first depending on the second ("impl" needs "tests", listed after
    it); max_auto_tasks leaves room for one. task_fields wrote the dependency as "#2", the plan is cut to its
    first task, add_tasks leaves "#2" as is (out of range) and Task() rejects it: a pydantic ValidationError
    out of Director.next_tasks, which runs inside the monitor's board_settled(): `team run --forever` dies
    with a traceback and every worker is stopped. Any plan longer than what is left, with a kept task
    depending on a dropped one, does it."""
    from clude.llm.scripted import ScriptedModel
    from clude.team.protocol.admin import MONITOR_CLONE, board_of, view
    from clude.team.supervision.direct import Director

    root, upstream = team_project(tmp_path)
    repo = view(root, upstream, MONITOR_CLONE)
    model = ScriptedModel([plan_reply([
        {"id": "impl", "title": "Implement the feature", "dependencies": ["tests"]},
        {"id": "tests", "title": "Write the feature's tests", "role": "tester"}])])
    said: list[str] = []
    director = Director(model, "A feature", roles=["implementer", "tester", "docs"], max_tasks=1, max_attempts=1,
                        suite=lambda path: "passed", echo=said.append)
    added = director.next_tasks(repo, board_of(repo, 120.0))  # raised pydantic's ValidationError
    assert len(added) <= 1
    for name in upstream_files(upstream, "tasks"):
        if name.endswith(".md"):
            task = parse_task(upstream_file(upstream, f"tasks/{name}"), f"tasks/{name}")
            assert all(upstream_file(upstream, f"tasks/{dep}.md") for dep in task.deps), task


# 3. --from-tests on a suite whose command does not narrow to test ids: tasks that can never finish --------

FIX_NAMED_CHECK = '''
import pathlib, re, sys
prompt = pathlib.Path(sys.argv[2]).read_text()
for name in re.findall(r"checks/(\\w+)\\.txt", prompt):
    pathlib.Path(f"checks/{name}.txt").write_text("ok\\n")
'''


def test_from_tests_tasks_finish_when_the_test_command_does_not_take_test_ids(tmp_path):
    """Two independent failing checks (a generic JUnit-writing suite: its command ignores arguments) make two
    tasks, each with its check as acceptance test. The acceptance run is the command + the ids; the command
    runs every check, and acceptance is judged by the run's status, not by the named tests' outcomes: the
    agent that fixed check a is failed because check b (the other task's) still fails, and the other way
    round. With one attempt each, both tasks fail though each agent did exactly its task."""
    root, upstream = team_project(tmp_path, fast=True, team="[team]\npoll_s = 0.2\nmax_attempts = 1\n",
                                  files={"checks/a.txt": "broken\n", "checks/b.txt": "broken\n"})
    agent = agent_script(tmp_path, "fixer", FIX_NAMED_CHECK)
    done = subprocess.run([*CLUDE, "team", "run", "--from-tests", "--agents", "1", "--backend", "command",
                           "--command", agent, "--no-doctor", "--json", "-C", str(root)],
                          capture_output=True, text=True, timeout=600)
    board = json.loads(done.stdout.strip().splitlines()[-1])
    states = {t["id"]: (t["state"], t["tests"]) for t in board["tasks"]}
    assert len(states) == 2, states  # one task per failing check
    assert board["counts"]["done"] == 2, (states, [s for s in upstream_log(upstream) if "failed" in s])


# 4. A file named like a glob, learned from a failed attempt, overlaps every task ----------------------------

MAKE_STAR = '''
import pathlib
p = pathlib.Path("calc.py")
p.write_text(p.read_text().replace("return a + b", "return a - b"))
pathlib.Path("*").write_text("a file named star")
'''


def test_a_learned_file_whose_name_has_glob_characters_is_not_taken_as_a_glob(tmp_path):
    """A failed attempt's changed files are learned as its task's files, and a task's files are read as
    globs; an agent that leaves a file literally named "*" (git takes it) turns its task into one that
    overlaps every other task: it is passed over whenever anything is in progress, and while it is held
    no task is ever claimed ahead in a queueing push (strict)."""
    from clude.config.loader import load_settings
    from clude.team.backends import get_backend
    from clude.team.board.overlap import overlap
    from clude.team.work.worker import Worker, WorkerConfig

    root, upstream = team_project(tmp_path)
    subprocess.run([*CLUDE, "team", "task", "add", "Break add", "--tests", "test_calc.py::test_add",
                    "--max-attempts", "1", "--files", "calc.py", "-C", str(root)], check=True, capture_output=True)
    settings, _ = load_settings(root)
    worker = Worker(WorkerConfig(agent_id="a1", upstream=upstream, workdir=tmp_path / "agents" / "a1",
                                 state_dir=tmp_path / "state", backend=get_backend(
                                     "command", command=agent_script(tmp_path, "star", MAKE_STAR)),
                                 settings=settings, sleep=lambda s: None))
    assert worker.run() == 0
    task = parse_task(upstream_file(upstream, "tasks/TASK-001.md"), "tasks/TASK-001.md")
    assert task.status == "failed" and "calc.py" in task.files
    assert not overlap(task.files, ["docs/guide.md"]), task.files  # a docs task has nothing to do with it


# 5. "Goal reached" read from any `"steps": []` in the reply -------------------------------------------------

def test_a_plan_is_not_taken_for_goal_reached_because_a_step_holds_an_empty_steps_list():
    """--forever's planner ends the proposals with {"steps": []}; the check is a regular expression over
    the whole reply, so a valid plan whose task carries an (ignored) "steps": [] of its own, or prose
    quoting the empty answer before the plan, is taken as "the goal is reached" and nothing is added."""
    from clude.team.plan.propose import GoalReached, parse_team_plan

    text = json.dumps({"title": "Docs", "steps": [
        {"id": "api", "title": "Document the API", "steps": []},
        {"id": "cli", "title": "Document the CLI", "dependencies": ["api"]}]})
    try:
        plan = parse_team_plan(text, roles=["implementer"], may_end=True)
    except GoalReached:
        raise AssertionError("a plan of two tasks was read as 'the goal is reached'") from None
    assert [s.id for s in plan.steps] == ["api", "cli"]


# 6. A push the upstream refuses, while --from-tests adds its tasks, kills `team run` -----------------------

REFUSE_ADDS = """#!/bin/sh
while read old new ref; do
  case "$(git log -1 --format=%s "$new")" in
    add*) echo "refused by policy: no new tasks today" >&2; exit 1 ;;
  esac
done
exit 0
"""


def test_a_refused_push_of_tasks_made_from_tests_is_reported_not_a_traceback(tmp_path):
    """The monitor's other pushes (a note that a worker is blocked) catch GitError and UpstreamRejected: "the
    note is lost, never the monitor". TestsToTasks.check (and Director.next_tasks) call add_tasks inside the
    monitor's board_settled() with no such guard: a refused push (a hook, a protected branch, a full disk,
    60 lost races) or a network error while adding the tasks ends `team run` with a Python traceback (and,
    mid-run, stops every worker)."""
    root, upstream = team_project(tmp_path, fast=True, team="[team]\npoll_s = 0.2\nmax_attempts = 1\n",
                                  files={"checks/a.txt": "broken\n"})
    hook = Path(upstream) / "hooks" / "pre-receive"
    hook.write_text(REFUSE_ADDS)
    hook.chmod(0o755)
    agent = agent_script(tmp_path, "fixer", FIX_NAMED_CHECK)
    done = subprocess.run([*CLUDE, "team", "run", "--from-tests", "--agents", "1", "--backend", "command",
                           "--command", agent, "--no-doctor", "-C", str(root)],
                          capture_output=True, text=True, timeout=600)
    assert "Traceback" not in done.stderr, done.stderr[-1500:]
    assert "refused by policy" in done.stderr  # the upstream's reason is told, as a sentence
