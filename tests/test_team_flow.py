"""Workers end to end, in process, against a real bare upstream: claim, work, verify, land or record;
failed attempts, infrastructure failures, regressions, lost leases."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from agent_helpers import CALC_FIXED
from clude.config.loader import load_settings
from clude.config.settings import BackendConfig
from clude.sandbox import Sandbox
from clude.team.protocol.admin import add_task, view
from clude.team.backends import get_backend
from clude.team.work.worker import EXIT_INFRA, EXIT_SETTLED, Worker, WorkerConfig
from team_helpers import (agent_script, backend_worker, landed, team_project, upstream_file, upstream_files,
                          upstream_log)

FIX_MEAN = '''
import pathlib, sys
p = pathlib.Path("calc.py")
p.write_text(p.read_text().replace("(len(values) + 1)", "len(values)"))
print("fixed the divisor of mean()")
'''


def worker(root: Path, upstream: str, template: str, tmp_path: Path, agent: str = "a1", **options) -> Worker:
    settings, _ = load_settings(root)
    sleeps = options.pop("sleeps", [])
    return Worker(WorkerConfig(agent_id=agent, upstream=upstream, workdir=tmp_path / "agents" / agent,
                               state_dir=tmp_path / "state", backend=get_backend("command", command=template),
                               settings=settings, sleep=sleeps.append, **options))


def interrupted_when(ready, run, before=lambda: None) -> None:
    """Call `run` (a worker's run, in this thread) and Ctrl-C it once `ready()` holds, `before()` first."""
    import os
    import signal
    import threading

    def watch() -> None:
        for _ in range(1200):
            if ready():
                before()
                os.kill(os.getpid(), signal.SIGINT)
                return
            threading.Event().wait(0.05)

    stopper = threading.Thread(target=watch, daemon=True)
    stopper.start()
    run()
    stopper.join()


def add(root: Path, upstream: str, **fields) -> str:
    settings, _ = load_settings(root)
    task, _ = add_task(view(root, upstream), {"max_attempts": settings.team.max_attempts, **fields})
    return task.id


def test_a_worker_claims_fixes_verifies_and_lands_a_task(tmp_path):
    root, upstream = team_project(tmp_path)
    task = add(root, upstream, title="Fix mean", tests="test_calc.py::test_mean", body="mean is off by one")
    w = worker(root, upstream, agent_script(tmp_path, "fix", FIX_MEAN), tmp_path)
    assert w.run() == EXIT_SETTLED
    log = [s for s in upstream_log(upstream) if not s.startswith("renew ")]  # renewals: as slow as the machine
    assert [s for s in log if task in s] == [f"add {task}: Fix mean", f"claim {task} (agent a1, attempt 1)",
                                             f"queue {task} (agent a1, attempt 1)",
                                             f"{task}: Fix mean (agent a1, attempt 1)",
                                             f"done {task}: Fix mean (agent a1)"]
    assert upstream_file(upstream, "calc.py") == CALC_FIXED
    assert "status: done" in upstream_file(upstream, f"tasks/{task}.md")
    assert upstream_files(upstream, "current_tasks") == [".gitkeep"]
    progress = upstream_file(upstream, "PROGRESS.md")
    assert f"done {task} (a1)" in progress and "fixed the divisor" in progress
    prompt = (tmp_path / "agents/a1/prompts" / f"{task}_attempt_1.md").read_text()
    assert "mean is off by one" in prompt and "test_calc.py::test_mean" in prompt


def test_a_task_that_can_never_pass_uses_its_attempts_then_fails_and_is_never_claimed_again(tmp_path):
    root, upstream = team_project(tmp_path)
    task = add(root, upstream, title="Impossible", tests="test_calc.py::test_mean", max_attempts=3)
    noop = agent_script(tmp_path, "noop", '''
        import pathlib, sys
        pathlib.Path("notes.txt").write_text("tried " + sys.argv[1])
        print("I tried a note instead of a fix")
    ''')
    w = worker(root, upstream, noop, tmp_path)
    w._open()
    outcomes = [w.cycle() for _ in range(53)]
    assert outcomes[:3] == ["failed"] * 3 and set(outcomes[3:]) == {"settled"}
    assert upstream_files(upstream, "tasks/failures") == [".gitkeep"] + [f"{task}_attempt_{n}.md" for n in (1, 2, 3)]
    assert sum(1 for s in upstream_log(upstream) if s.startswith(f"claim {task}")) == 3
    record = upstream_file(upstream, f"tasks/failures/{task}_attempt_3.md")
    assert "test_calc.py" in record and "test_mean" in record and "I tried a note instead of a fix" in record
    assert "status: failed" in upstream_file(upstream, f"tasks/{task}.md")
    assert f"failed {task}" in upstream_file(upstream, "PROGRESS.md")
    second = upstream_file(upstream, "tasks/failures/" + f"{task}_attempt_2.md")
    assert second and "attempt 2" in second.lower()


def test_an_agent_without_its_key_uses_no_attempt_and_the_worker_stops_at_once_with_the_reason(tmp_path):
    """A missing variable never heals by retrying: one agent run, then the worker stops (the codex
    message without its backticks: the form of the words does not matter)."""
    root, upstream = team_project(tmp_path)
    task = add(root, upstream, title="Fix mean", tests="test_calc.py::test_mean")
    broken = agent_script(tmp_path, "nokey", '''
        import sys
        print("ERROR: Missing environment variable: OPENAI_API_KEY", file=sys.stderr)
        sys.exit(1)
    ''')
    w = worker(root, upstream, broken, tmp_path)
    assert w.run() == EXIT_INFRA
    assert upstream_files(upstream, "tasks/failures") == [".gitkeep"]
    assert upstream_files(upstream, "current_tasks") == [".gitkeep"]
    assert "status: open" in upstream_file(upstream, f"tasks/{task}.md")
    from clude.team.logs.events import read_events
    events = read_events(tmp_path / "state")
    infra = [e for e in events if e["kind"] == "infra"]
    assert len(infra) == 1 and infra[0]["cause"] == "missing_env" and "OPENAI_API_KEY" in infra[0]["reason"]
    assert events[-1]["kind"] == "worker_blocked" and "OPENAI_API_KEY" in events[-1]["reason"]



def test_a_suite_that_cannot_run_on_the_upstream_charges_no_attempt_though_the_agent_ran_meanwhile(tmp_path):
    """The baseline is computed while the agent works: found unusable after the agent ran, the task
    still goes back untouched, and the worker stops at once saying why (its environment: the upstream's
    own tests cannot run)."""
    root, upstream = team_project(tmp_path, files={"conftest.py": "raise RuntimeError('no database')\n"})
    task = add(root, upstream, title="Fix mean", tests="test_calc.py::test_mean")
    w = worker(root, upstream, agent_script(tmp_path, "fix", FIX_MEAN), tmp_path)
    assert w.run() == EXIT_INFRA
    assert upstream_files(upstream, "tasks/failures") == [".gitkeep"]
    assert "status: open" in upstream_file(upstream, f"tasks/{task}.md")
    from clude.team.logs.events import read_events
    events = read_events(tmp_path / "state")
    infra = [e for e in events if e["kind"] == "infra"]
    assert len(infra) == 1 and "cannot run on the upstream" in infra[0]["reason"], infra
    assert len([e for e in events if e["kind"] == "agent_started"]) <= 1
    assert events[-1]["kind"] == "worker_blocked" and "cannot run on the upstream" in events[-1]["reason"]

def test_a_change_that_breaks_a_passing_test_is_rejected_as_a_regression(tmp_path):
    root, upstream = team_project(tmp_path)
    task = add(root, upstream, title="Fix mean", tests="test_calc.py::test_mean", max_attempts=1)
    breaks = agent_script(tmp_path, "breaks", FIX_MEAN + '''
p.write_text(p.read_text().replace("return a + b", "return a - b"))
''')
    w = worker(root, upstream, breaks, tmp_path)
    assert w.run() == EXIT_SETTLED
    record = upstream_file(upstream, f"tasks/failures/{task}_attempt_1.md")
    assert "test_add" in record and "pass on the upstream" in record
    assert upstream_file(upstream, "calc.py") != CALC_FIXED  # nothing of the work landed
    assert "status: failed" in upstream_file(upstream, f"tasks/{task}.md")


def test_a_lock_whose_lease_ran_out_is_broken_and_the_task_finished_by_another(tmp_path):
    root, upstream = team_project(tmp_path, team="[team]\nlease_s = 60")
    task = add(root, upstream, title="Fix mean", tests="test_calc.py::test_mean")
    stuck = worker(root, upstream, agent_script(tmp_path, "fix", FIX_MEAN), tmp_path, agent="dead")
    stuck._open()
    claimed = stuck.claim()  # claims, then "dies" without renewing
    assert not isinstance(claimed, str)
    later = lambda: datetime.now(timezone.utc) + timedelta(minutes=5)  # noqa: E731 - the lease is over
    rescuer = worker(root, upstream, agent_script(tmp_path, "fix2", FIX_MEAN), tmp_path, agent="a2",
                     clock=later)
    assert rescuer.run() == EXIT_SETTLED
    log = upstream_log(upstream)
    assert f"claim {task} (agent a2, attempt 1), breaking the expired lock of dead" in log
    assert f"done {task}: Fix mean (agent a2)" in log
    assert upstream_file(upstream, "calc.py") == CALC_FIXED


def test_the_claude_code_backend_completes_a_task_end_to_end(tmp_path):
    """The real npm CLI (`claude -p`) against the Anthropic stub server, run by a worker: claim, the
    CLI's Write tool fixes calc.py, the harness verifies, the work lands."""
    from claude_code import install_claude, write_arguments
    from clude.llm.stubs import AnthropicStub
    from test_team_backends import claude_user_env

    claude = install_claude()  # skips without npm or the registry
    root, upstream = team_project(tmp_path)
    task = add(root, upstream, title="Fix mean", tests="test_calc.py::test_mean")
    target = tmp_path / "agents" / "a1" / "work" / "calc.py"

    def script(messages, tools):
        if "Write" not in {tool["function"]["name"] for tool in tools or []}:
            return "Stub side answer"
        if not any(message["role"] == "tool" for message in messages):
            return {"text": "I'll fix the divisor.", "tool_calls": [
                {"id": "toolu_fix", "name": "Write", "arguments": write_arguments(tools, target, CALC_FIXED)}]}
        return "Fixed mean(): it divided by len(values) + 1."

    with AnthropicStub(script) as stub:
        env = claude_user_env(claude, tmp_path, stub.base_url)
        assert backend_worker(root, upstream, tmp_path, get_backend("claude"), env).run() == EXIT_SETTLED
    assert upstream_file(upstream, "calc.py") == CALC_FIXED
    assert f"done {task}: Fix mean (agent a1)" in upstream_log(upstream)
    assert "Fixed mean()" in upstream_file(upstream, "PROGRESS.md")


def test_a_conflict_with_upstream_goes_back_to_the_agent_once_and_then_lands(tmp_path):
    root, upstream = team_project(tmp_path)
    task = add(root, upstream, title="Fix mean", tests="test_calc.py::test_mean")
    other = tmp_path / "someone-else"
    resolve = agent_script(tmp_path, "resolve", f'''
        import pathlib, subprocess, sys
        calc = pathlib.Path("calc.py")
        text = calc.read_text()
        if "<<<<<<<" in text:  # second run: resolve, keeping both intents
            calc.write_text({CALC_FIXED!r}.replace("len(values)\\n", "len(values)  # note\\n"))
            print("resolved the conflict")
            sys.exit(0)
        # first run: meanwhile someone lands a change to the same line
        git = ["git", "-c", "user.name=o", "-c", "user.email=o@o"]
        subprocess.run(git + ["clone", "-q", {upstream!r}, {str(other)!r}], check=True)
        theirs = pathlib.Path({str(other)!r}, "calc.py")
        theirs.write_text(theirs.read_text().replace("(len(values) + 1)", "(len(values) + 1)  # note"))
        subprocess.run(git + ["commit", "-qam", "a note"], cwd={str(other)!r}, check=True)
        subprocess.run(git + ["push", "-q", "origin", "HEAD:main"], cwd={str(other)!r}, check=True)
        calc.write_text(text.replace("(len(values) + 1)", "len(values)"))
        print("fixed mean")
    ''')
    # the agent itself plays "someone else landing meanwhile": it must reach the upstream, which the
    # sandbox forbids (tests/test_trust_team.py), so this one runs without it
    w = worker(root, upstream, resolve, tmp_path, sandbox=Sandbox.off())
    assert w.run() == EXIT_SETTLED
    assert upstream_file(upstream, "calc.py") == CALC_FIXED.replace("len(values)\n", "len(values)  # note\n")
    assert f"done {task}: Fix mean (agent a1)" in upstream_log(upstream)
    prompt = (tmp_path / "agents/a1/prompts" / f"{task}_attempt_1_conflict.md").read_text()
    assert "calc.py" in prompt and "conflict" in prompt.lower()
    from clude.team.logs.events import read_events
    assert [e["files"] for e in read_events(tmp_path / "state") if e["kind"] == "conflict"] == ["calc.py"]


def test_a_rate_limited_agent_releases_the_task_and_backs_off(tmp_path):
    root, upstream = team_project(tmp_path)
    task = add(root, upstream, title="Fix mean", tests="test_calc.py::test_mean")
    limited = agent_script(tmp_path, "limited", '''
        import sys
        print("Error: 429 Too Many Requests: rate limit exceeded, retry after 42 seconds", file=sys.stderr)
        sys.exit(1)
    ''')
    sleeps: list = []
    w = worker(root, upstream, limited, tmp_path, sleeps=sleeps, max_tasks=1)
    assert w.run() == EXIT_SETTLED
    assert len(sleeps) == 1 and 42 <= sleeps[0] <= 42 * 1.1  # what the API asked, and a little jitter
    assert upstream_files(upstream, "tasks/failures") == [".gitkeep"]
    assert upstream_files(upstream, "current_tasks") == [".gitkeep"]
    assert "status: open" in upstream_file(upstream, f"tasks/{task}.md")


def test_an_upstream_that_refuses_pushes_stops_the_worker_with_the_reason(tmp_path):
    root, upstream = team_project(tmp_path)
    add(root, upstream, title="Fix mean", tests="test_calc.py::test_mean")
    hook = Path(upstream) / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'quota exceeded for this repository' >&2\nexit 1\n")
    hook.chmod(0o755)
    w = worker(root, upstream, agent_script(tmp_path, "fix", FIX_MEAN), tmp_path)
    from clude.team.work.worker import EXIT_UPSTREAM
    assert w.run() == EXIT_UPSTREAM
    from clude.team.logs.events import read_events
    stopped = read_events(tmp_path / "state")[-1]
    assert stopped["kind"] == "worker_stopped" and "quota exceeded" in stopped["reason"]


def test_roles_are_assigned_from_the_command_line():
    from clude.team.supervision.runner import assign_roles, parse_roles
    import pytest

    assert parse_roles("implementer=2, docs=1") == {"implementer": 2, "docs": 1}
    assert assign_roles(4, {"implementer": 2, "docs": 1}) == [
        ("a1", "implementer"), ("a2", "implementer"), ("a3", "docs"), ("a4", None)]
    with pytest.raises(ValueError, match="ROLE=COUNT"):
        parse_roles("implementer")
    with pytest.raises(ValueError, match="--agents is 1"):
        assign_roles(1, {"docs": 2})


def test_a_project_without_tests_lands_tasks_as_done_unverified_when_told_to(tmp_path):
    from conftest import write_files
    from team_helpers import git
    from clude.team.protocol.upstream import init_team

    root = tmp_path / "project"
    write_files(root, {"README.md": "A project without tests.\n", "clude.toml": '[team]\nverify = "none"\n'})
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t",
                                                               "commit", "-q", "-m", "start"]):
        git(root, *args)
    upstream = init_team(root, str(tmp_path / "upstream.git"))
    task = add(root, upstream, title="Tidy the README")
    tidy = agent_script(tmp_path, "tidy", 'import pathlib\npathlib.Path("README.md").write_text("Tidy.\\n")\n')
    assert worker(root, upstream, tidy, tmp_path).run() == EXIT_SETTLED
    text = upstream_file(upstream, f"tasks/{task}.md")
    assert "status: done" in text and "verified: false" in text
    assert f"done-unverified {task} (a1)" in upstream_file(upstream, "PROGRESS.md")
    assert upstream_file(upstream, "README.md") == "Tidy.\n"


