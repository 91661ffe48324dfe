"""The pure status rule of DESIGN.md: every status, and exit codes that disagree with the counts."""

import signal

import pytest

from clude.harness.verdict import EXIT_CODES, Counts, Failure, RunFacts, Status, decide


def facts(**kw) -> RunFacts:
    base = dict(started=True, finished=True, exit_code=0)
    base.update(kw)
    return RunFacts(**base)


def test_390_passed_0_failed_is_passed():
    status, reason = decide(facts(outcomes={f"t{i}": "passed" for i in range(390)}))
    assert (status, reason) == (Status.PASSED, None)


def test_failures_with_a_failing_exit_code_are_failed():
    status, _ = decide(facts(exit_code=1, outcomes={"a": "passed", "b": "failed"}))
    assert status is Status.FAILED


def test_errors_alone_are_failed_not_passed():
    status, _ = decide(facts(exit_code=1, outcomes={"a": "passed", "b": "error"}))
    assert status is Status.FAILED


def test_exit_zero_with_failures_is_an_error_saying_they_disagree():
    status, reason = decide(facts(exit_code=0, outcomes={"a": "failed"}))
    assert status is Status.ERROR
    assert "disagree" in reason and "1 failed" in reason


def test_nonzero_exit_with_all_passed_is_an_error_saying_they_disagree():
    status, reason = decide(facts(exit_code=1, outcomes={"a": "passed"}))
    assert status is Status.ERROR
    assert "exit code 1 but 0 failed" in reason


def test_collection_errors_are_an_error_even_when_tests_passed():
    err = Failure(id="tests/test_x.py", file="tests/test_x.py", line=3, kind="error",
                  reason="ModuleNotFoundError: No module named 'nope'")
    status, reason = decide(facts(exit_code=2, outcomes={"a": "passed"}, collection_errors=[err]))
    assert status is Status.ERROR
    assert reason == "collection error in tests/test_x.py: ModuleNotFoundError: No module named 'nope'"


def test_no_tests():
    assert decide(facts(exit_code=5, no_tests_exit=True))[0] is Status.NO_TESTS
    assert decide(facts(exit_code=0))[0] is Status.NO_TESTS


def test_no_tests_exit_code_with_tests_that_ran_is_an_error():
    status, reason = decide(facts(exit_code=5, no_tests_exit=True, outcomes={"a": "passed"}))
    assert status is Status.ERROR and "disagree" in reason


def test_all_skipped_is_not_passed():
    status, reason = decide(facts(outcomes={"a": "skipped", "b": "skipped"}))
    assert status is Status.NO_TESTS
    assert "all 2 tests were skipped" in reason


def test_xfailed_and_xpassed_count_as_run():
    assert decide(facts(outcomes={"a": "xfailed", "b": "xpassed"}))[0] is Status.PASSED


def test_never_started_is_an_error_with_the_reason():
    status, reason = decide(RunFacts(exit_code=4, framework_reason="conftest.py failed to import"))
    assert status is Status.ERROR
    assert "before running any test: conftest.py failed to import" in reason


def test_started_but_never_finished_is_a_crash_naming_the_running_test():
    status, reason = decide(facts(finished=False, exit_code=3, running="tests/t.py::test_boom",
                                  outcomes={"a": "passed"}))
    assert status is Status.CRASHED
    assert "exited with code 3" in reason and "tests/t.py::test_boom" in reason


def test_exit_zero_before_finishing_is_still_a_crash():
    status, _ = decide(facts(finished=False, exit_code=0))
    assert status is Status.CRASHED


@pytest.mark.parametrize("sig,words", [(signal.SIGSEGV, "SIGSEGV (segmentation fault)"),
                                       (signal.SIGABRT, "SIGABRT (aborted)"),
                                       (signal.SIGKILL, "SIGKILL")])
def test_killed_by_a_signal_is_crashed_and_names_it(sig, words):
    status, reason = decide(facts(finished=False, exit_code=None, signal=int(sig), running="t::x"))
    assert status is Status.CRASHED
    assert words in reason and "while running t::x" in reason


def test_a_signal_clude_did_not_send_is_a_crash_not_an_interruption():
    # an interrupted run uses no attempt, so a test that kills its own process must not pass for one
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        status, reason = decide(facts(exit_code=None, signal=int(sig)))
        assert status is Status.CRASHED and signal.Signals(sig).name in reason
    status, reason = decide(facts(exit_code=2, stray_interrupt=True, running="t::x"))
    assert status is Status.CRASHED and "did not send" in reason and "t::x" in reason


def test_timeout_wins_over_the_signal_that_ended_it():
    status, reason = decide(facts(finished=False, exit_code=None, signal=int(signal.SIGTERM),
                                  timed_out=True, timeout_s=3, running="t::hang"))
    assert status is Status.TIMEOUT
    assert reason == "no result after 3 s; the process group was killed while running t::hang"


def test_interrupted_by_the_user():
    assert decide(facts(interrupted=True, exit_code=2))[0] is Status.INTERRUPTED


def test_every_status_has_its_own_exit_code_and_only_passed_is_zero():
    assert set(EXIT_CODES) == set(Status)
    assert len(set(EXIT_CODES.values())) == len(Status)
    assert [s for s, code in EXIT_CODES.items() if code == 0] == [Status.PASSED]
    assert 2 not in EXIT_CODES.values()  # reserved for usage errors


def test_counts_are_per_test_and_add_up():
    c = Counts.of({"a": "passed", "b": "failed", "c": "error", "d": "skipped", "e": "xfailed",
                   "f": "xpassed"}, collection_errors=2)
    assert c.model_dump() == dict(passed=1, failed=1, errors=3, skipped=1, xfailed=1, xpassed=1,
                                  total=8)
    assert c.summary() == "1 passed, 1 failed, 3 errors, 1 skipped"


def test_a_test_binary_killed_inside_the_command_is_named():
    status, reason = decide(facts(finished=False, exit_code=101, crash_signal=int(signal.SIGABRT),
                                  running="src/lib.rs::tests::gives_up"))
    assert status is Status.CRASHED
    assert reason == ("the test process was killed by SIGABRT (aborted) before it finished "
                      "reporting while running src/lib.rs::tests::gives_up")


def test_compare_pairs_a_parametrized_test_whose_parameters_were_renamed():
    """test_x[1-2] became test_x[one-two]: one test compared, not one gone and one new."""
    from clude.harness.compare import compare
    from clude.harness.verdict import Verdict
    base = Verdict(status="failed", outcomes={"t.py::test_x[1-2]": "passed", "t.py::test_x[3-4]": "failed",
                                              "t.py::test_y[a]": "passed", "t.py::test_z": "passed"})
    now = Verdict(status="failed", outcomes={"t.py::test_x[one-two]": "failed", "t.py::test_x[three-four]": "passed",
                                             "t.py::test_y[a]": "passed", "t.py::test_z": "passed"})
    result = compare(base, now)
    assert result.renamed == {"t.py::test_x[1-2]": "t.py::test_x[one-two]",
                              "t.py::test_x[3-4]": "t.py::test_x[three-four]"}
    assert result.regressions == {"t.py::test_x[1-2]": "failed"}
    assert result.fixes == {"t.py::test_x[three-four]": "failed"}
    gone = Verdict(status="passed", outcomes={"t.py::test_x[one-two]": "passed", "t.py::test_z": "passed"})
    unpaired = compare(base, gone)  # two old ids, one new: nothing is paired, both old ones are gone
    assert unpaired.renamed == {} and unpaired.regressions == {"t.py::test_x[1-2]": "missing",
                                                               "t.py::test_y[a]": "missing"}
