"""Whole runs of `clude run`'s agent with the scripted model in process: plans, steps, recovery, budgets."""

from __future__ import annotations

import json
import os

import pytest

from agent_helpers import CALC, CALC_FIXED, AgentScript, call, done, plan, sample_project
from clude.agent import SessionStore, resume_run, start_run
from clude.config.loader import load_settings
from clude.config.settings import AgentConfig, ModelConfig
from clude.llm.providers import make_model
from clude.llm.scripted import ScriptedModel
from clude.llm.stubs import OpenAIStub

FIX = call("edit_file", path="calc.py", search="(len(values) + 1)", replace="len(values)")


def settings_for(root, **agent):
    settings, _ = load_settings(root)
    settings.agent = AgentConfig(**agent)
    return settings


@pytest.fixture(params=["in-process", "http"])
def run(request):
    """Run a whole session with the script: in process (ScriptedModel), or over HTTP through the
    official openai SDK against the OpenAI stub server on loopback."""

    def go(root, script, goal="fix mean", events=None, **agent):
        listener = (lambda kind, details: events.append((kind, details))) if events is not None else None
        settings = settings_for(root, **agent)
        if request.param == "in-process":
            return start_run(root, goal, settings, ScriptedModel(script), listener=listener)
        with OpenAIStub(script) as stub:
            model = make_model(ModelConfig(name="stub-model", base_url=stub.base_url, max_retries=0), env={})
            return start_run(root, goal, settings, model, listener=listener)

    return go


def states(result_or_root) -> list[str]:
    state = json.loads((result_or_root / "state.json").read_text())
    return [t["to"] for t in state["transitions"]]


def test_a_plan_with_dependencies_runs_in_order_and_is_verified(tmp_path, run):
    root = sample_project(tmp_path / "p")
    script = AgentScript(
        [plan("Fix mean", ("read", "Read calc.py"), ("fix", "Fix mean", ["read"]),
              ("note", "Write a note", ["fix"]))],
        {"read": [call("read_file", path="calc.py"), {"text": "I have read it. STEP_DONE: read calc.py"}],
         "fix": [FIX, done("fixed the divisor in mean")],
         "note": [call("write_file", path="NOTES.md", content="mean fixed\n"), {"text": "【STEP_DONE】"}]})
    events: list = []
    result = run(root, script, events=events)
    assert result.status == "done", result.reason
    assert result.exit_code == 0
    started = [d["id"] for kind, d in events if kind == "step" and d["status"] == "started"]
    assert started == ["read", "fix", "note"]
    assert [s.status for s in result.steps] == ["done", "done", "done"]
    assert result.steps[1].summary == "fixed the divisor in mean"
    assert (root / "calc.py").read_text() == CALC_FIXED
    assert result.verdict["status"] == "passed" and result.verdict["counts"]["passed"] == 2
    assert states(root / ".clude/sessions" / result.session_id) == [
        "PLANNING", "EXECUTING", "VERIFYING", "DONE"]
    log = (root / ".clude/sessions" / result.session_id / "run.log").read_text()
    assert "EXECUTING -> VERIFYING: all 3 steps done" in log
    # the step after 'read' was told what 'read' did
    fix_prompt = script.requests["fix"][0][1]["content"]
    assert "- read: I have read it." in fix_prompt and "read calc.py" in fix_prompt


def test_an_invalid_plan_goes_back_with_the_exact_errors_and_is_fixed(tmp_path, run):
    root = sample_project(tmp_path / "p")
    script = AgentScript(
        [plan("dup", ("a", "one"), ("a", "two"), ("b", "three", ["zzz"])),
         plan("ok", ("fix", "Fix mean"))],
        {"fix": [FIX, done()]})
    result = run(root, script)
    assert result.status == "done"
    second = script.requests["plan"][1][-1]["content"]
    assert "'a'" in second and "unique" in second
    assert "zzz" in second
    state = SessionStore(root).load(result.session_id).state
    assert state.plan_attempts == 1


