"""Whose fault an agent run that ends before changing anything is (team/work/blame.py), rule by rule,
then over any sequence of runs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from clude.team.work.blame import START_STREAK, StartFailures


def test_a_fresh_worker_failing_on_every_task_is_the_suspect_and_blames_no_task():
    starts = StartFailures()
    assert [starts.failed(t, "exit 2") for t in ("T1", "T2", "T3")] == ["suspect", "suspect", "worker"]
    assert starts.avoid() == {"T1", "T2", "T3"}


def test_a_failure_right_after_working_is_the_tasks_and_a_suspicion_is_noted_once_the_worker_works():
    starts = StartFailures()
    assert starts.failed("T1", "exit 2") == "suspect"      # not known yet whose
    assert starts.worked() == [("T1", "exit 2")]           # it ran T2 fine: T1's, noted now
    assert starts.failed("T3", "exit 3") == "note"         # it was just working: T3's at once
    assert starts.worked() == []                           # nothing left to note


def test_one_task_failing_again_and_again_on_a_worker_that_worked_is_the_tasks_not_the_workers():
    starts = StartFailures()
    starts.worked()
    assert [starts.failed("T1", "exit 2") for _ in range(START_STREAK)] == ["note", "suspect", "note"]
    starts = StartFailures()  # the same on a worker that never worked: its environment
    assert [starts.failed("T1", "exit 2") for _ in range(START_STREAK)][-1] == "worker"


@given(st.lists(st.one_of(st.just(None), st.sampled_from(["T1", "T2", "T3", "T4"])), max_size=40))
def test_any_history_a_worker_is_blamed_only_on_a_streak_and_a_task_only_for_a_worker_that_works(runs):
    """None: a run that worked; a task id: a start failure on it. A note is only ever written by a
    worker that worked (before the streak, or since); the worker is the suspect only after START_STREAK
    failures in a row with no run that worked between."""
    starts, streak, worked_ever, notes = StartFailures(), 0, False, 0
    for run in runs:
        if run is None:
            notes += len(starts.worked())
            streak, worked_ever = 0, True
            continue
        streak += 1
        verdict = starts.failed(run, "exit 2")
        if verdict == "note":
            assert worked_ever
            notes += 1
        if verdict == "worker":
            assert streak >= START_STREAK
            return
        assert streak < START_STREAK or worked_ever
    assert notes <= len([r for r in runs if r is not None])