def test_a_change_with_no_test_to_judge_it_is_not_done(tmp_path):
    skipped = "import pytest\n\n\n@pytest.mark.skip(reason='later')\ndef test_mean():\n    pass\n"
    root, upstream = team_project(tmp_path, files={"test_calc.py": skipped})  # every test skipped
    task = add(root, upstream, title="Anything", max_attempts=1)
    w = worker(root, upstream, agent_script(tmp_path, "fix", FIX_MEAN), tmp_path)
    w.run()
    assert "status: failed" in upstream_file(upstream, f"tasks/{task}.md")
    assert "nothing verifies this change" in upstream_file(upstream, f"tasks/failures/{task}_attempt_1.md")


def test_the_tree_a_worker_lands_was_verified_so_the_next_baseline_costs_nothing(tmp_path):
    root, upstream = team_project(tmp_path)
    add(root, upstream, title="Fix mean", tests="test_calc.py::test_mean", priority=1)
    add(root, upstream, title="A note", tests="test_calc.py::test_add")
    agent = agent_script(tmp_path, "two", FIX_MEAN + '''
if sys.argv[1] == "TASK-002":
    pathlib.Path("NOTES.md").write_text("notes")
''')
    assert worker(root, upstream, agent, tmp_path).run() == EXIT_SETTLED
    assert [s for s in landed(upstream) if s.startswith("done ")] == [
        "done TASK-001: Fix mean (agent a1)", "done TASK-002: A note (agent a1)"]
    runs = [json.loads(p.read_text()) for p in tmp_path.glob("agents/a1/harness*/reports/*/verdict.json")]
    whole = [r for r in runs if not any("::" in word for word in r["command"])]
    # the worker: the baseline of task 1 (task 2's, claimed before task 1 landed, is the same tree) and
    # each task's acceptance tests; the lander: the whole suite once per batch (one or two batches), its
    # baseline the worker's. Nothing is run twice on the same tree.
    assert len(runs) - len(whole) == 2 and 2 <= len(whole) <= 3, [r["command"] for r in runs]