def test_a_plan_with_a_cycle_is_refused_and_the_run_blocked_with_the_cycle(tmp_path, run):
    root = sample_project(tmp_path / "p")
    cyclic = plan("loop", ("a", "A", ["b"]), ("b", "B", ["a"]))
    script = AgentScript([cyclic, cyclic, cyclic], {})
    result = run(root, script, max_plan_attempts=3)
    assert result.status == "blocked" and result.exit_code == 3
    assert "no valid plan after 3 attempts" in result.reason
    assert "cycle" in result.reason
    assert script.calls["plan"] == 3 and set(script.calls) == {"plan"}
    assert (root / "calc.py").read_text() == CALC


def test_a_step_that_never_signals_done_fails_at_its_cap_and_its_dependents_are_blocked(tmp_path, run):
    root = sample_project(tmp_path / "p")
    busy = [call("read_file", path="calc.py", start_line=n, end_line=n) for n in range(1, 7)]
    script = AgentScript([plan("p", ("a", "A"), ("b", "B", ["a"]), ("c", "C", ["b"]))], {"a": busy})
    result = run(root, script, max_iterations=3, max_step_retries=1, max_replans=0)
    assert result.status == "failed" and result.exit_code == 1
    status = {s.id: s for s in result.steps}
    assert status["a"].status == "failed" and status["a"].attempts == 2
    assert "iteration cap (3" in status["a"].reason
    assert status["b"].status == "blocked" and status["c"].status == "blocked"
    assert "deadlock" in result.reason and "'a'" in result.reason
    assert script.calls["a"] == 6 and "b" not in script.calls
    assert not any(s.status == "in_progress" for s in result.steps)
    kept = root / ".clude" / "sessions" / result.session_id / "messages"  # each attempt's conversation
    first, second = (json.loads((kept / name).read_text()) for name in ("a.attempt-1.json", "a.json"))
    assert "attempt 2 of this step" not in first[1]["content"] and "attempt 2 of this step" in second[1]["content"]
    assert sum(m["role"] == "assistant" for m in first) == sum(m["role"] == "assistant" for m in second) == 3


def test_a_step_repeating_the_same_action_is_stopped_and_says_so(tmp_path, run):
    root = sample_project(tmp_path / "p")
    same = call("grep", pattern="mean")
    script = AgentScript([plan("p", ("a", "A"))], {"a": [same] * 3})
    result = run(root, script, max_iterations=20, max_step_retries=0, max_replans=0)
    assert result.status == "failed"
    assert script.calls["a"] == 3
    assert "repeated the same action 3 times" in result.steps[0].reason


def test_a_replan_keeps_the_done_steps_and_runs_the_new_ones(tmp_path, run):
    root = sample_project(tmp_path / "p")
    script = AgentScript(
        [plan("first", ("look", "Look around"), ("wrong", "Edit the wrong file", ["look"])),
         plan("second", ("fix", "Fix mean in calc.py", ["look"]))],
        {"look": [done("looked")],
         "wrong": [call("replan", reason="the bug is in calc.py, not in utils.py")],
         "fix": [FIX, done("fixed")]})
    result = run(root, script)
    assert result.status == "done", result.reason
    assert result.replans == 1
    assert [(s.id, s.status) for s in result.steps] == [("look", "done"), ("fix", "done")]
    assert script.calls["look"] == 1
    replan_request = script.requests["plan"][1][-1]["content"]
    assert "the bug is in calc.py, not in utils.py" in replan_request
    assert "[done] look" in replan_request
    assert states(root / ".clude/sessions" / result.session_id) == [
        "PLANNING", "EXECUTING", "RECOVERING", "PLANNING", "EXECUTING", "VERIFYING", "DONE"]


def test_a_failed_verification_goes_to_the_model_with_the_report_and_is_recovered(tmp_path, run):
    root = sample_project(tmp_path / "p")
    script = AgentScript([plan("p", ("tidy", "Tidy up"))],
                         {"tidy": [done("tidied")], "fix-1": [FIX, done("fixed mean")]})
    result = run(root, script)
    assert result.status == "done", result.reason
    assert [s.id for s in result.steps] == ["tidy", "fix-1"]
    fix_prompt = script.requests["fix-1"][0][1]["content"]
    assert "test_calc.py:" in fix_prompt and "test_mean" in fix_prompt
    assert "1 passed, 1 failed" in fix_prompt
    assert states(root / ".clude/sessions" / result.session_id) == [
        "PLANNING", "EXECUTING", "VERIFYING", "RECOVERING", "EXECUTING", "VERIFYING", "DONE"]


