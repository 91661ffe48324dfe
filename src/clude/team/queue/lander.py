"""A lander's pass over the merge queue: read the queued locks on main, take the landing lease, test the
queued changes once as a batch on top of main, bisect when the batch is red, then land what passed and
send back what did not, in one push with the bookkeeping (tasks done, failure records, PROGRESS)."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from clude.harness.compare import PASSING, compare
from clude.harness.report import concise
from clude.harness.verdict import Verdict
from clude.team.board.books import write_done, write_failure, write_released
from clude.team.logs.events import EventLog
from clude.team.protocol import objects
from clude.team.protocol.git import ORIGIN, Repo
from clude.team.board.layout import BRANCH, LOCKS_DIR, agent_identity, is_team_path, lock_path, task_path
from clude.team.board.locks import Lock, LockFileError, Queued, parse_lock
from clude.team.queue.batch import Rejected, settle_batch
from clude.team.queue.enqueue import CLUDE_FETCH
from clude.team.queue.lease import Holder, LandingLease
from clude.team.board.records import append_progress, failure_record, progress_line
from clude.team.protocol.failures import unreachable
from clude.team.protocol.sync import UpstreamRejected, race_backoff
from clude.team.board.tasks import TaskFileError, parse_task
from clude.team.work.verify import UNUSABLE_BASELINE, BaselineUnusable, Judge, baseline, failure_lines

MAX_RACES = 60
MAX_SHOWN = 10  # tests named in a one-line reason
MISSING_LOOKS, MISSING_PAUSE_S = 3, 0.2  # fetches before a queued change is taken for gone
# A batch waits for changes about to be queued (tasks under way) for this share of the last batch's
# test run, at most GATHER_MAX_S: a run that takes them too saves them the next one (Bors' batching).
GATHER_SHARE, GATHER_MAX_S = 0.25, 1.0
CONFLICT = "conflict"  # Rejected.details of a change that does not merge: given back, no attempt used


@dataclass(frozen=True)
class Entry:
    """One queued change: its task, its commit, and the lock that queued it."""

    task: str
    commit: str
    lock: Lock = field(compare=False, hash=False)

    @property
    def queued(self) -> Queued:
        assert self.lock.queued is not None
        return self.lock.queued


class LeaseLost(Exception):
    """Another lander took the lease during this pass (ours ran out): leave the batch to it."""


def lock_names(repo: Repo, ref: str) -> list[str]:
    """The paths of the task locks on `ref`."""
    return [p for p in repo.files(ref, LOCKS_DIR) if p.endswith(".lock") and p.count("/") == 1]


def queued_entries(repo: Repo, ref: str) -> list[Entry]:
    """The changes queued on `ref` (locks with `queued`), in queue order; two git processes whatever the
    number of locks."""
    entries = []
    for content in repo.blobs(ref, lock_names(repo, ref)).values():
        if content is None:
            continue
        try:
            lock = parse_lock(content.decode("utf-8", "replace"))
        except (LockFileError, ValueError):
            continue
        if lock.queued is not None:
            entries.append(Entry(lock.task, lock.queued.commit, lock))
    return sorted(entries, key=lambda e: (e.queued.at, e.task))


def batch_problem(base: Verdict, verdict: Verdict, entries: list[Entry]) -> Rejected[Entry] | None:
    """Why the tree with `entries` on main does not land (None: it does): the suite does not run, a test
    that passes on main does not pass, or a test a change was seen passing by its worker does not pass
    (a change broke another's). A change with nothing to show that it works, in a suite where no test
    passes, is sent back alone."""
    lines = failure_lines(verdict)
    if verdict.status in UNUSABLE_BASELINE:
        return Rejected(f"the whole suite does not run with this change: {verdict.status.value}: "
                        f"{verdict.reason}", details=(concise(verdict), lines))
    regressions = compare(base, verdict).regressions
    if regressions:
        shown = ", ".join(f"{t} ({o})" for t, o in list(regressions.items())[:MAX_SHOWN])
        return Rejected(f"{len(regressions)} test(s) that pass on the upstream do not pass with this change: "
                        f"{shown}", details=(concise(verdict), failure_lines(verdict, regressions) or lines),
                        tests=tuple(regressions))
    lost = {t: verdict.outcomes.get(t, "missing") for e in entries for t in e.queued.passes
            if verdict.outcomes.get(t) not in PASSING and (t in verdict.outcomes or verdict.sample is None)}
    if lost:
        shown = ", ".join(f"{t} ({o})" for t, o in list(lost.items())[:MAX_SHOWN])
        return Rejected(f"{len(lost)} test(s) that passed when the change was made do not pass with the "
                        f"changes queued before it: {shown}", details=(concise(verdict), failure_lines(verdict, lost)),
                        tests=tuple(lost))
    if verdict.counts.passed == 0:
        for entry in entries:
            if not entry.queued.passes:
                return Rejected("no test passed in the whole suite, so nothing verifies this change: give the "
                                "task acceptance tests (--tests), or set [team] verify = \"none\"", entry=entry,
                                details=(concise(verdict), lines))
    return None


def flaky_note(red: Rejected) -> str:
    """What a red check that a fresh check of the same tree found green says, for PROGRESS.md."""
    tests = ", ".join(red.tests[:MAX_SHOWN]) + (" ..." if len(red.tests) > MAX_SHOWN else "")
    what = f"{tests} failed" if tests else f"the suite failed ({red.reason[:200]})"
    return f"{what} in a batch run and passed on a fresh run of the same tree: flaky, nobody charged"


class Lander:
    """One worker's lander, with its own clone of the upstream and its own test folder."""

    def __init__(self, repo: Repo, judge: Judge | None, events: EventLog, *, agent: str, host: str,
                 lease_s: float, clock: Callable[[], datetime], sleep: Callable[[float], None] = time.sleep,
                 turn: Callable[[Callable[[], Any]], Any] = lambda work: work()):
        self.repo, self.judge, self.events, self.agent = repo, judge, events, agent
        # runs a landing push in the machine's turn at the upstream (protocol/turns.py): without
        # it a lander loses every race to the stream of its own machine's workers queueing changes
        self.turn = turn
        self.clock, self.sleep = clock, sleep
        self.lease = LandingLease(repo, agent=agent, host=host, pid=os.getpid(), lease_s=lease_s, clock=clock)
        self.other: Holder | None = None  # who held the lease at our last look, when not us
        self.rng = random.Random(agent)
        self.checks = 0                   # test runs of batches, in all
        self.check_s = 0.0                # how long the last one took
        self.final: dict[str, bool] = {}  # tasks sent back by the last landing that used their last attempt
        self.flaky: list[Rejected] = []   # red checks of this pass that a fresh check of the same tree found green
        self.resting_until = datetime.min.replace(tzinfo=timezone.utc)  # after the tests could not run here

    # a pass ------------------------------------------------------------------------------------
    def pass_once(self) -> int:
        """Land or send back what is queued, when this lander may: the number of changes settled."""
        if self.clock() < self.resting_until:
            return 0
        try:  # the lease may be held from the last pass: a pass that fails anywhere gives it up
            main, entries = self._queue()
            if not entries:
                return 0
            if not self.lease.take():
                self.other = self.lease.current()[1]
                return 0
            self.other = None
            wait = self._gathering(main, entries)
            if wait:  # changes about to be queued join this batch instead of waiting for the next one
                self.sleep(wait)
                main, entries = self._queue()
                if not entries:
                    return 0
            return self._pass(main, entries)
        except BaselineUnusable as error:  # not here: another lander may run the tests
            self.events.emit("lander_blocked", "ERROR", reason=str(error), queued=len(entries))
            self.resting_until = self.clock() + timedelta(seconds=self.lease.lease_s)
            self.lease.release()
            return 0
        except LeaseLost:
            return 0
        except BaseException as error:
            # whatever went wrong here, another lander may do better, at once: a lander whose every
            # pass failed kept the lease of its last good pass, and every other waited lease_s for it.
            # Not when the upstream is out of reach: the release would wait for it too, and others with it
            if not unreachable(error):
                self.lease.release()
            raise

    def _pass(self, main: str, entries: list[Entry]) -> int:
        present, gone = self._present(entries)
        self._at(main)
        for entry in list(present):
            try:
                self._task(entry.task)
            except (OSError, TaskFileError, UnicodeDecodeError) as error:
                present.remove(entry)
                gone[entry] = f"its task file cannot be read on the upstream ({error}): its change is dropped"
        base = None if self.judge is None else baseline(self.repo.path, self.judge)

        def check(done: list[Entry], batch: list[Entry], fresh: bool, before: tuple[Entry, ...] = ()
                  ) -> Rejected | None:
            return self._check(main, base, [*before, *done], batch, fresh)

        self.flaky = []
        landing, back = settle_batch(present, check, on_flaky=self.flaky.append)
        # a change that did not merge with a change queued before it that was then sent back is tried again,
        # on top of what lands: only a conflict with what lands gives it back
        again = [e for e, why in back.items() if why.details == CONFLICT]
        if again:
            for entry in again:
                del back[entry]
            more, back_again = settle_batch(again, lambda done, batch, fresh: check(done, batch, fresh, tuple(landing)),
                                            on_flaky=self.flaky.append)
            landing, back = [*landing, *more], {**back, **back_again}
        return self._settle(main, landing, back, gone)

    def _queue(self) -> tuple[str, list[Entry]]:
        """The upstream's main as fetched now, and the changes queued on it that this lander may land
        (one that runs no tests lands only changes queued unverified)."""
        self.repo.fetch(CLUDE_FETCH)
        main = self.repo.rev(f"{ORIGIN}/{BRANCH}^{{commit}}")
        return main, [e for e in queued_entries(self.repo, main) if self.judge is not None or e.queued.unverified]

    def _gathering(self, main: str, entries: list[Entry]) -> float:
        """Seconds to wait for more changes before testing a batch: a share of the last batch's test
        run (GATHER_SHARE, at most GATHER_MAX_S) when tasks are in progress whose changes may be queued
        any moment, so that a batch run serves them too; none when nothing else is under way."""
        if self.judge is None or not self.check_s:
            return 0.0
        if len(lock_names(self.repo, main)) <= len(entries):  # every lock is a queued change: nothing else will come
            return 0.0
        return min(GATHER_MAX_S, GATHER_SHARE * self.check_s)

    def _present(self, entries: list[Entry]) -> tuple[list[Entry], dict[Entry, str]]:
        """The entries whose commit was fetched, and those whose queued change is not on the upstream. A
        change missing from a fetch is looked for again first: a fetch can see main (the lock queued)
        moments before the queue's ref, which the same push writes."""
        missing: set[str] = set()
        for look in range(MISSING_LOOKS):
            if look:
                self.sleep(MISSING_PAUSE_S * look)
                self.repo.fetch(CLUDE_FETCH)
            missing = {e.commit for e in entries if self.repo.rev(f"{e.commit}^{{commit}}") is None}
            if not missing:
                break
        gone = {e: "its queued change is not on the upstream: the task is open again" for e in entries
                if e.commit in missing}
        return [e for e in entries if e.commit not in missing], gone

    def _at(self, commit: str, entries: list[Entry] = ()) -> tuple[Entry, str] | None:
        """The checkout made `commit` with the entries' commits cherry-picked on it in order, nothing else
        in it; on a conflict, the entry and its files (and the checkout left at `commit`)."""
        self.repo.check_out(commit, ignored=True)  # the merges read .gitattributes from the tree they go onto
        if not entries:
            return None
        head, stuck, files = objects.pick(self.repo.objects(), commit, [e.commit for e in entries],
                                          agent_identity(self.agent))
        if stuck is None:
            self.repo.check_out(head, ignored=True)
            return None
        return next(e for e in entries if e.commit == stuck), ", ".join(files)

    def _check(self, main: str, base: Verdict | None, landing: list[Entry], batch: list[Entry], fresh: bool
               ) -> Rejected[Entry] | None:
        if not self.lease.take():
            raise LeaseLost()
        stuck = self._at(main, landing + batch)
        if stuck is not None:
            entry, files = stuck
            return Rejected(f"its change does not merge with the changes landed before it (conflicts in "
                            f"{files}): open again, to be redone on the new upstream", entry=entry, details=CONFLICT)
        if self.judge is None or base is None:
            return None
        self.checks += 1
        started = time.monotonic()
        with self.lease.keeping() as lost:  # a long run does not let the lease run out under it
            verdict = self.judge.run(self.repo.path, fresh=fresh)
        self.check_s = time.monotonic() - started
        if lost.is_set():
            raise LeaseLost()
        problem = batch_problem(base, verdict, landing + batch)
        return replace(problem, cached=verdict.cached) if problem is not None else None

    # landing -----------------------------------------------------------------------------------
    def _settle(self, main: str, landing: list[Entry], back: dict[Entry, Rejected[Entry]],
                missing: dict[Entry, str]) -> int:
        for race in range(1, MAX_RACES + 1):
            pushed = self.turn(lambda: self._push_settled(main, landing, back, missing, fetch=race > 1))
            if pushed is None:
                return 0
            if pushed.status == "ok":
                self._report(landing, back, missing)
                return len(landing) + len(back) + len(missing)
            if pushed.status == "rejected":
                raise UpstreamRejected(f"the upstream refused a landing: {pushed.message}", stderr=pushed.message)
            self.sleep(race_backoff(race, self.rng))
        raise UpstreamRejected(f"gave up landing after {MAX_RACES} lost push races")

    def _push_settled(self, main: str, landing: list[Entry], back: dict[Entry, Rejected[Entry]],
                      missing: dict[Entry, str], *, fetch: bool):
        """One try at pushing the batch's outcome on the upstream's main: the push's result, or None when
        main moved in a way that asks for a new pass."""
        if fetch:
            self.repo.fetch()
        upstream = self.repo.rev(f"{ORIGIN}/{BRANCH}^{{commit}}")
        if upstream != main and not all(map(is_team_path, self.repo.changed_files(main, upstream))):
            return None  # the code on main moved (another lander): the next pass starts over
        if self._at(upstream, landing) is not None:
            return None
        lines = self._books(landing, back, missing)
        if lines is None:
            return None
        subject = lines[0] if len(lines) == 1 else (
            f"land {len(landing)} change(s)" + (f", send back {len(back)}" if back else "")
            + (f", release {len(missing)}" if missing else "") + f" (lander {self.agent})")
        self.repo.commit_all("\n\n".join([subject, *(["\n".join(lines)] if len(lines) > 1 else [])]))
        return self.repo.push()

    def _books(self, landing: list[Entry], back: dict[Entry, Rejected[Entry]], missing: dict[Entry, str]
               ) -> list[str] | None:
        """The bookkeeping of the batch in the checkout, and a line per task for the commit message; None
        when an entry's lock is no longer the one that queued it (settled by someone else meanwhile)."""
        checkout, now = self.repo.path, self.clock()
        for entry in [*landing, *back, *missing]:
            try:
                current = parse_lock((checkout / lock_path(entry.task)).read_text(encoding="utf-8"))
            except (OSError, LockFileError, ValueError):
                return None
            if current != entry.lock:
                return None
        lines = []
        for entry in landing:
            title = self._task(entry.task).title
            write_done(checkout, entry.task, entry.queued.text, agent=entry.lock.agent, when=now,
                       unverified=entry.queued.unverified)
            lines.append(f"done {entry.task}: {title} (agent {entry.lock.agent})")
        self.final = {}
        for entry, why in back.items():
            if why.details == CONFLICT:
                write_released(checkout, entry.task, why.reason, agent=entry.lock.agent, when=now)
                lines.append(f"release {entry.task}: {why.reason[:100]} (agent {entry.lock.agent})")
                continue
            task = self._task(entry.task)
            lines.append(f"attempt {entry.lock.attempt} of {entry.task} failed: {why.reason[:100]} "
                         f"(agent {entry.lock.agent})")
            report, failures = why.details if isinstance(why.details, tuple) else ("", [])
            record = failure_record(task, entry.lock.attempt, agent=entry.lock.agent,
                                    verdict_summary=f"{why.reason}\n\n{report}".strip(), failures=failures,
                                    agent_summary=entry.queued.summary, log_path=entry.queued.log, when=now)
            self.final[entry.task] = write_failure(
                checkout, entry.task, entry.lock.attempt, record, why.reason, title=task.title,
                max_attempts=task.max_attempts, agent=entry.lock.agent, when=now)
        for entry, why in missing.items():
            write_released(checkout, entry.task, why, agent=entry.lock.agent, when=now)
            lines.append(f"release {entry.task}: {why[:100]} (agent {entry.lock.agent})")
        for red in self.flaky:
            append_progress(checkout, progress_line("note", "flaky", flaky_note(red), agent=self.agent, when=now))
        return lines

    def _task(self, task_id: str):
        return parse_task((self.repo.path / task_path(task_id)).read_text(encoding="utf-8"), task_path(task_id))

    def _report(self, landing: list[Entry], back: dict[Entry, Rejected[Entry]], missing: dict[Entry, str]) -> None:
        for entry in landing:
            self.events.emit("done", task=entry.task, attempt=entry.lock.attempt, queued_by=entry.lock.agent,
                             commit=entry.commit, verified=not entry.queued.unverified,
                             changed_tests=entry.queued.changed_tests)
        for entry, why in back.items():
            if why.details == CONFLICT:
                self.events.emit("conflict", "WARNING", task=entry.task, queued_by=entry.lock.agent, reason=why.reason)
            else:
                self.events.emit("failed_attempt", "WARNING", task=entry.task, attempt=entry.lock.attempt,
                                 queued_by=entry.lock.agent, reason=why.reason, final=self.final.get(entry.task, False))
        for entry, why in missing.items():
            self.events.emit("lost", "WARNING", task=entry.task, queued_by=entry.lock.agent, reason=why)
        for red in self.flaky:
            self.events.emit("flaky", "WARNING", tests=list(red.tests[:MAX_SHOWN]), reason=flaky_note(red))
        self.events.emit("landed", tasks=[e.task for e in landing], sent_back=[e.task for e in back],
                         checks=self.checks)