POISONED = FIX_MEAN.replace("import pathlib, sys", '''import pathlib, sys
if sys.argv[1] == "TASK-001":
    print("segmentation fault (core dumped)", file=sys.stderr)
    sys.exit(139)''')


def test_a_task_whose_agent_always_dies_at_start_is_blocked_and_the_worker_goes_on(tmp_path):
    """The agent dies at once on one task only: not the worker's environment (it does the others
    fine) but the task's. The task is blocked with the reason, no attempt is charged, and the worker
    finishes the rest and ends settled instead of blocked."""
    root, upstream = team_project(tmp_path)
    poisoned = add(root, upstream, title="Poisoned", tests="test_calc.py::test_mean", priority=2)
    add(root, upstream, title="Fix mean", tests="test_calc.py::test_mean", priority=1)
    add(root, upstream, title="A note", tests="test_calc.py::test_add")
    assert worker(root, upstream, agent_script(tmp_path, "poisoned", POISONED), tmp_path).run() == EXIT_SETTLED
    text = upstream_file(upstream, f"tasks/{poisoned}.md")
    assert "status: blocked" in text and "segmentation fault" in text and "failed_at_start: [a1, a1]" in text
    assert upstream_files(upstream, "tasks/failures") == [".gitkeep"]  # never charged
    assert sum("status: done" in upstream_file(upstream, f"tasks/TASK-00{n}.md") for n in (2, 3)) == 2
    assert f"blocked {poisoned} (a1)" in upstream_file(upstream, "PROGRESS.md")
    from clude.team.logs.events import read_events
    events = read_events(tmp_path / "state")
    assert [e["task"] for e in events if e["kind"] == "task_blocked"] == [poisoned]
    assert not any(e["kind"] == "worker_blocked" for e in events)
    runs = tmp_path / "agents/a1/runs"  # claimed twice as attempt 1 (no attempt used): two logs kept
    logs = sorted(p.name for p in runs.glob(f"{poisoned}_attempt_1*.log"))
    assert logs == [f"{poisoned}_attempt_1.2.log", f"{poisoned}_attempt_1.log"], logs
    assert all("segmentation fault" in (runs / name).read_text() for name in logs)