def test_verification_that_keeps_failing_ends_failed_after_its_budget(tmp_path, run):
    root = sample_project(tmp_path / "p")
    script = AgentScript([plan("p", ("tidy", "Tidy up"))],
                         {"tidy": [done()], "fix-1": [done("tried")]})
    result = run(root, script, max_step_retries=1, max_replans=0)
    assert result.status == "failed"
    assert "the tests still fail after 1 fix steps and 0 replans" in result.reason
    assert result.verdict["status"] == "failed"


def test_a_token_budget_blocks_the_run(tmp_path, run):
    root = sample_project(tmp_path / "p")
    script = AgentScript([plan("p", ("a", "A"))],
                         {"a": [call("read_file", path="calc.py", start_line=n) for n in range(1, 9)]})
    result = run(root, script, max_tokens=1500)
    assert result.status == "blocked"
    assert "token budget used" in result.reason
    assert result.usage["input_tokens"] + result.usage["output_tokens"] >= 1500
    assert result.steps[0].status == "failed" and "token budget" in result.steps[0].reason


def test_malformed_tool_calls_are_sent_back_and_the_step_goes_on(tmp_path, run):
    root = sample_project(tmp_path / "p")
    script = AgentScript([plan("p", ("fix", "Fix"))],
                         {"fix": [call("edit_file", path="calc.py"),  # missing arguments
                                  call("no_such_tool"), FIX, done()]})
    result = run(root, script)
    assert result.status == "done"
    answers = [m for m in script.requests["fix"][2] if m["role"] == "tool"]
    assert "search" in answers[0]["content"]
    assert "no_such_tool" in script.requests["fix"][2][-1]["content"]


def test_an_unreachable_model_stops_with_an_error_and_the_run_resumes_later(tmp_path):
    root = sample_project(tmp_path / "p")
    down = ScriptedModel([{"status": 503, "message": "connection refused by 127.0.0.1:9"}])
    result = start_run(root, "fix mean", settings_for(root), down)
    assert result.status == "error" and result.exit_code == 4
    assert "connection refused" in result.reason and "clude resume" in result.reason
    assert result.state == "PLANNING"
    script = AgentScript([plan("p", ("fix", "Fix"))], {"fix": [FIX, done()]})
    again = resume_run(root, settings_for(root), model=ScriptedModel(script))
    assert again.session_id == result.session_id
    assert again.status == "done"


def test_a_test_command_that_cannot_start_stops_the_run_before_planning(tmp_path, run):
    root = sample_project(tmp_path / "p", **{"clude.toml": '[test]\ncommand = ".venv/bin/python -m pytest"\n'})
    script = AgentScript([], {})
    result = run(root, script)
    assert result.status == "error"
    assert ".venv/bin/python does not exist" in result.reason
    assert script.calls == {}


def test_sessions_are_listed_and_a_finished_one_cannot_be_resumed(tmp_path, run):
    from clude.agent.session import SessionFinished

    root = sample_project(tmp_path / "p")
    result = run(root, AgentScript([plan("p", ("fix", "Fix"))], {"fix": [FIX, done()]}))
    listed = SessionStore(root).list()
    assert [s.id for s in listed] == [result.session_id]
    assert listed[0].outcome == "done" and listed[0].goal == "fix mean"
    with pytest.raises(SessionFinished, match="has ended: done"):
        resume_run(root, settings_for(root), result.session_id, model=ScriptedModel([]))


