"""Token prices: the built-in table (data/prices.toml) and the cost of a request."""

from __future__ import annotations

import fnmatch
import tomllib
from functools import lru_cache
from importlib import resources
from typing import Any

# (glob, input USD per million tokens, output USD per million tokens), first match wins.
PriceRow = tuple[str, float, float]


@lru_cache(maxsize=1)
def builtin_prices() -> tuple[PriceRow, ...]:
    """The rows of the built-in table, in file order; empty if the file cannot be read."""
    try:
        text = resources.files("clude.llm").joinpath("data/prices.toml").read_text("utf-8")
        data = tomllib.loads(text)
    except (OSError, tomllib.TOMLDecodeError, ModuleNotFoundError):
        return ()
    rows: list[PriceRow] = []
    for entry in data.get("price", []):
        price = _rates(entry)
        if price is None:
            continue
        for pattern in entry.get("patterns", []):
            if isinstance(pattern, str) and pattern:
                rows.append((pattern, *price))
    return tuple(rows)


def _rates(price: Any) -> tuple[float, float] | None:
    """(input, output) from a Price object or a {"input", "output"} mapping; None if unusable."""
    if isinstance(price, dict):
        raw_in, raw_out = price.get("input"), price.get("output")
    else:
        raw_in, raw_out = getattr(price, "input", None), getattr(price, "output", None)
    try:
        rates = float(raw_in), float(raw_out)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if any(r != r or r < 0 or r == float("inf") for r in rates):
        return None
    return rates


def _matches(pattern: str, name: str) -> bool:
    pattern = pattern.lower()
    tail = name.rsplit("/", 1)[-1]
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(tail, pattern)


def price_of(model_name: str, overrides: dict | None = None) -> tuple[float, float] | None:
    """(input, output) USD per million tokens for a model, overrides first; None if unknown."""
    if not isinstance(model_name, str) or not model_name.strip():
        return None
    name = model_name.strip().lower()
    if isinstance(overrides, dict):
        for pattern, price in overrides.items():
            if isinstance(pattern, str) and _matches(pattern, name):
                rates = _rates(price)
                if rates is not None:
                    return rates
    for pattern, rate_in, rate_out in builtin_prices():
        if _matches(pattern, name):
            return rate_in, rate_out
    return None


def cost_of(model_name: str, input_tokens: int, output_tokens: int,
            overrides: dict | None = None) -> float | None:
    """USD for one request's tokens, or None when the model has no price. Never raises."""
    try:
        rates = price_of(model_name, overrides)
        if rates is None:
            return None
        tokens_in, tokens_out = max(0, int(input_tokens or 0)), max(0, int(output_tokens or 0))
        return (tokens_in * rates[0] + tokens_out * rates[1]) / 1_000_000
    except Exception:  # noqa: BLE001 - cost is reporting only; it must never fail a run
        return None
