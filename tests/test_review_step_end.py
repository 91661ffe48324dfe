"""Review proofs (2026-12-06): replies cut at max_tokens and step-end markers, as a hostile or
broken model would use them. Each test fails on the code as reviewed."""

from __future__ import annotations

from agent_helpers import AgentScript, call, plan, sample_project
from clude.agent import start_run
from clude.agent.guard import signal_in
from clude.config.loader import load_settings
from clude.config.settings import AgentConfig, ModelConfig
from clude.llm.base import Reply
from clude.llm.providers import make_model
from clude.llm.scripted import ScriptedModel
from clude.llm.stubs import OpenAIStub


def settings_for(root, **agent):
    settings, _ = load_settings(root)
    settings.agent = AgentConfig(**agent)
    return settings


CUT = {"text": "Here is the whole file:\n```python\ndef mean(values):\n    return sum(values) /", "stop": "max_tokens"}
IDLE = {"text": "Let me think about how best to write this."}


def test_cut_replies_alternating_with_idle_ones_are_stopped_like_three_cut_ones(tmp_path):
    """MEDIUM (a regression). record_cut resets the idle streak and record_idle resets the cut streak,
    so cut, idle, cut, idle, ... trips neither: the step runs to max_iterations, every cut reply paid
    three times over (max_tokens, then 2 x max_tokens asked again). Before this change a cut reply was a
    repeated '(unreadable tool calls)' action and the same pattern stopped at the third cut.
    Here: 20 turns allowed; the step must stop within 6 turns (3 cut replies), not run on."""
    root = sample_project(tmp_path / "p")
    script = AgentScript([plan("p", ("a", "A"))], {"a": [CUT, CUT, IDLE] * 10})
    with OpenAIStub(script) as stub:
        model = make_model(ModelConfig(name="stub-model", base_url=stub.base_url, max_retries=0), env={})
        result = start_run(root, "fix mean", settings_for(root, max_iterations=20, max_step_retries=0,
                                                          max_replans=0), model)
        budgets = [r["body"]["max_tokens"] for r in stub.requests if r["method"] == "POST"][1:]
    assert result.status == "failed"
    turns = sum(1 for m in script.requests["a"][-1] if m["role"] == "assistant") + 1
    assert turns <= 6, (f"the step ran {turns} turns, {budgets.count(8192)} requests at twice the budget: "
                        f"{result.steps[0].reason}")


def test_a_marker_that_ends_a_reply_only_because_it_was_cut_does_not_end_the_step(tmp_path):
    """MEDIUM. ended_already() is consulted before the max_tokens branch of _act, and a marker 'ending
    the reply' counts: a reply cut right after 'STEP_DONE' mid-sentence ends the step as done although
    the same words, whole, do not. Nothing in a cut reply was meant (the model is even told so)."""
    whole = "When the tests pass, STEP_DONE will be my final line; first I edit calc.py."
    cut_text = "When the tests pass, STEP_DONE"
    assert signal_in(whole) is None  # the model did not mean it
    root = sample_project(tmp_path / "p")
    script = AgentScript([plan("p", ("a", "A"))],
                         {"a": [Reply(text=cut_text, stop="max_tokens",
                                      problems=["the reply was cut off at the max_tokens limit (5 tokens)"]),
                                call("read_file", path="calc.py"), {"text": "STEP_DONE: read it"}]})
    result = start_run(root, "fix mean", settings_for(root, max_step_retries=0, max_replans=0),
                       ScriptedModel(script))
    assert script.calls["a"] >= 2, f"the cut reply ended the step: {result.steps[0].status} {result.steps[0].reason!r}"


def test_a_quoted_marker_is_a_mention_as_the_docstring_says():
    """LOW. signal_in's docstring: a marker never counts in a "> " quotation; one that ends the reply
    counted all the same (_ends_reply ignored the quote). (A marker in quotes, an HTML comment or a
    question that ends the reply still counts: left as it is.)"""
    for text in ('The prompt told me:\n> when complete, STEP_DONE', '> STEP_DONE'):
        assert signal_in(text) is None, text


def test_a_numbered_plan_naming_the_marker_as_its_last_item_is_not_a_step_end(tmp_path):
    """LOW (not new). A model laying out its plan in the same reply as its first tool call ended the
    step after that call: the list item is 'on its own line'. A reply that acts is not a step end by
    its text (it says so again once it has seen the results)."""
    text = "My plan:\n1. read calc.py\n2. fix the divisor\n3. run the tests\n4. STEP_DONE\n\nStarting with 1."
    assert signal_in(text) == "done"  # as text alone it would be one
    root = sample_project(tmp_path / "p")
    first = {"text": text, "tool_calls": [{"name": "read_file", "arguments": {"path": "calc.py"}}]}
    script = AgentScript([plan("p", ("a", "A"))], {"a": [first, {"text": "STEP_DONE: read it"}]})
    result = start_run(root, "fix mean", settings_for(root, max_step_retries=0, max_replans=0),
                       ScriptedModel(script))
    assert script.calls["a"] == 2 and result.steps[0].summary == "read it"


def test_a_marker_written_as_the_prompt_says_after_a_sentence_still_ends_the_step():
    """MEDIUM (a regression). The system prompt says 'write STEP_DONE followed by that summary' (and
    'REPLAN and the reason'); after a sentence on the same line that no longer counts (the old rule took
    a marker starting a sentence). The model is nudged; written so three times, the step fails as
    'replied 3 times without calling a tool or signalling done'."""
    for text, meant in (("The tests pass now. STEP_DONE fixed the divisor in mean()", "done"),
                        ("All tests pass. STEP_DONE\nI fixed the divisor in mean().", "done"),
                        ("All green. STEP_DONE - fixed mean", "done"),
                        ("I cannot do this step as planned. REPLAN the plan misses the migration step", "replan")):
        assert signal_in(text) == meant, text