def test_a_step_hitting_the_same_error_again_and_again_is_stopped(tmp_path, run):
    root = sample_project(tmp_path / "p")
    misses = [call("read_file", path=f"missing{n}.py") for n in range(1, 6)]
    script = AgentScript([plan("p", ("a", "A"))], {"a": misses})
    result = run(root, script, max_iterations=20, max_step_retries=0, max_replans=0)
    assert result.status == "failed"
    assert script.calls["a"] == 3
    assert "the same error 3 times in a row" in result.steps[0].reason


def test_a_local_model_without_native_tools_works_over_http_with_a_strict_template(tmp_path):
    """The OpenAI stub over HTTP, the text tool protocol (fenced tool_call blocks), and a model whose
    template has no tool role: tool results reach it as user turns, roles strictly alternating."""
    from clude.llm.base import ToolCall
    from clude.llm.text_tools import render_tool_call

    root = sample_project(tmp_path / "p")
    script = AgentScript([plan("p", ("fix", "Fix mean"))], {"fix": [FIX, done("fixed")]})
    seen = []

    def as_text(messages, tools):
        seen.append(messages)
        reply = script(messages, tools)
        calls = [ToolCall(id="x", name=c["name"], arguments=json.dumps(c["arguments"]))
                 for c in reply.get("tool_calls", [])]
        return {"text": "\n\n".join([reply.get("text", "")] + [render_tool_call(c) for c in calls]).strip()}

    with OpenAIStub(as_text) as stub:
        model = make_model(ModelConfig(name="mistral-7b-instruct", base_url=stub.base_url,
                                       tool_mode="text", quirks=[{"patterns": ["mistral*"], "tool_role": False}]),
                           env={})
        result = start_run(root, "fix mean", settings_for(root), model)
    assert result.status == "done", result.reason
    assert (root / "calc.py").read_text() == CALC_FIXED
    for messages in seen:
        roles = [m["role"] for m in messages if m["role"] != "system"]
        assert roles[0] == "user" and all(a != b for a, b in zip(roles, roles[1:])), roles
        assert "tool" not in roles
    assert "<tool_result" in seen[-1][-1]["content"]


def test_an_unexpected_error_is_an_error_outcome_with_the_traceback_in_the_log(tmp_path):
    root = sample_project(tmp_path / "p")

    def listener(kind, details):
        if kind == "plan":
            raise RuntimeError("the console went away")

    script = AgentScript([plan("p", ("fix", "Fix"))], {})
    result = start_run(root, "fix mean", settings_for(root), ScriptedModel(script), listener=listener)
    assert result.status == "error" and result.exit_code == 4
    assert "RuntimeError: the console went away" in result.reason
    log = (root / ".clude/sessions" / result.session_id / "run.log").read_text()
    assert "Traceback" in log and "the console went away" in log


def test_a_run_killed_after_the_step_said_done_resumes_without_asking_the_model_again(tmp_path):
    root = sample_project(tmp_path / "p")

    def killed_on_done(kind, details):
        if kind == "step" and details["status"] == "done":
            raise KeyboardInterrupt  # as a kill -9 would, after the turn was saved, before it was recorded

    script = AgentScript([plan("p", ("fix", "Fix"))], {"fix": [FIX, done("fixed mean")]})
    first = start_run(root, "fix mean", settings_for(root, max_iterations=2), ScriptedModel(script),
                      listener=killed_on_done, overrides={"max_iterations": 2})
    assert first.status == "interrupted" and first.exit_code == 130
    assert first.steps[0].status == "in_progress"
    state = SessionStore(root).load(first.session_id).state
    assert state.options["overrides"] == {"max_iterations": 2}
    again = resume_run(root, settings_for(root), model=ScriptedModel([]))  # no request may be made
    assert again.status == "done", again.reason
    assert again.steps[0].status == "done" and again.steps[0].summary == "fixed mean"