def test_an_agent_killed_at_its_timeout_is_a_failed_attempt_that_says_so(tmp_path):
    root, upstream = team_project(tmp_path, team="[team]\nagent_timeout_s = 1")
    task = add(root, upstream, title="Fix mean", tests="test_calc.py::test_mean", max_attempts=1)
    hangs = agent_script(tmp_path, "hangs", "import time\ntime.sleep(60)\n")
    assert worker(root, upstream, hangs, tmp_path).run() == EXIT_SETTLED
    record = upstream_file(upstream, f"tasks/failures/{task}_attempt_1.md")
    assert "ran out of time after 1 s" in record and "changed nothing" not in record


def test_an_agent_that_finds_the_task_undoable_fails_the_attempt_with_its_words(tmp_path):
    """clude's own agent with no valid plan (`clude run` blocked): the task's failure, charged as an
    attempt with the reason, never taken for the worker's environment."""
    root, upstream = team_project(tmp_path)
    task = add(root, upstream, title="Fix mean", tests="test_calc.py::test_mean", max_attempts=2)
    undoable = agent_script(tmp_path, "noplan", '''
        import json, pathlib, sys
        messages = pathlib.Path(".clude/sessions/s1/messages")  # as clude run keeps them
        messages.mkdir(parents=True)
        (messages / "plan.json").write_text(json.dumps([{"role": "user", "content": sys.argv[2]}]))
        print(json.dumps({"status": "blocked", "reason": "no valid plan after 3 attempts; the model "
                          "answered with steps that depend on each other in a cycle", "steps": []}))
        sys.exit(3)
    ''')
    settings, _ = load_settings(root)
    w = Worker(WorkerConfig(agent_id="a1", upstream=upstream, workdir=tmp_path / "agents" / "a1",
                            state_dir=tmp_path / "state", settings=settings, sleep=[].append,
                            backend=get_backend("clude", {"clude": BackendConfig(command=undoable)})))
    assert w.run() == EXIT_SETTLED
    assert "status: failed" in upstream_file(upstream, f"tasks/{task}.md")
    record = upstream_file(upstream, f"tasks/failures/{task}_attempt_2.md")
    assert "the agent could not do the task: no valid plan after 3 attempts" in record
    for n in (1, 2):  # each attempt keeps its own log and its agent's messages
        kept = tmp_path / f"agents/a1/runs/{task}_attempt_{n}.clude/sessions/s1/messages/plan.json"
        assert f"{task}_attempt_{n}.md" in kept.read_text()


