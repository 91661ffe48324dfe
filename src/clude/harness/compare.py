"""Compares two Verdicts test by test: regressions (passed before, not now) and fixes (the reverse)."""

from __future__ import annotations

from pydantic import BaseModel

from clude.harness.verdict import Verdict

# What counts as passing on both sides: a test marked skip or xfail since is a regression.
PASSING = frozenset({"passed", "xpassed"})


class Comparison(BaseModel):
    regressions: dict[str, str]  # test id -> its outcome now ("missing" when it did not run)
    fixes: dict[str, str]  # test id -> its outcome before
    base_total: int
    total: int

    @property
    def clean(self) -> bool:
        return not self.regressions


def compare(base: Verdict, now: Verdict) -> Comparison:
    """Regressions: tests that passed in `base` and do not pass now (a test that vanished counts,
    unless `now` is a sample that did not select it). Fixes: tests that did not pass in `base`
    and pass now."""
    before = base.outcomes or {}
    after = now.outcomes or {}
    regressions = {}
    for test_id, outcome in before.items():
        current = after.get(test_id)
        if outcome in PASSING and current not in PASSING and (current or now.sample is None):
            regressions[test_id] = current or "missing"
    fixes = {t: before[t] for t, o in after.items()
             if o in PASSING and t in before and before[t] not in PASSING}
    return Comparison(regressions=regressions, fixes=fixes, base_total=len(before),
                      total=len(after))
