"""The built-in price table and cost_of."""

import pytest

from clude.config.settings import Price
from clude.llm.prices import builtin_prices, cost_of, price_of


def test_table_loads_with_rows():
    rows = builtin_prices()
    assert rows and all(i >= 0 and o >= 0 for _, i, o in rows)


@pytest.mark.parametrize("model, expected", [
    ("gpt-4o", 2.5 + 10.0),
    ("gpt-4o-mini", 0.15 + 0.60),
    ("gpt-4.1-mini", 0.40 + 1.60),
    ("claude-sonnet-4-5-20250929", 3.0 + 15.0),
    ("claude-3-5-haiku-latest", 0.8 + 4.0),
    ("CLAUDE-OPUS-4-1-20250805", 15.0 + 75.0),
    ("anthropic/claude-sonnet-4-5", 3.0 + 15.0),
])
def test_known_models(model, expected):
    assert cost_of(model, 1_000_000, 1_000_000) == pytest.approx(expected)


def test_cost_is_per_million():
    assert cost_of("gpt-4o", 1000, 500) == pytest.approx((1000 * 2.5 + 500 * 10.0) / 1e6)


@pytest.mark.parametrize("model", ["qwen2.5-coder:7b", "llama3.1:8b", "gpt-oss:20b", "mistral-small",
                                   "gemma-3-12b-it", "my-local-model", "claude-opus-4-5", "", "  "])
def test_unknown_and_local_models_have_no_price(model):
    assert cost_of(model, 10, 10) is None


def test_zero_tokens_cost_nothing():
    assert cost_of("gpt-4o", 0, 0) == 0.0


def test_override_wins_over_builtin():
    assert cost_of("gpt-4o", 1_000_000, 0, {"gpt-4o*": {"input": 1.0, "output": 2.0}}) == 1.0
    assert cost_of("gpt-4o", 0, 1_000_000, {"GPT-4O": Price(input=1.0, output=2.0)}) == 2.0


def test_override_prices_local_models_and_first_match_wins():
    overrides = {"qwen*": {"input": 0.0, "output": 0.0}, "*": {"input": 9.0, "output": 9.0}}
    assert cost_of("qwen2.5-coder", 100, 100, overrides) == 0.0
    assert cost_of("something-else", 1_000_000, 0, overrides) == 9.0


def test_override_that_does_not_match_falls_back_to_table():
    assert price_of("gpt-4o", {"claude*": {"input": 1, "output": 1}}) == (2.5, 10.0)


@pytest.mark.parametrize("bad", [{"x*": {"input": "cheap"}}, {"x*": None}, {1: {}}, "nonsense", []])
def test_never_raises_on_bad_overrides(bad):
    assert cost_of("x-model", 10, 10, bad) is None


def test_never_raises_on_bad_arguments():
    assert cost_of(None, 10, 10) is None  # type: ignore[arg-type]
    assert cost_of("gpt-4o", None, -5) == 0.0  # type: ignore[arg-type]
    assert cost_of("gpt-4o", "many", 1) is None  # type: ignore[arg-type]
