"""The state machine's table, the recovery rule, the budget rule and the session store."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from clude.agent.budget import over_budget
from clude.agent.recovery import decide_recovery
from clude.agent.session import Recovery, SessionBusy, SessionNotFound, SessionState, SessionStore, StepRecord
from clude.agent.states import TERMINAL, TRANSITIONS, IllegalTransition, State, StateMachine
from clude.config.settings import AgentConfig
from clude.llm.base import Usage


def test_the_happy_path_and_every_transition_is_logged_with_its_reason():
    heard = []
    machine = StateMachine(on_change=heard.append)
    for target in (State.PLANNING, State.EXECUTING, State.VERIFYING, State.RECOVERING,
                   State.PLANNING, State.EXECUTING, State.VERIFYING, State.DONE):
        machine.go(target, f"to {target.value}")
    assert machine.finished
    assert [t.reason for t in heard] == [t.reason for t in machine.history]
    assert heard[0].source is State.INTAKE and heard[-1].target is State.DONE


@pytest.mark.parametrize("source", list(State))
@pytest.mark.parametrize("target", list(State))
def test_an_illegal_transition_raises_and_changes_nothing(source, target):
    machine = StateMachine(state=source)
    if target in TRANSITIONS[source]:
        machine.go(target, "allowed")
        assert machine.state is target
    else:
        with pytest.raises(IllegalTransition, match=f"{source.value} -> {target.value}"):
            machine.go(target, "not allowed")
        assert machine.state is source and machine.history == []


def test_terminal_states_and_reasons():
    assert TERMINAL == {State.DONE, State.BLOCKED}
    with pytest.raises(ValueError, match="reason"):
        StateMachine().go(State.PLANNING, "  ")
    # every state can end in BLOCKED except the terminal ones; DONE needs the work to be done
    assert all(State.BLOCKED in TRANSITIONS[s] for s in State if s not in TERMINAL)
    assert State.DONE not in TRANSITIONS[State.PLANNING] | TRANSITIONS[State.RECOVERING]


def _state(recovery: Recovery, steps: dict, **fields) -> SessionState:
    return SessionState(id="s", goal="g", root="/", recovery=recovery,
                        steps={k: StepRecord(**v) for k, v in steps.items()}, **fields)


def test_recovery_retries_a_failed_step_then_replans_then_lets_it_fail():
    config = AgentConfig(max_step_retries=1, max_replans=1)
    failed = Recovery(kind="step_failed", step="a", reason="cap")
    first = decide_recovery(_state(failed, {"a": {"status": "failed", "attempts": 1}}), config)
    assert first.action == "retry" and first.steps == ["a"]
    second = decide_recovery(_state(failed, {"a": {"status": "failed", "attempts": 2}}), config)
    assert second.action == "replan"
    third = decide_recovery(_state(failed, {"a": {"status": "failed", "attempts": 2}}, replans=1), config)
    assert third.action == "continue" and third.fail == ["a"]


def test_recovery_after_verification_adds_fix_steps_then_replans_then_gives_up():
    config = AgentConfig(max_step_retries=2, max_replans=1)
    report = Recovery(kind="verify_failed", reason="FAILED · pytest\nERROR t.py:3 t — boom")
    assert decide_recovery(_state(report, {}), config).action == "fix"
    assert decide_recovery(_state(report, {}, verify_fixes=2), config).action == "replan"
    final = decide_recovery(_state(report, {}, verify_fixes=2, replans=1), config)
    assert final.action == "give_up" and "FAILED · pytest" in final.reason


def test_a_replan_request_without_replans_left_becomes_a_retry_then_a_failure():
    config = AgentConfig(max_step_retries=1, max_replans=0)
    asked = Recovery(kind="replan", step="a", reason="plan is wrong")
    assert decide_recovery(_state(asked, {"a": {"attempts": 1}}), config).action == "retry"
    assert decide_recovery(_state(asked, {"a": {"attempts": 2}}), config).action == "continue"


def test_budgets():
    config = AgentConfig(max_tokens=100, max_cost_usd=0.5, max_wall_s=60)
    assert over_budget(config, Usage(input_tokens=50, output_tokens=49), 1) is None
    assert "token budget" in over_budget(config, Usage(input_tokens=50, output_tokens=50), 1)
    assert "cost budget" in over_budget(config, Usage(cost_usd=0.5), 1)
    assert "time budget" in over_budget(config, Usage(), 61)
    assert over_budget(AgentConfig(), Usage(input_tokens=10**9), 10**6) is None


def test_the_session_store_saves_atomically_lists_and_refuses_a_second_runner(tmp_path):
    store = SessionStore(tmp_path)
    session = store.create("fix it", {"parallel": 1})
    session.state.steps["a"] = StepRecord(status="done", summary="did a")
    session.save()
    session.save_messages("a", [{"role": "user", "content": "hi"}])
    loaded = store.load(session.state.id)
    assert loaded.state.steps["a"].summary == "did a"
    assert loaded.load_messages("a") == [{"role": "user", "content": "hi"}]
    assert [p.name for p in session.path.iterdir() if p.name.startswith(".")] == []  # no temp files left
    session.acquire()
    try:
        # another process cannot take it while this one holds it
        probe = subprocess.run([sys.executable, "-c", (
            "import sys; from pathlib import Path; from clude.agent.session import SessionStore, SessionBusy\n"
            f"s = SessionStore(Path({str(tmp_path)!r})).load({session.state.id!r})\n"
            "try:\n    s.acquire()\nexcept SessionBusy as e:\n    print(e); sys.exit(3)\n")],
            capture_output=True, text=True)
        assert probe.returncode == 3 and "being run by another process" in probe.stdout
        with pytest.raises(SessionBusy):
            store.load(session.state.id).acquire()
    finally:
        session.release()
    store.load(session.state.id).acquire()  # free again
    with pytest.raises(SessionNotFound, match="no session 'nope'"):
        store.load("nope")
    (store.folder / "broken").mkdir()
    (store.folder / "broken" / "state.json").write_text("{not json")
    assert [s.id for s in store.list()] == [session.state.id]
    with pytest.raises(SessionNotFound, match="unreadable session state"):
        store.load("broken")
    assert json.loads((session.path / "state.json").read_text())["goal"] == "fix it"
    assert os.path.isfile(session.path / "lock")
