"""Properties of --fast sampling: deterministic, order-free, at the rate, different per seed."""

from hypothesis import given, settings
from hypothesis import strategies as st

from clude.harness.inject.clude_sample import sample, score

ids = st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=200, unique=True)
rates = st.floats(min_value=0.01, max_value=1.0)
seeds = st.text(max_size=20)


@given(ids, seeds, rates)
def test_same_seed_same_selection(test_ids, seed, rate):
    assert sample(test_ids, seed, rate) == sample(list(test_ids), seed, rate)


@given(ids, seeds, rates, st.randoms(use_true_random=False))
def test_selection_does_not_depend_on_order(test_ids, seed, rate, rnd):
    shuffled = list(test_ids)
    rnd.shuffle(shuffled)
    assert set(sample(test_ids, seed, rate)) == set(sample(shuffled, seed, rate))


@given(ids, seeds, rates, st.text(min_size=1, max_size=40))
def test_adding_a_test_never_changes_the_choice_for_the_others(test_ids, seed, rate, new_id):
    before = set(sample(test_ids, seed, rate))
    after = set(sample(test_ids + [new_id], seed, rate))
    # the fallback that keeps one test when none would be chosen is the only exception
    if len(before) > 1 or score(seed, next(iter(before))) < rate:
        assert after - {new_id} == before - {new_id}


@given(ids, seeds, rates)
def test_never_empty_when_there_are_tests(test_ids, seed, rate):
    chosen = sample(test_ids, seed, rate)
    assert chosen and set(chosen) <= set(test_ids)


@settings(max_examples=20)
@given(seeds, st.sampled_from([0.05, 0.1, 0.25, 0.5]))
def test_rate_is_kept_within_tolerance(seed, rate):
    n = 4000
    chosen = sample([f"tests/test_m{i % 40}.py::test_{i}" for i in range(n)], seed, rate)
    # binomial standard deviation is at most 0.008 * n here; 5 sigma keeps this deterministic-safe
    assert abs(len(chosen) / n - rate) < 5 * (rate * (1 - rate) / n) ** 0.5 + 1e-9


def test_a_new_test_is_selected_with_probability_rate():
    seed, rate, n = "agent-7", 0.1, 20000
    hits = sum(score(seed, f"new_test_{i}") < rate for i in range(n))
    assert abs(hits / n - rate) < 0.01


@settings(max_examples=30)
@given(st.text(max_size=10), st.text(max_size=10))
def test_different_seeds_select_different_tests(seed_a, seed_b):
    if seed_a == seed_b:
        return
    suite = [f"t{i}" for i in range(400)]
    assert sample(suite, seed_a, 0.1) != sample(suite, seed_b, 0.1)


def test_rate_one_selects_everything_in_order():
    suite = ["b", "a", "c"]
    assert sample(suite, "s", 1.0) == suite
