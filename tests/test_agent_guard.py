"""Step-end markers (which spellings count, which prose does not, fenced code, summaries) and the repetition guard."""

from __future__ import annotations

import pytest

from clude.agent.guard import RepetitionGuard, marker_summary, normalize_error, signal_in

FENCE = "```"


@pytest.mark.parametrize("text", [
    "STEP_DONE",
    "【STEP_DONE】",
    "[STEP_DONE]",
    "<STEP_DONE>",
    "**STEP_DONE**",
    "`step done:` added the flag",
    "Step done.",
    "step done: added the flag",
    "step_done",
    "STEP-DONE",
    "stepdone yes",
    "StepDone",
    "STEP DONE",
    "Added the flag and its tests.\n\nSTEP_DONE",
    "All tests pass. Step done!",
    "No errors remain, STEP_DONE",
    "- Step done",
    "Summary: fixed it (STEP_DONE)",
])
def test_done_markers_accepted(text):
    assert signal_in(text) == "done"


@pytest.mark.parametrize("text", [
    "REPLAN",
    "【REPLAN】",
    "[replan]",
    "replan: the API the plan relies on does not exist",
    "Replan needed",
    "Replan needed: the API does not exist",
    "Replan.",
    "RE_PLAN",
    "`replan`",
])
def test_replan_markers_accepted(text):
    assert signal_in(text) == "replan"


@pytest.mark.parametrize("text", [
    "",
    "I read the file; the next step: done with it soon.",
    "the next step done with care",
    "Is the step done? Not yet, running the tests.",
    "I will not replan",
    "No need to REPLAN: the plan holds.",
    "We may need to replan later.",
    "Replanning is not needed.",
    "if is_step_done(x): return",
    "STEP_DONE_COUNT = 3",
    "I will print STEP_DONE when finished.",
    "Next I run the tests, then I will call step_done.",
    "I'll call `replan` if the API is missing.",
    "I can't say STEP_DONE yet.",
    "Once the tests pass I will write the step done marker.",
    "Let me continue with the next step.",
    "Done with the parser, now the tests.",
    "The module is gone, so we must replan: nothing to patch.",
])
def test_ordinary_prose_is_no_marker(text):
    assert signal_in(text) is None


@pytest.mark.parametrize("text", [
    "Remember: STEP_DONE ends the step, so it comes after the tests.",
    'The instructions say "STEP_DONE" ends a step; first I run the tests.',
    "The STEP_DONE marker is for later. Running the tests now.",
    "> When the step is complete, write STEP_DONE\nI am not there yet: two tests fail.",
    "> REPLAN\nThat is what the plan says to write when it is wrong; it is not.",
    "If the API is missing, REPLAN would be right; it is there, so I go on.",
])
def test_a_marker_quoted_or_explained_mid_reply_does_not_count(text):
    """Small models repeat the instructions: a marker counts only on its own line or ending the reply."""
    assert signal_in(text) is None


@pytest.mark.parametrize("text", [
    f"Here is how the marker looks:\n{FENCE}\nSTEP_DONE\n{FENCE}\nStill working on it.",
    f"{FENCE}python\nprint('REPLAN')\n{FENCE}",
    "~~~\nSTEP_DONE\n~~~",
    f"{FENCE}text\nunclosed fence runs to the end\nSTEP_DONE",
])
def test_markers_in_fenced_code_do_not_count(text):
    assert signal_in(text) is None


def test_a_marker_after_a_fenced_block_counts():
    assert signal_in(f"{FENCE}\nREPLAN\n{FENCE}\nAll good.\nSTEP_DONE") == "done"


@pytest.mark.parametrize("text, expected", [
    ("REPLAN was my first thought, but it worked. STEP_DONE", "done"),
    ("STEP_DONE? No: the API is missing. REPLAN", "replan"),
    ("Step done.\nActually, REPLAN: the test cannot pass.", "replan"),
    ("【REPLAN】\n【STEP_DONE】", "done"),
])
def test_the_last_marker_wins(text, expected):
    assert signal_in(text) == expected


@pytest.mark.parametrize("text, summary", [
    ("Added the --json flag and two tests.\n\nSTEP_DONE", "Added the --json flag and two tests."),
    ("I have read it. STEP_DONE: read calc.py", "I have read it. read calc.py"),
    ("Read a.py.\nSTEP_DONE\n\nChanged a.py and b.py.", "Read a.py.\n\nChanged a.py and b.py."),
    ("【STEP_DONE】 Implemented the parser.", "Implemented the parser."),
    ("Step done: added the parser", "added the parser"),
    ("`step done:` added the parser", "added the parser"),
    ("Replan needed: the API does not exist", "the API does not exist"),
    ("REPLAN: the module was removed upstream", "the module was removed upstream"),
    ("Fixed it, STEP_DONE", "Fixed it"),
    ("- did A\n- did B\n- Step done", "- did A\n- did B"),
    ("STEP_DONE", ""),
    (f"Wrote:\n{FENCE}\nSTEP_DONE\n{FENCE}\n**STEP_DONE**", f"Wrote:\n{FENCE}\nSTEP_DONE\n{FENCE}"),
])
def test_marker_summary(text, summary):
    assert marker_summary(text) == summary


def test_summary_without_a_marker_is_the_stripped_text():
    assert marker_summary("  just text \n") == "just text"


# ---------------------------------------------------------------- normalize_error


