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
    renamed: dict[str, str] = {}  # a parametrized test's old id -> its new one (its parameters renamed)

    @property
    def clean(self) -> bool:
        return not self.regressions


def compare(base: Verdict, now: Verdict) -> Comparison:
    """Regressions: tests that passed in `base` and do not pass now (a test that vanished counts,
    unless `now` is a sample that did not select it). Fixes: tests that did not pass in `base`
    and pass now."""
    before = base.outcomes or {}
    after = now.outcomes or {}
    renamed = renamed_ids(before, after)
    regressions = {}
    for test_id, outcome in before.items():
        current = after.get(renamed.get(test_id, test_id))
        if outcome in PASSING and current not in PASSING and (current or now.sample is None):
            regressions[test_id] = current or "missing"
    was = {new: old for old, new in renamed.items()}
    fixes = {t: before[was.get(t, t)] for t, o in after.items()
             if o in PASSING and was.get(t, t) in before and before[was.get(t, t)] not in PASSING}
    return Comparison(regressions=regressions, fixes=fixes, base_total=len(before),
                      total=len(after), renamed=renamed)


def renamed_ids(before: dict[str, str], after: dict[str, str]) -> dict[str, str]:
    """Old id -> new id of parametrized tests whose parameters were renamed: ids of one test
    (`file::test[...]`) that vanished and as many that appeared, paired in run order."""
    gone, new = _by_test(t for t in before if t not in after), _by_test(t for t in after if t not in before)
    pairs = {}
    for test, old_ids in gone.items():
        if len(new.get(test, ())) == len(old_ids):
            pairs.update(zip(old_ids, new[test]))
    return pairs


def _by_test(ids) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for test_id in ids:
        if test_id.endswith("]") and "[" in test_id:
            grouped.setdefault(test_id[:test_id.index("[")], []).append(test_id)
    return grouped
