"""The merge queue: which changes of a batch land (bisection, pure), and landers against a real bare
upstream: a batch with a bad change lands the others, two landers never both land, a lander killed
mid-batch loses nothing."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from clude.config.loader import load_settings
from clude.sandbox import Sandbox, allowed_env
from clude.team.logs.events import EventLog
from clude.team.protocol.git import Repo, upstream_head
from clude.team.board.layout import lock_path
from clude.team.board.locks import Queued, new_lock, render_lock
from clude.team.queue import Rejected, settle_batch
from clude.team.queue.enqueue import CLUDE_FETCH, enqueue
from clude.team.queue.lander import Lander, queued_entries
from clude.team.queue.lease import LEASE_REF, holds, parse_holder
from clude.team.protocol.sync import update_upstream
from clude.team.work.verify import Judge
from team_helpers import landed, team_project, upstream_file

HOST = socket.gethostname()


def now() -> datetime:
    return datetime.now(timezone.utc)


# -- which changes land (pure) ----------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=24), st.sets(st.integers(0, 23)))
def test_a_batch_lands_exactly_its_good_changes_in_order(bad_flags, conflicting):
    entries = list(range(len(bad_flags)))
    bad = {e for e in entries if bad_flags[e]}
    conflicts = {e for e in conflicting if e < len(entries)} - bad
    checks = []

    def check(landing, batch, fresh):
        checks.append((list(landing), list(batch)))
        assert not set(landing) & (bad | conflicts), "a change sent back was used again"
        for e in batch:
            if e in conflicts:
                return Rejected("conflict", entry=e)
        return Rejected("red") if set(batch) & bad else None

    landing, back = settle_batch(entries, check)
    assert landing == [e for e in entries if e not in bad | conflicts]
    assert set(back) == bad | conflicts
    assert all(back[e].reason == "conflict" for e in conflicts)
    if not bad and not conflicts:
        assert len(checks) == 1  # a green batch is tested once
    # bisection: about 2·log2(n) checks per change at fault, never one check per change
    n = len(entries)
    assert len(checks) <= 1 + len(conflicts) + 3 * max(1, len(bad)) * max(1, n.bit_length())


def test_a_red_batch_of_eight_with_one_bad_change_costs_a_few_checks():
    checks = []

    def check(landing, batch, fresh):
        checks.append(batch)
        return Rejected("red") if 5 in batch else None

    landing, back = settle_batch(list(range(8)), check)
    assert landing == [0, 1, 2, 3, 4, 6, 7] and list(back) == [5]
    assert len(checks) <= 7  # against 8 for testing every change alone


def test_a_red_verdict_from_the_cache_is_confirmed_by_a_fresh_run_before_a_change_is_charged():
    seen = []

    def check(landing, batch, fresh):
        seen.append(fresh)
        return None if fresh else Rejected("red, as the cache remembers it", cached=True)

    assert settle_batch(["only"], check) == (["only"], {}) and seen == [False, True]


def test_a_change_is_charged_only_when_a_fresh_check_of_it_alone_fails():
    """A flaky red batch: the change it would blame passes when checked again, fresh, and lands."""
    seen = []

    def check(landing, batch, fresh):
        seen.append((list(batch), fresh))
        return Rejected("flaky") if len(seen) == 1 else None

    landing, back = settle_batch([1, 2], check)
    assert landing == [1, 2] and back == {}
    assert seen == [([1, 2], False), ([1], False), ([2], True)]


# -- landers against a real upstream ----------------------------------------------------------------------
def project(tmp_path: Path, lease_s: float = 120.0):
    root, upstream = team_project(tmp_path, fast=True, team=f"[team]\nlease_s = {lease_s}")
    from clude.team.protocol.admin import add_task, view
    tasks = [add_task(view(root, upstream), {"title": f"check {n}", "tests": f"checks.check{n}"})[0].id
             for n in range(1, 4)]
    return root, upstream, tasks


def queue_change(upstream: str, tmp_path: Path, task: str, files: dict[str, str], *, agent: str = "w1",
                 passes: tuple[str, ...] = ()) -> str:
    """What a worker does, by hand: claim `task`, commit `files` on main, queue the commit."""
    repo = Repo.clone(upstream, tmp_path / "workers" / task, agent=agent)
    lock = new_lock(task, agent, HOST, os.getpid(), 1, now(), 120)

    def claim(checkout: Path) -> str:
        (checkout / lock_path(task)).write_text(render_lock(lock), encoding="utf-8")
        return f"claim {task}"

    update_upstream(repo, claim)
    for name, text in files.items():
        (repo.path / name).parent.mkdir(parents=True, exist_ok=True)
        (repo.path / name).write_text(text)
    assert repo.commit_all(f"{task}: change (agent {agent})")
    commit = repo.head()
    queued = Queued(at=now(), commit=commit, passes=list(passes), text=f"{task} works", summary="did it")
    assert enqueue(repo, lock, commit, queued).status == "queued"
    return commit


def lander(root: Path, upstream: str, tmp_path: Path, name: str, *, clock=now, host: str = HOST) -> Lander:
    settings, _ = load_settings(root)
    judge = Judge(settings.test, allowed_env(dict(os.environ), settings.test.pass_env),
                  sandbox=Sandbox.from_config(settings.sandbox), state_dir=tmp_path / name / "harness")
    repo = Repo.clone(upstream, tmp_path / name / "clone", agent=name)
    return Lander(repo, judge, EventLog(tmp_path / "state", name), agent=name, host=host,
                  lease_s=settings.team.lease_s, clock=clock)


def events(tmp_path: Path) -> list[dict]:
    path = tmp_path / "state" / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_batch_with_one_bad_change_lands_the_others_and_fails_that_one(tmp_path):
    root, upstream, (t1, t2, t3) = project(tmp_path)
    queue_change(upstream, tmp_path, t1, {"checks/check1.txt": "ok\n"}, passes=("checks::check1",))
    queue_change(upstream, tmp_path, t2, {"checks/check2.txt": "ok\n", "checks/base.txt": "broken\n"},
                 agent="w2", passes=("checks::check2",))
    last = queue_change(upstream, tmp_path, t3, {"checks/check3.txt": "ok\n"}, agent="w3",
                        passes=("checks::check3",))
    refs = subprocess.run(["git", "--git-dir", upstream, "for-each-ref", "--format=%(refname)", "refs/clude"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert refs == ["refs/clude/queued"]  # one ref for the whole queue, each change reachable from it
    assert subprocess.run(["git", "--git-dir", upstream, "merge-base", "--is-ancestor", last,
                           "refs/clude/queued"]).returncode == 0
    one = lander(root, upstream, tmp_path, "L1")
    assert one.pass_once() == 3
    lines = landed(upstream)
    assert lines[:2] == [f"done {t1}: check 1 (agent w1)", f"done {t3}: check 3 (agent w3)"]
    assert lines[2].startswith(f"attempt 1 of {t2} failed: 1 test(s) that pass on the upstream do not pass"), lines
    assert [upstream_file(upstream, f"checks/check{n}.txt") for n in (1, 3)] == ["ok\n", "ok\n"]
    assert upstream_file(upstream, "checks/base.txt") == "ok\n"  # the bad change did not land
    record = upstream_file(upstream, f"tasks/failures/{t2}_attempt_1.md")
    assert "checks::base" in record and "pass on the upstream" in record
    assert "did it" in record and "- agent: w2" in record
    assert upstream_file(upstream, lock_path(t2)) is None  # open again, one attempt used
    assert 2 <= one.checks <= 5  # the batch, bisection, the culprit seen red twice: never a run per change
    kinds = [(e["kind"], e.get("task")) for e in events(tmp_path) if e["kind"] in ("done", "failed_attempt")]
    assert sorted(kinds) == sorted([("done", t1), ("done", t3), ("failed_attempt", t2)])
    assert one.pass_once() == 0  # nothing left queued


def test_a_landing_pushes_inside_the_machines_turn_at_the_upstream(tmp_path):
    """The lander waits for the push turn its machine's workers queue changes in: it lands while it
    holds the turn, so that a stream of queueing pushes cannot make it lose every race."""
    root, upstream, (t1, _, _) = project(tmp_path)
    queue_change(upstream, tmp_path, t1, {"checks/check1.txt": "ok\n"}, passes=("checks::check1",))
    seen: list[tuple[str, str]] = []

    def turn(work):
        before = upstream_head(upstream)
        result = work()
        seen.append((before, upstream_head(upstream)))
        return result

    one = lander(root, upstream, tmp_path, "L1")
    one.turn = turn
    start = upstream_head(upstream)
    assert one.pass_once() == 1
    assert seen == [(start, upstream_head(upstream))] and start != upstream_head(upstream)


@pytest.mark.parametrize("edit", [
    ('if [ "$text" = ok ]', 'if [ "$text" = ok ] && [ "$name" != check1 ]'),  # check1 fails
    ('for f in checks/*.txt; do\n', 'for f in checks/*.txt; do\n    [ "$f" = checks/check1.txt ] && continue\n'),
], ids=["fails", "vanishes"])  # a test that no longer runs at all is lost as much as one that fails
def test_a_change_that_breaks_a_test_a_change_queued_before_it_made_pass_goes_back(tmp_path, edit):
    root, upstream, (t1, t2, _) = project(tmp_path)
    queue_change(upstream, tmp_path, t1, {"checks/check1.txt": "ok\n"}, passes=("checks::check1",))
    # t2 alone breaks nothing that passes on main (check1 does not exist there); after t1 it breaks check1
    breaking = (root / "run_checks.sh").read_text().replace(*edit)
    assert breaking != (root / "run_checks.sh").read_text()
    queue_change(upstream, tmp_path, t2, {"checks/check2.txt": "ok\n", "run_checks.sh": breaking}, agent="w2",
                 passes=("checks::check2",))
    one = lander(root, upstream, tmp_path, "L1")
    assert one.pass_once() == 2
    lines = landed(upstream)
    assert lines[0] == f"done {t1}: check 1 (agent w1)"
    assert lines[1].startswith(f"attempt 1 of {t2} failed: 1 test(s) that passed when the change was made"), lines
    record = upstream_file(upstream, f"tasks/failures/{t2}_attempt_1.md")
    assert "the changes queued before it: checks::check1 (" in record


def test_a_change_that_no_longer_merges_is_given_back_without_using_an_attempt(tmp_path):
    root, upstream, (t1, t2, _) = project(tmp_path)
    queue_change(upstream, tmp_path, t1, {"notes.txt": "one\n"})
    repo = Repo.clone(upstream, tmp_path / "late", agent="w2")  # t2 was made before t1 was queued
    repo.git("reset", "-q", "--hard", "HEAD~1")
    queue_change(upstream, tmp_path, t2, {"notes.txt": "two\n"}, agent="w2")
    one = lander(root, upstream, tmp_path, "L1")
    assert one.pass_once() == 2
    lines = landed(upstream)
    assert lines[0] == f"done {t1}: check 1 (agent w1)"
    assert lines[1].startswith(f"release {t2}: its change does not merge")
    assert upstream_file(upstream, f"tasks/failures/{t2}_attempt_1.md") is None  # no attempt used
    assert upstream_file(upstream, "notes.txt") == "one\n"


def test_two_landers_never_both_land(tmp_path):
    root, upstream, (t1, t2, t3) = project(tmp_path)
    for n, task in enumerate((t1, t2, t3), 1):
        queue_change(upstream, tmp_path, task, {f"checks/check{n}.txt": "ok\n"}, agent=f"w{n}",
                     passes=(f"checks::check{n}",))
    landers = [lander(root, upstream, tmp_path, f"L{n}") for n in (1, 2)]
    settled = {}
    gate = threading.Barrier(2)

    def run(one: Lander) -> None:
        gate.wait()
        settled[one.agent] = one.pass_once()

    threads = [threading.Thread(target=run, args=(one,)) for one in landers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(settled.values()) == [0, 3], settled  # one landed the batch; the other left it alone
    assert sorted(landed(upstream)) == [f"done {t}: check {n} (agent w{n})" for n, t in enumerate((t1, t2, t3), 1)]
    idle = next(one for one in landers if settled[one.agent] == 0)
    assert idle.checks == 0  # it did not even test: the lease was taken
    assert [one.pass_once() for one in landers] == [0, 0]


def test_a_lease_held_by_a_live_lander_elsewhere_is_respected_until_it_runs_out(tmp_path):
    root, upstream, (t1, _, _) = project(tmp_path, lease_s=60)
    queue_change(upstream, tmp_path, t1, {"checks/check1.txt": "ok\n"}, passes=("checks::check1",))
    far = lander(root, upstream, tmp_path, "far", host="another-machine")
    assert far.lease.take()  # it holds the lease, then goes silent (its machine died)
    here = lander(root, upstream, tmp_path, "here")
    assert here.pass_once() == 0 and here.other is not None and here.other.agent == "far"
    later = lander(root, upstream, tmp_path, "later", clock=lambda: now() + timedelta(seconds=61))
    assert later.pass_once() == 1  # a lease later, anyone may take it
    assert landed(upstream) == [f"done {t1}: check 1 (agent w1)"]


KILLABLE = """
import os, socket, sys
from datetime import datetime, timezone
from pathlib import Path
sys.path[:0] = {paths!r}
from test_team_queue import lander
one = lander(Path({root!r}), {upstream!r}, Path({tmp!r}), "doomed")
one.pass_once()
"""


def test_a_lander_sigkilled_mid_batch_loses_nothing(tmp_path):
    root, upstream, (t1, t2, _) = project(tmp_path)
    # the suite waits while a gate file exists: the doomed lander is killed while it tests the batch
    gate = tmp_path / "gate"
    gate.write_text("closed")
    runner = root / "run_checks.sh"
    (tmp_path / "hold.sh").write_text(f"while [ -e {gate} ]; do sleep 0.05; done\n")
    queue_change(upstream, tmp_path, t1, {"checks/check1.txt": "ok\n",
                                          "run_checks.sh": f"sh {tmp_path / 'hold.sh'}\n" + runner.read_text()},
                 passes=("checks::check1",))
    queue_change(upstream, tmp_path, t2, {"checks/check2.txt": "ok\n"}, agent="w2", passes=("checks::check2",))
    here = str(Path(__file__).parent)
    script = KILLABLE.format(paths=[here, *sys.path], root=str(root), upstream=upstream, tmp=str(tmp_path))
    doomed = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        marker = tmp_path / "doomed" / "harness"
        while doomed.poll() is None and not any(marker.glob("reports/*")):
            threading.Event().wait(0.05)  # its batch run has started (the gate holds it)
        assert doomed.poll() is None
    finally:
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait()
    gate.unlink()
    assert landed(upstream) == []  # killed before it landed anything
    holder = parse_holder(subprocess.run(["git", "--git-dir", upstream, "log", "-1", "--format=%B", LEASE_REF],
                                         capture_output=True, text=True, check=True).stdout)
    assert holder.agent == "doomed" and holds(holder, now=now(), host="elsewhere")  # its lease still runs
    assert not holds(holder, now=now(), host=HOST)  # but its process is gone on this host: free
    heir = lander(root, upstream, tmp_path, "heir")
    assert heir.pass_once() == 2
    assert sorted(landed(upstream)) == [f"done {t1}: check 1 (agent w1)", f"done {t2}: check 2 (agent w2)"]
    assert queued_entries(heir.repo, "origin/main") == []


def test_status_and_progress_show_the_merge_queue(tmp_path):
    root, upstream, (t1, t2, _) = project(tmp_path)
    queue_change(upstream, tmp_path, t2, {"checks/check2.txt": "ok\n"}, agent="w2", passes=("checks::check2",))
    queue_change(upstream, tmp_path, t1, {"checks/check1.txt": "ok\n"}, passes=("checks::check1",))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLUDE_")}

    def status(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "clude", "team", "status", *args, "-C", str(root)],
                              capture_output=True, text=True, env=env)

    shown = json.loads(status("--json").stdout)
    assert shown["merge_queue"] == [t2, t1]  # the order they land in
    assert shown["counts"]["queued"] == 2
    assert {t["id"]: (t["state"], t["holder"]) for t in shown["tasks"]}[t1] == ("queued", "w1")
    assert f"merge queue (lands in this order): {t2}, {t1}" in status().stdout
    progress = upstream_file(upstream, "PROGRESS.md")
    assert f"queued {t2} (w2): verified by its acceptance tests, waiting in the merge queue" in progress
    lander(root, upstream, tmp_path, "L1").pass_once()
    shown = json.loads(status("--json").stdout)
    assert shown["merge_queue"] == [] and shown["counts"]["done"] == 2


def test_merge_rules_a_change_brings_never_merge_it_past_a_conflict(tmp_path):
    """A queued change that adds `.gitattributes` (merge=union) conflicts all the same: the lander merges
    with the rules of the tree it lands on, whatever its clone had checked out before (a batch of an
    earlier check that held that change)."""
    root, upstream, (t1, t2, _) = project(tmp_path)
    queue_change(upstream, tmp_path, t1, {"notes.txt": "one\n"})
    repo = Repo.clone(upstream, tmp_path / "late", agent="w2")
    repo.git("reset", "-q", "--hard", "HEAD~1")
    sneaky = queue_change(upstream, tmp_path, t2, {"notes.txt": "two\n", ".gitattributes": "* merge=union\n"},
                          agent="w2")
    one = lander(root, upstream, tmp_path, "L1")
    one.repo.fetch("+refs/clude/*:refs/clude/*")
    main = one.repo.rev("refs/remotes/origin/main")
    entries = queued_entries(one.repo, main)
    assert [e.task for e in entries] == [t1, t2]
    one.repo.check_out(sneaky)  # what an earlier check left checked out
    stuck = one._at(main, entries)
    assert stuck is not None and stuck[0].task == t2 and stuck[1] == "notes.txt"
    assert one.pass_once() == 2
    assert landed(upstream)[1].startswith(f"release {t2}: its change does not merge")
    assert upstream_file(upstream, "notes.txt") == "one\n"


def test_a_lander_clone_an_earlier_clude_left_without_an_object_is_made_anew_at_the_start(tmp_path):
    """A worker's lander gets a clone of its own made anew at every start (LanderService.of_worker): one
    left by an earlier clude without an object its main reaches (a copy that trusted a commit a racing
    `git clone` held without its tree) failed every pass of the lander, for good."""
    from clude.team.queue.service import LanderService

    root, upstream, (t1, _, _) = project(tmp_path)
    folder = tmp_path / "w1" / "lander"
    Repo.clone(upstream, folder, agent="L1")
    blob = subprocess.run(["git", "-C", str(folder), "rev-parse", f"HEAD:tasks/{t1}.md"], capture_output=True,
                          text=True, check=True).stdout.strip()
    loose = folder / ".git" / "objects" / blob[:2] / blob[2:]
    assert loose.exists()
    loose.unlink()  # the clone's main now reaches a blob it lacks
    queue_change(upstream, tmp_path, t1, {"checks/check1.txt": "ok\n"}, passes=("checks::check1",))
    settings, _ = load_settings(root)
    judge = Judge(settings.test, allowed_env(dict(os.environ), settings.test.pass_env),
                  sandbox=Sandbox.from_config(settings.sandbox), state_dir=tmp_path / "w1" / "harness-lander")
    service = LanderService.of_worker(folder, upstream, judge, EventLog(tmp_path / "state", "L1"), agent="L1",
                                      host=HOST, lease_s=120.0, clock=now, turn=lambda work: work())
    assert service.lander.pass_once() == 1
    assert landed(upstream)[0] == f"done {t1}: check 1 (agent w1)"


def test_a_lander_whose_pass_fails_gives_the_lease_up_for_another_to_land_at_once(tmp_path):
    """A lander keeps the lease after a pass that landed (the next pass needs no push for it). When its
    next pass fails (here its clone lost the object of a queued lock), it gives the lease up: before,
    every other lander waited lease_s (120 s) for a lease held by a live lander that could not land."""
    root, upstream, (t1, t2, _) = project(tmp_path)
    queue_change(upstream, tmp_path, t1, {"checks/check1.txt": "ok\n"}, passes=("checks::check1",))
    first = lander(root, upstream, tmp_path, "L1")
    assert first.pass_once() == 1 and first.lease.held
    queue_change(upstream, tmp_path, t2, {"checks/check2.txt": "ok\n"}, agent="w2", passes=("checks::check2",))
    first.repo.fetch(CLUDE_FETCH)
    blob = first.repo.git("rev-parse", f"refs/remotes/origin/main:{lock_path(t2)}")
    (first.repo.git_dir / "objects" / blob[:2] / blob[2:]).unlink()
    with pytest.raises(KeyError):
        first.pass_once()
    assert not first.lease.held
    second = lander(root, upstream, tmp_path, "L2")
    assert second.pass_once() == 1
    assert f"done {t2}: check 2 (agent w2)" in landed(upstream)


def test_giving_the_lease_up_never_raises_over_the_error_that_ended_the_pass(tmp_path):
    """A release is best effort: one that cannot be pushed (here the clone lost its lease's tip) leaves
    the hold to run out, forgets it, and raises nothing that would hide why the pass failed."""
    root, upstream, (t1, _, _) = project(tmp_path)
    queue_change(upstream, tmp_path, t1, {"checks/check1.txt": "ok\n"}, passes=("checks::check1",))
    one = lander(root, upstream, tmp_path, "L1")
    assert one.pass_once() == 1 and one.lease.held
    one.lease.tip = "ab" * 20  # a commit the clone does not have
    one.lease.release()
    assert not one.lease.held and one.lease.tip is None