def test_normalize_error_hides_what_changes_between_runs():
    a = ('Traceback (most recent call last):\n  File "/tmp/tmpa1b2c3/app.py", line 12, in main\n'
         "ValueError: bad value at 0x7f3a2c1d9e80 (2024-05-01T10:11:12Z) id=3fa85f64-5717-4562-b3fc-2c963f66afa6")
    b = ('Traceback (most recent call last):\n  File "/tmp/tmpzz99xy/app.py", line 14, in main\n'
         "ValueError: bad value at 0x7f00aa11bb22 (2025-01-02T03:04:05Z) id=9b2d2e5e-0c1f-4c55-9d2e-aa0011223344")
    assert normalize_error(a) == normalize_error(b)
    assert normalize_error(a) != normalize_error(b.replace("ValueError", "KeyError"))
    mac = "/private/var/folders/xy/abc123/T/pytest-7/x.py:3: AssertionError"
    assert normalize_error(mac) == normalize_error(mac.replace("abc123", "qq").replace("-7", "-8"))
    assert normalize_error("  a\n\n  b  ") == "a b"


# ---------------------------------------------------------------- RepetitionGuard


def test_the_same_action_and_result_stops_at_the_limit():
    guard = RepetitionGuard()
    assert guard.record("read_file a.py", "contents", False) is None
    assert guard.record("read_file a.py", "contents", False) is None
    assert guard.record("read_file a.py", "contents", False) == (
        "repeated the same action 3 times in a row with the same result: read_file a.py")


def test_durations_do_not_make_a_result_different():
    guard = RepetitionGuard()
    for seconds in ("0.51", "0.48"):
        assert guard.record("run_tests", f"3 passed in {seconds}s", False) is None
    assert guard.record("run_tests", "3 passed in 0.50s", False) is not None


def test_a_long_action_key_is_cut():
    reason = None
    guard = RepetitionGuard()
    for _ in range(3):
        reason = guard.record("x" * 500, "r", False)
    assert reason is not None
    assert len(reason.split(": ", 1)[1]) == 120


def test_the_same_action_with_different_results_never_stops():
    guard = RepetitionGuard()
    assert all(guard.record("run_tests", f"{n} passed", False) is None for n in range(20))


def test_a_different_action_resets_the_streak():
    guard = RepetitionGuard()
    for key in ["a", "a", "b", "a", "a", "c", "a", "a"]:
        assert guard.record(key, "same", False) is None


def test_alternating_two_actions_stops_only_after_twice_the_limit():
    """A, B, A, B is legitimate (edit, test, edit, test) while results change; with unchanged results
    it is a loop, stopped after 2 * same_action_limit actions."""
    guard = RepetitionGuard()
    reasons = [guard.record(key, "same " + key, False) for key in "ABABA"]
    assert reasons == [None] * 5
    assert guard.record("B", "same B", False) == (
        "alternated between 2 actions 6 times in a row with the same results: A / B")


def test_alternating_with_changing_results_goes_on():
    guard = RepetitionGuard()
    assert all(guard.record(key, f"result {n}", False) is None for n, key in enumerate("ABABABABAB"))


def test_the_same_error_from_different_actions_stops():
    guard = RepetitionGuard()
    errors = ['File "/tmp/tmpab12/x.py", line 3\nSyntaxError: invalid syntax',
              'File "/tmp/tmpcd34/x.py", line 7\nSyntaxError: invalid syntax',
              'File "/tmp/tmpef56/x.py", line 9\nSyntaxError: invalid syntax']
    reasons = [guard.record(f"edit {n}", err, True) for n, err in enumerate(errors)]
    assert reasons[:2] == [None, None]
    assert reasons[2] == 'the same error 3 times in a row: File "/tmp/tmpab12/x.py", line 3'


def test_a_traceback_is_named_by_its_last_line():
    guard = RepetitionGuard(same_error_limit=2)
    tb = "Traceback (most recent call last):\n  File \"a.py\", line {n}, in f\nKeyError: 'x'"
    assert guard.record("a", tb.format(n=1), True) is None
    assert guard.record("b", tb.format(n=2), True) == "the same error 2 times in a row: KeyError: 'x'"


def test_a_success_resets_the_error_streak():
    guard = RepetitionGuard()
    assert guard.record("a", "boom", True) is None
    assert guard.record("b", "boom", True) is None
    assert guard.record("c", "ok", False) is None
    assert guard.record("d", "boom", True) is None
    assert guard.record("e", "boom", True) is None
    assert guard.record("f", "boom", True) is not None


def test_a_different_error_resets_the_error_streak():
    guard = RepetitionGuard()
    for n, err in enumerate(["boom", "boom", "bang", "boom", "boom"]):
        assert guard.record(f"act {n}", err, True) is None


def test_idle_replies_stop_and_an_action_resets_them():
    guard = RepetitionGuard()
    assert guard.record_idle() is None
    assert guard.record_idle() is None
    assert guard.record("a", "r", False) is None
    assert guard.record_idle() is None
    assert guard.record_idle() is None
    assert guard.record_idle() == "replied 3 times without calling a tool or signalling done"


def test_limits_are_configurable_and_zero_turns_a_check_off():
    guard = RepetitionGuard(same_action_limit=2, same_error_limit=0, idle_limit=0)
    assert guard.record("a", "r", True) is None
    assert guard.record("a", "r", True) is not None
    assert all(guard.record(f"k{n}", "same error", True) is None for n in range(10))
    assert all(guard.record_idle() is None for _ in range(10))
    with pytest.raises(ValueError):
        RepetitionGuard(idle_limit=-1)


def test_reset_forgets_the_streaks():
    guard = RepetitionGuard()
    guard.record("a", "r", False)
    guard.record("a", "r", False)
    guard.reset()
    assert guard.record("a", "r", False) is None
