"""Deterministic test sampling for `clude test --fast`: which tests a seed selects at a rate.

Standard library only: this file is also loaded by the user's own interpreter (the pytest plugin and the
unittest runner beside it), which may not have clude installed.

A test is selected when a hash of (seed, test id) falls below the rate. So the choice depends on nothing
but the seed and the id: the same seed selects the same tests run after run, a new test is selected with
probability `rate`, the order of tests does not matter, and different seeds select different tests.
"""

import hashlib
import os

_SCALE = float(1 << 64)


def score(seed: str, test_id: str) -> float:
    """A number in [0, 1) that is uniform over test ids and fixed for a (seed, id) pair."""
    digest = hashlib.blake2b(f"{seed}\0{test_id}".encode("utf-8", "surrogatepass"), digest_size=8)
    return int.from_bytes(digest.digest(), "big") / _SCALE


def sample(test_ids, seed: str, rate: float) -> list:
    """The ids selected at `rate` under `seed`, in their given order.

    When the rate selects nothing from a non-empty list, the one test with the lowest score is
    selected, so a small suite never reports "no tests" because of sampling alone.
    """
    ids = list(dict.fromkeys(test_ids))
    if rate >= 1.0:
        return ids
    chosen = [t for t in ids if score(seed, t) < rate]
    if not chosen and ids and rate > 0:
        chosen = [min(ids, key=lambda t: score(seed, t))]
    return chosen


def default_seed(env) -> str:
    """The seed when none is given: the agent's id, else the host name, so each agent of a team
    samples its own tests and keeps to them run after run."""
    return env.get("CLUDE_AGENT_ID") or os.uname().nodename