def test_a_test_that_fails_once_in_verification_is_named_flaky_and_charges_nothing(tmp_path):
    """The worker's acceptance run flakes (a test that passes on the upstream fails once): run again,
    fresh, it passes; the task lands, and PROGRESS.md names the flaky test. (Sandbox off: the counter
    of runs lives outside the tree.)"""
    from test_queue_attacks import FLAKY_ONCE, human_commit

    root, upstream = team_project(tmp_path, fast=True)
    counter = tmp_path / "runs.count"  # run 1: the worker's baseline; run 2 (its acceptance run) flakes
    human_commit(upstream, tmp_path, {"run_checks.sh": FLAKY_ONCE.format(counter=counter)
                                      + (root / "run_checks.sh").read_text()}, "a flaky suite")
    task = add(root, upstream, title="check 1", tests="checks::check1", max_attempts=1)
    writes = agent_script(tmp_path, "writes", "import pathlib\npathlib.Path('checks/check1.txt').write_text('ok\\n')\n")
    assert worker(root, upstream, writes, tmp_path, sandbox=Sandbox.off()).run() == EXIT_SETTLED
    assert "status: done" in upstream_file(upstream, f"tasks/{task}.md")
    assert upstream_files(upstream, "tasks/failures") == [".gitkeep"]
    assert "flaky, not charged: checks::base" in upstream_file(upstream, "PROGRESS.md")


