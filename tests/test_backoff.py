"""The one backoff (pure): doubling from `first` to `cap`, jittered into [d/2, d] when asked."""

from __future__ import annotations

import random

from hypothesis import given, strategies as st

from clude.backoff import backoff


@given(st.floats(0.01, 10), st.floats(0.01, 1000), st.integers(1, 10_000))
def test_it_doubles_from_first_and_never_passes_the_cap(first, cap, attempt):
    delay = backoff(attempt, first=first, cap=cap)
    assert delay == min(cap, first * 2 ** (attempt - 1)) if attempt < 60 else delay == min(cap, delay)
    assert delay <= cap and backoff(attempt + 1, first=first, cap=cap) >= delay


@given(st.integers(1, 200), st.integers(0, 2**32))
def test_jitter_stays_within_half_to_whole(attempt, seed):
    plain = backoff(attempt, first=0.5, cap=30)
    jittered = backoff(attempt, first=0.5, cap=30, rng=random.Random(seed))
    assert plain / 2 <= jittered <= plain


def test_every_retry_in_clude_waits_by_it():
    from clude.llm.retry import backoff_delay
    from clude.team.supervision.crashloop import Policy, Run, decide
    assert [backoff_delay(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    failed = [Run(started=i, ended=i + 1, exit_code=1, worked=False, reason="boom") for i in range(2)]
    assert decide(failed, Policy(k=5, base_s=1, cap_s=60)).delay_s == 2
