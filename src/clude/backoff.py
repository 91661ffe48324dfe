"""The one backoff every retry in clude waits by (pure): model requests, lost push races, worker
restarts, rate-limited agents."""

from __future__ import annotations

import random


def backoff(attempt: int, *, first: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait before the attempt-th retry (1, 2, ...): `first`, doubled for each retry after,
    at most `cap`. With `rng`, drawn uniformly from [d/2, d] (jitter: parties that failed together do
    not all come back together)."""
    delay = min(cap, first * 2 ** min(max(0, attempt - 1), 62))
    return rng.uniform(delay / 2, delay) if rng is not None else delay
