"""Which changes of a batch land: test the batch once on top of what already passed; when it is red,
split it in halves and test each on top of what passed before it, down to the changes at fault. Pure:
the test is a function given in."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

E = TypeVar("E", bound=Hashable)


@dataclass(frozen=True)
class Rejected(Generic[E]):
    """Why a check of `batch` on top of `landing` failed. `entry`, when the failure is known to be one
    change's own (it does not apply: a conflict), names it; otherwise the batch is split to find it."""

    reason: str
    entry: E | None = None
    details: object = None  # what the lander keeps for the record (a verdict, the failing tests)
    cached: bool = False    # the failing verdict came from the cache, not from a run of this check
    tests: tuple[str, ...] = ()  # the tests that failed


def settle_batch(entries: Sequence[E], check: Callable[[list[E], list[E], bool], Rejected[E] | None],
                 on_flaky: Callable[[Rejected[E]], None] = lambda rejected: None
                 ) -> tuple[list[E], dict[E, Rejected[E]]]:
    """Split `entries` (in queue order) into those that land and those sent back, with why.

    `check(landing, batch, fresh)` tests the changes `landing` (already found good) followed by `batch`,
    and returns None when they pass together; `fresh`: run the tests again even when a verdict of that
    tree is known. A green batch costs one check; a red one of n changes with one at fault about
    2·log2(n) + 1 more. A change is sent back only when a fresh check of exactly it on top of what lands
    is red as well (seen red twice), so a flaky failure, of a bigger batch or of it alone, never charges
    a change. The changes that land
    were checked together, in order, by the last green check (its result is the landed tree's verdict).
    `on_flaky` hears of each red check that a fresh check of the same tree then found green."""
    landing: list[E] = []
    sent_back: dict[E, Rejected[E]] = {}

    def visit(batch: list[E], failure: Rejected[E] | None = None) -> None:
        # failure: what check(landing, batch) is already known to say (red), or None: not known yet
        while batch:
            if failure is None:
                failure = check(landing, batch, False)
                if failure is None:
                    landing.extend(batch)
                    return
            if failure.entry is not None and failure.entry in batch:
                sent_back[failure.entry] = failure
                batch, failure = [e for e in batch if e != failure.entry], None
                continue
            if len(batch) == 1:
                confirmed = check(landing, batch, True)  # seen red twice, or it is not its fault
                if confirmed is None:  # it passes alone: the red was a flaky run, not this change
                    on_flaky(failure)
                    landing.extend(batch)
                else:
                    sent_back[confirmed.entry if confirmed.entry in batch else batch[0]] = confirmed
                return
            middle, before = len(batch) // 2, len(sent_back)
            visit(batch[:middle])
            # when the first half all landed, the second on top of it is the very tree found red
            batch, failure = batch[middle:], failure if len(sent_back) == before else None

    visit(list(entries))
    return landing, sent_back