# what an agent prints never stops a worker nor buys a free retry (adversarial review, issue 13) ------
FORGED_AUTH = FIX_MEAN + '''
print('{"type": "result", "is_error": true, "api_error_status": 401, "result": "authentication_error"}')
print("ERROR: Missing environment variable: OPENAI_API_KEY")
'''


def test_an_agent_that_works_and_then_prints_key_errors_is_judged_on_its_work(tmp_path):
    root, upstream = team_project(tmp_path)
    task = add(root, upstream, title="Fix mean", tests="test_calc.py::test_mean")
    assert worker(root, upstream, agent_script(tmp_path, "forged", FORGED_AUTH), tmp_path).run() == EXIT_SETTLED
    assert "status: done" in upstream_file(upstream, f"tasks/{task}.md")


def test_an_agent_claiming_a_variable_is_missing_that_it_is_given_does_not_stop_the_worker(tmp_path):
    root, upstream = team_project(tmp_path)
    add(root, upstream, title="Fix mean", tests="test_calc.py::test_mean", priority=1)
    add(root, upstream, title="A note", tests="test_calc.py::test_add")
    liar = agent_script(tmp_path, "liar", FIX_MEAN.replace("import pathlib, sys", '''import pathlib, sys
if sys.argv[1] == "TASK-001":
    print("Error: missing environment variable: PATH", file=sys.stderr)
    sys.exit(1)'''))
    assert worker(root, upstream, liar, tmp_path).run() == EXIT_SETTLED  # PATH is given: not believed
    assert "status: done" in upstream_file(upstream, "tasks/TASK-002.md")


def test_a_hung_agent_whose_log_speaks_of_rate_limits_is_charged_for_its_timeout(tmp_path):
    root, upstream = team_project(tmp_path, team="[team]\nagent_timeout_s = 1")
    task = add(root, upstream, title="Fix mean", tests="test_calc.py::test_mean", max_attempts=1)
    hangs = agent_script(tmp_path, "hangs", "import time\nprint('step 2: retry when the server answers 429 Too "
                                            "Many Requests', flush=True)\ntime.sleep(60)\n")
    sleeps: list = []
    assert worker(root, upstream, hangs, tmp_path, sleeps=sleeps).run() == EXIT_SETTLED
    assert "ran out of time" in upstream_file(upstream, f"tasks/failures/{task}_attempt_1.md")
    assert sleeps == []  # no backoff: it was never taken for a rate limit


def test_a_retry_after_is_kept_within_bounds_whatever_it_asks(tmp_path):
    root, upstream = team_project(tmp_path)
    add(root, upstream, title="Fix mean", tests="test_calc.py::test_mean")
    greedy = agent_script(tmp_path, "greedy", '''
        import sys
        print("Error: 429 Too Many Requests, retry after 99999999 seconds", file=sys.stderr)
        sys.exit(1)
    ''')
    sleeps: list = []
    assert worker(root, upstream, greedy, tmp_path, sleeps=sleeps, max_tasks=1).run() == EXIT_SETTLED
    assert sleeps == [600.0]


def test_an_agents_state_folder_is_kept_with_its_run_unless_too_large_and_only_the_newest(tmp_path):
    import os

    from clude.team.work.attempt import KEPT_STATES, keep_agent_state

    runs = tmp_path / "runs"
    runs.mkdir()
    huge = tmp_path / "work" / ".clude"
    huge.mkdir(parents=True)
    with open(huge / "sparse", "wb") as f:  # 10 TiB apparent, nothing on disk
        f.truncate(10 * 2**40)
    keep_agent_state(tmp_path / "work", runs / "T_attempt_1.clude")
    assert not (runs / "T_attempt_1.clude").exists()
    for n in range(KEPT_STATES + 3):
        state = tmp_path / f"w{n}" / ".clude"
        state.mkdir(parents=True)
        (state / "messages.json").write_text("[]")
        os.symlink("/", state / "root")  # moved as a link, never followed
        keep_agent_state(state.parent, runs / f"T_attempt_{n + 2}.clude")
        os.utime(runs / f"T_attempt_{n + 2}.clude", (n, n))
    kept = sorted(runs.glob("*.clude"))
    assert len(kept) == KEPT_STATES and not (runs / "T_attempt_2.clude").exists()
    assert (runs / f"T_attempt_{KEPT_STATES + 4}.clude" / "root").is_symlink()


def test_tasks_whose_tests_fail_alike_by_assertion_do_not_stop_the_worker(tmp_path):
    """Three tasks in a row whose acceptance test fails the same way: the tests ran and judged each
    change, so the environment works; the worker goes on (only failures where the tests could not run,
    or nothing was there to run them on, make it the suspect)."""
    root, upstream = team_project(tmp_path)
    for n in range(3):
        add(root, upstream, title=f"Try {n}", tests="test_calc.py::test_mean", max_attempts=1)
    useless = agent_script(tmp_path, "useless", "import pathlib\npathlib.Path('NOTES.md').write_text('hm')\n")
    assert worker(root, upstream, useless, tmp_path).run() == EXIT_SETTLED
    assert all("status: failed" in upstream_file(upstream, f"tasks/TASK-00{n}.md") for n in (1, 2, 3))