def test_verify_each_step_blames_the_step_that_broke_the_tests_and_retries_it(tmp_path, run):
    root = sample_project(tmp_path / "p", **{"calc.py": CALC_FIXED})
    breaks = call("edit_file", path="calc.py", search="return a + b", replace="return a - b")
    mends = call("edit_file", path="calc.py", search="return a - b", replace="return a + b")
    script = AgentScript([plan("p", ("a", "Touch add"), ("b", "Then this", ["a"]))],
                         {"a": [breaks, done("changed add"), mends, done("put add back")], "b": [done("b")]})
    result = run(root, script, verify="each_step")
    assert result.status == "done", result.reason
    assert [(s.id, s.attempts) for s in result.steps] == [("a", 2), ("b", 1)]
    retry = script.requests["a"][2][1]["content"]
    assert "test_calc.py" in retry and "test_add" in retry


def test_verify_each_step_without_tests_still_runs_every_step(tmp_path):
    root = tmp_path / "p"
    root.mkdir()
    script = AgentScript([plan("p", ("a", "A"), ("b", "B", ["a"]))], {"a": [done("a")], "b": [done("b")]})
    settings, _ = load_settings(root)
    settings.agent = AgentConfig(verify="each_step")
    result = start_run(root, "two steps", settings, ScriptedModel(script))
    assert result.status == "done"
    assert [s.status for s in result.steps] == ["done", "done"]
    assert "not verified" in result.reason


def test_the_tests_the_agent_runs_see_no_api_keys(tmp_path):
    root = sample_project(tmp_path / "p", **{"test_env.py": (
        "import os\n\ndef test_no_keys():\n    assert 'OPENAI_API_KEY' not in os.environ\n")})
    script = AgentScript([plan("p", ("fix", "Fix"))], {"fix": [FIX, call("run_tests"), done()]})
    result = start_run(root, "fix", settings_for(root), ScriptedModel(script),
                       env={**os.environ, "OPENAI_API_KEY": "sk-" + "abcdefghijklmnopqrstuvwxyz123456"})
    assert result.status == "done", result.reason
    assert "3 passed" in script.requests["fix"][2][-1]["content"]


def test_replies_cut_off_at_max_tokens_are_asked_again_then_named_as_cut(tmp_path):
    """Over HTTP: each cut reply is asked for again with twice the budget (the stub sees 4096, then 8192);
    cut again, the model is told it was cut off (no tool-format lecture), and three such replies in a row
    stop the step saying so, not as a repeated action."""
    root = sample_project(tmp_path / "p")
    cut = {"text": "Here is the whole file:\n```python\ndef mean(values):\n    return sum(values) /",
           "stop": "max_tokens"}
    script = AgentScript([plan("p", ("a", "A"))], {"a": [cut] * 6})
    with OpenAIStub(script) as stub:
        model = make_model(ModelConfig(name="stub-model", base_url=stub.base_url, max_retries=0), env={})
        result = start_run(root, "fix mean", settings_for(root, max_iterations=20, max_step_retries=0,
                                                          max_replans=0), model)
        budgets = [r["body"]["max_tokens"] for r in stub.requests if r["method"] == "POST"][1:]  # the planner first
    assert result.status == "failed" and script.calls["a"] == 6
    assert budgets == [4096, 8192] * 3
    reason = result.steps[0].reason
    assert "3 replies in a row were cut off" in reason and "max_tokens limit (4096 tokens, and again at 8192" in reason
    told = script.requests["a"][2][-1]["content"]  # [1] is the first turn asked again
    assert told.startswith("Your last reply was cut off before it ended") and "```" not in told


def test_problems_with_native_calls_are_answered_without_the_text_protocols_format(tmp_path):
    """A model with native tool calls is never told to write fenced blocks; a model on the text protocol is."""
    from clude.llm.base import Reply
    from clude.llm.text_tools import FENCE_TAG

    for protocol, shows_fences in (("native", False), ("text", True)):
        root = sample_project(tmp_path / protocol)
        broken = Reply(text="", problems=["tool call 1: the reply named no function"], protocol=protocol)
        script = AgentScript([plan("p", ("fix", "Fix"))], {"fix": [broken, FIX, done()]})
        result = start_run(root, "fix mean", settings_for(root), ScriptedModel(script))
        assert result.status == "done"
        answer = script.requests["fix"][1][-1]["content"]
        assert "named no function" in answer and (FENCE_TAG in answer) is shows_fences, answer