def test_the_next_task_is_claimed_and_its_agent_started_before_the_last_one_is_verified(tmp_path):
    """Claiming ahead: with task 1's result taken, task 2 is claimed and its agent started, then task 1
    is verified and queued while task 2's agent works; both land, each from its own tree."""
    root, upstream = team_project(tmp_path)
    first = add(root, upstream, title="Fix mean", tests="test_calc.py::test_mean", priority=1)
    second = add(root, upstream, title="A note", tests="test_calc.py::test_add")
    agent = agent_script(tmp_path, "two", FIX_MEAN + '''
if sys.argv[1] == "TASK-002":
    pathlib.Path("NOTES.md").write_text("notes")
''')
    assert worker(root, upstream, agent, tmp_path).run() == EXIT_SETTLED
    log = upstream_log(upstream)
    assert log.index(f"claim {second} (agent a1, attempt 1)") < log.index(f"queue {first} (agent a1, attempt 1)")
    log_file = next((tmp_path / "state").glob("**/*.jsonl"))
    events = [json.loads(line) for line in log_file.read_text().splitlines()]
    claimed = [e for e in events if e["kind"] == "claimed" and e["task"] == second]
    assert claimed and claimed[0].get("ahead_of") == first
    assert [s for s in landed(upstream) if s.startswith("done ")] == [
        f"done {first}: Fix mean (agent a1)", f"done {second}: A note (agent a1)"]
    assert upstream_file(upstream, "NOTES.md") == "notes" and upstream_file(upstream, "calc.py") == CALC_FIXED


def test_the_push_that_queues_a_change_reserves_the_task_after_the_one_claimed_ahead(tmp_path):
    """Task 2 is claimed ahead; the push that queues task 1 also claims task 3, and task 3's agent then
    starts when task 2's result is taken, with no claim push of its own: a task costs one push."""
    root, upstream = team_project(tmp_path)
    first = add(root, upstream, title="Fix mean", tests="test_calc.py::test_mean", priority=2)
    second = add(root, upstream, title="A note", tests="test_calc.py::test_add", priority=1)
    third = add(root, upstream, title="Another note", tests="test_calc.py::test_add")
    agent = agent_script(tmp_path, "three", FIX_MEAN + '''
if sys.argv[1] != "TASK-001":
    pathlib.Path(sys.argv[1] + ".md").write_text("notes")
''')
    assert worker(root, upstream, agent, tmp_path).run() == EXIT_SETTLED
    log = upstream_log(upstream)
    assert f"queue {first} (agent a1, attempt 1); claim {third} (attempt 1)" in log
    assert not [subject for subject in log if subject.startswith(f"claim {third}")]
    assert [s for s in landed(upstream) if s.startswith("done ")] == [
        f"done {first}: Fix mean (agent a1)", f"done {second}: A note (agent a1)",
        f"done {third}: Another note (agent a1)"]
    assert upstream_file(upstream, f"{third}.md") == "notes"


def test_a_worker_stopped_with_a_task_claimed_ahead_kills_its_agent_and_gives_back_what_it_holds(tmp_path):
    """The worker is interrupted while task 2's agent, claimed ahead, runs and task 3 is reserved: that
    agent does not outlive the worker, and both tasks are open again, no lock left."""
    root, upstream = team_project(tmp_path)
    add(root, upstream, title="Fix mean", tests="test_calc.py::test_mean", priority=2)
    second = add(root, upstream, title="Slow", tests="test_calc.py::test_add", priority=1)
    third = add(root, upstream, title="Reserved", tests="test_calc.py::test_add")
    agent = agent_script(tmp_path, "slow", FIX_MEAN + '''
import time
if sys.argv[1] == "TASK-002":
    pathlib.Path("started.txt").write_text("yes")
    time.sleep(120)
''')

    def running() -> list[int]:
        """The processes of task 2's agent (this test's script, with the task's id)."""
        found = []
        for entry in Path("/proc").iterdir():
            try:
                words = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(w.endswith(b"slow.py") and str(tmp_path).encode() in w for w in words) and b"TASK-002" in words:
                found.append(int(entry.name))
        return found

    interrupted_when(lambda: any((tmp_path / "agents" / "a1").glob("work*/started.txt"))
                     and any(f"; claim {third} " in subject for subject in upstream_log(upstream)),  # reserved
                     worker(root, upstream, agent, tmp_path).run)
    assert any((tmp_path / "agents" / "a1").glob("work*/started.txt")), "task 2's agent never started"
    assert running() == [], "the agent claimed ahead outlived its worker"
    left = [name for name in upstream_files(upstream, "current_tasks") if name != ".gitkeep"]
    assert all(json.loads(upstream_file(upstream, f"current_tasks/{name}")).get("queued") for name in left), left
    assert set(left) <= {"TASK-001.lock"}  # task 1's change, queued, waits for a lander: not the worker's
    assert "status: open" in upstream_file(upstream, f"tasks/{second}.md")
    assert "status: open" in upstream_file(upstream, f"tasks/{third}.md")


def test_a_turn_taken_without_waiting_is_refused_while_another_process_holds_it(tmp_path):
    """Claiming ahead takes the machine's push turn only when it is free: held by another process (a
    flock), the caller is told so at once and holds nothing; free, it gets it."""
    import subprocess
    import sys
    from clude.team.protocol.turns import PUSH_TURN_FILE, push_turn
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time\n"
                               f"f = open({str(tmp_path / PUSH_TURN_FILE)!r}, 'a')\n"
                               "fcntl.flock(f, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(60)\n"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with push_turn(tmp_path, wait=False) as turn:
            assert turn is False
    finally:
        holder.kill()
        holder.wait()
    with push_turn(tmp_path, wait=False) as turn:
        assert turn is True
        with push_turn(tmp_path, wait=False) as again:  # a second open file: flock refuses it too
            assert again is False


def test_a_task_reserved_in_a_queueing_push_is_given_back_when_stopped_before_the_worker_kept_it(tmp_path):
    """Stopped right after the push that queued a change and reserved the next task, before the worker
    noted the reservation (a SIGINT at that moment): the reserved task is given back on the way out,
    and the queued change stays queued for the lander."""
    from datetime import datetime, timezone

    from clude.team.board.locks import Queued

    root, upstream = team_project(tmp_path)
    first = add(root, upstream, title="Fix mean", tests="test_calc.py::test_mean", priority=2)
    second = add(root, upstream, title="Next", tests="test_calc.py::test_add")
    agent = agent_script(tmp_path, "never", "raise SystemExit('never run')\n")
    w = worker(root, upstream, agent, tmp_path)
    w._open()
    try:
        task, lock = w.repo.claim()
        assert task.task.id == first
        w.land.fetch()
        w.land.reset_to_upstream()
        (w.land.path / "notes.txt").write_text("a change\n")
        assert w.land.commit_all(f"{first}: a change")
        commit = w.land.head()
        queued = Queued(at=datetime.now(timezone.utc), commit=commit, text="works")
        result, following = w.repo.queue(lock, commit, queued, claim_next=True)
        assert result.status == "queued" and following is not None and following[0].task.id == second
        assert w.prepared is None  # the worker never heard of it
        w._release_on_exit()
    finally:
        if w.lander is not None:
            w.lander.stop(timeout=30)
    assert upstream_files(upstream, "current_tasks") == [".gitkeep", f"{first}.lock"]
    assert json.loads(upstream_file(upstream, f"current_tasks/{first}.lock")).get("queued")
    assert "status: open" in upstream_file(upstream, f"tasks/{second}.md")


def test_a_claim_whose_push_landed_as_the_worker_was_stopped_is_given_back(tmp_path):
    """Stopped after the push of a claim landed but before claim() handed the lock over (a SIGINT at
    that moment): the lock is given back on the way out, not left to expire."""
    from clude.team.protocol.sync import update_upstream

    root, upstream = team_project(tmp_path)
    task = add(root, upstream, title="Fix mean", tests="test_calc.py::test_mean")
    agent = agent_script(tmp_path, "never", "raise SystemExit('never run')\n")
    w = worker(root, upstream, agent, tmp_path)
    w._open()
    try:
        taken: list = []
        update_upstream(w.control, lambda checkout: taken.append(w.repo.take(checkout)) or f"claim {task}")
        assert upstream_files(upstream, "current_tasks") == [".gitkeep", f"{task}.lock"]
        assert task in w.repo.held and w.holding is None  # the worker never heard of it
        w._release_on_exit()
    finally:
        if w.lander is not None:
            w.lander.stop(timeout=30)
    assert upstream_files(upstream, "current_tasks") == [".gitkeep"]


def test_a_release_that_fails_on_the_way_out_is_said_with_the_task_left_to_its_lease(tmp_path):
    """The worker is stopped while its agent works, with its upstream gone meanwhile: it cannot give
    the task back, and says so (the task waits for its lease), instead of leaving it without a word."""
    root, upstream = team_project(tmp_path)
    task = add(root, upstream, title="Slow", tests="test_calc.py::test_mean")
    agent = agent_script(tmp_path, "slow", '''
import pathlib, time
pathlib.Path("started.txt").write_text("yes")
time.sleep(120)
''')
    gone = Path(upstream + ".gone")

    interrupted_when(lambda: any((tmp_path / "agents" / "a1").glob("work*/started.txt")),
                     worker(root, upstream, agent, tmp_path).run, before=lambda: Path(upstream).rename(gone))
    gone.rename(upstream)
    events = [json.loads(line) for line in (tmp_path / "state" / "events.jsonl").read_text().splitlines()]
    failed = [e for e in events if e["kind"] == "release_failed"]
    assert [e["task"] for e in failed] == [task] and "lease" in failed[0]["reason"]
    assert f"{task}.lock" in upstream_files(upstream, "current_tasks")  # left to its lease
