"""Attacks on the merge queue (team/queue), from an adversarial review: ways to make it block, lose work,
land what it should not, or charge the wrong task; each test proves the attack now fails. Real git, a
real bare upstream, real landers."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

from clude.config.loader import load_settings
from clude.sandbox import Sandbox, allowed_env
from clude.team.logs.events import EventLog, read_events
from clude.team.protocol.git import Repo
from clude.team.board.layout import lock_path, task_path
from clude.team.protocol.lease import lock_on_disk
from clude.team.board.locks import Queued, new_lock, render_lock
from clude.team.queue.enqueue import enqueue
from clude.team.queue.lander import Lander
from clude.team.protocol.sync import update_upstream
from clude.team.work.verify import Judge
from team_helpers import landed, upstream_file
from test_team_queue import HOST, lander, now, project, queue_change


def judged_lander(root: Path, upstream: str, tmp_path: Path, name: str, *, sandbox: bool = True,
                  env: dict | None = None, verify: bool = True, clock=now, host: str = HOST) -> Lander:
    """lander() of test_team_queue, with the judge's sandbox, environment or verification chosen."""
    settings, _ = load_settings(root)
    judge = Judge(settings.test, env if env is not None else allowed_env(dict(os.environ), settings.test.pass_env),
                  sandbox=Sandbox.from_config(settings.sandbox) if sandbox else None,
                  state_dir=tmp_path / name / "harness")
    repo = Repo.clone(upstream, tmp_path / name / "clone", agent=name)
    return Lander(repo, judge if verify else None, EventLog(tmp_path / "state", name), agent=name, host=host,
                  lease_s=settings.team.lease_s, clock=clock)


def human_commit(upstream: str, tmp_path: Path, files: dict[str, str | None], message: str) -> None:
    """Someone pushes a commit to main by hand (None: delete the file)."""
    repo = Repo.clone(upstream, tmp_path / "human", agent="human")

    def change(checkout: Path) -> str:
        for name, text in files.items():
            if text is None:
                (checkout / name).unlink()
            else:
                (checkout / name).write_text(text)
        return message

    update_upstream(repo, change)


# 1 -------------------------------------------------------------------------------------------------------
def test_a_red_batch_whose_check_outlasts_the_lease_is_never_settled_even_by_a_lone_lander(tmp_path):
    """The lease is renewed only between checks (LandingLease.take in Lander._check), never during a test
    run. Once a run outlasts lease_s, take() sees its hold over and goes by current(): the lease ref *as
    last fetched* (at the start of the pass, before this pass's own take), so it pushes a child of that
    stale tip, which git refuses as a non-fast-forward of the lander's own newer lease commit: a "race",
    LeaseLost, the pass is dropped. Every pass redoes the first check and never reaches the second. A red
    verdict that is not cached (a crash, a timeout, an error) so blocks the queue forever, even with a
    single lander and no competitor (with the defaults: a batch of two whose suite hangs to the 900 s
    test timeout, against lease_s = 120; cached red verdicts creep on by one check per pass). With two
    landers the other one also takes the lease mid-run and starts the batch over."""
    root, upstream, (t1, t2, _) = project(tmp_path, lease_s=1)
    queue_change(upstream, tmp_path, t1, {"checks/check1.txt": "ok\n"}, passes=("checks::check1",))
    crash = "sleep 1.5\nkill -KILL $$\n" + (root / "run_checks.sh").read_text()  # uncacheable red, > lease_s
    queue_change(upstream, tmp_path, t2, {"checks/check2.txt": "ok\n", "run_checks.sh": crash}, agent="w2",
                 passes=("checks::check2",))
    alone = lander(root, upstream, tmp_path, "L1")
    settled = [alone.pass_once() for _ in range(4)]
    # the batch (red), then t1 alone (green, lands), t2 sent back: one pass of two checks
    assert sum(settled) == 2, (settled, alone.checks, landed(upstream))
    assert landed(upstream)[0] == f"done {t1}: check 1 (agent w1)"


# 3 -------------------------------------------------------------------------------------------------------
FLAKY_ONCE = """\
n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}
if [ "$n" = 2 ]; then echo flaky > checks/base.txt; fi
"""


def test_a_flaky_failure_of_the_batch_charges_its_last_change_which_was_never_tested(tmp_path):
    """When the first half of a red batch lands, settle_batch reuses the batch's red verdict for the
    second half ("the very tree found red") and, down to one change, sends it back on that verdict. A
    flaky test that failed once in the batch run so charges an attempt to the last change in the queue,
    which no check ever saw fail on its own; no re-run confirms the failure (and the red verdict is kept
    in the machine's verdict cache for that tree besides)."""
    root, upstream, (t1, t2, _) = project(tmp_path)
    counter = tmp_path / "runs.count"  # run 1: the lander's baseline; run 2 (the batch) flakes; then fine
    human_commit(upstream, tmp_path, {"run_checks.sh": FLAKY_ONCE.format(counter=counter)
                                      + (root / "run_checks.sh").read_text()}, "a flaky suite")
    queue_change(upstream, tmp_path, t1, {"checks/check1.txt": "ok\n"}, passes=("checks::check1",))
    queue_change(upstream, tmp_path, t2, {"checks/check2.txt": "ok\n"}, agent="w2", passes=("checks::check2",))
    one = judged_lander(root, upstream, tmp_path, "L1", sandbox=False)  # the counter lives outside the tree
    assert one.pass_once() == 2
    # the baseline, the flaky batch, t1 alone, then t2 on top of t1 checked again, fresh: it passes
    assert counter.read_text().strip() == "4"
    assert upstream_file(upstream, f"tasks/failures/{t2}_attempt_1.md") is None, landed(upstream)
    assert sorted(landed(upstream)) == [f"done {t1}: check 1 (agent w1)", f"done {t2}: check 2 (agent w2)"]
    # named, never charged: in PROGRESS.md and the events
    assert "note flaky (L1): checks::base failed in a batch run and passed on a fresh run" in \
        upstream_file(upstream, "PROGRESS.md")
    flaky = [e for e in read_events(tmp_path / "state") if e["kind"] == "flaky"]
    assert [e["tests"] for e in flaky] == [["checks::base"]]


def test_a_single_queued_change_that_fails_once_is_run_again_and_lands(tmp_path):
    """A batch of one change whose run flakes: seen red once only, it is run again before anyone is
    charged, lands, and the flaky test is named."""
    root, upstream, (t1, _, _) = project(tmp_path)
    counter = tmp_path / "runs.count"  # run 1: the lander's baseline; run 2 (the change) flakes
    human_commit(upstream, tmp_path, {"run_checks.sh": FLAKY_ONCE.format(counter=counter)
                                      + (root / "run_checks.sh").read_text()}, "a flaky suite")
    queue_change(upstream, tmp_path, t1, {"checks/check1.txt": "ok\n"}, passes=("checks::check1",))
    one = judged_lander(root, upstream, tmp_path, "L1", sandbox=False)
    assert one.pass_once() == 1
    assert counter.read_text().strip() == "3" and one.checks == 2
    assert upstream_file(upstream, f"tasks/failures/{t1}_attempt_1.md") is None
    assert landed(upstream) == [f"done {t1}: check 1 (agent w1)"]
    assert "checks::base failed in a batch run" in upstream_file(upstream, "PROGRESS.md")


# 4 -------------------------------------------------------------------------------------------------------
def test_a_queued_task_whose_task_file_is_gone_blocks_every_other_queued_change(tmp_path):
    """queued_entries() takes every queued lock on main, but _books() reads each entry's task file
    (its title, max_attempts) and write_done() rewrites it: a queued task whose file was removed (or
    whose front matter a person broke) raises in every pass, after the batch was tested, so no change
    of the queue ever lands again; the lander keeps (and renews) the lease meanwhile."""
    root, upstream, (t1, t2, _) = project(tmp_path)
    queue_change(upstream, tmp_path, t1, {"checks/check1.txt": "ok\n"}, passes=("checks::check1",))
    queue_change(upstream, tmp_path, t2, {"checks/check2.txt": "ok\n"}, agent="w2", passes=("checks::check2",))
    human_commit(upstream, tmp_path, {task_path(t1): None}, f"drop {t1}")
    one = lander(root, upstream, tmp_path, "L1")
    failures = []
    for _ in range(3):
        try:
            one.pass_once()
        except Exception as error:  # what LanderService does: say it, pass again later
            failures.append(repr(error))
    assert f"done {t2}: check 2 (agent w2)" in landed(upstream), failures


# 5 -------------------------------------------------------------------------------------------------------
def test_a_lander_that_cannot_run_the_tests_squats_the_lease_forever(tmp_path):
    """pass_once() takes the lease before the baseline; when the baseline is unusable on this lander
    (a program missing on its host, a broken harness folder) it emits lander_blocked and returns with the
    lease still held, and every later pass (every lease_s/2, LanderService) renews it. Healthy landers on
    other hosts never get it: the team's whole queue waits on one bad host."""
    root, upstream, (t1, _, _) = project(tmp_path, lease_s=4)
    queue_change(upstream, tmp_path, t1, {"checks/check1.txt": "ok\n"}, passes=("checks::check1",))
    broken = judged_lander(root, upstream, tmp_path, "broken", env={"PATH": str(tmp_path / "nothing")},
                           host="host-without-sh")
    healthy = lander(root, upstream, tmp_path, "healthy")
    settled = []
    for _ in range(4):  # 8 s, two whole leases
        assert broken.pass_once() == 0  # lander_blocked: "the tests cannot run on the upstream"
        settled.append(healthy.pass_once())
        time.sleep(2)
    assert sum(settled) == 1, (settled, healthy.other)


# 6 -------------------------------------------------------------------------------------------------------
def test_a_dead_lander_whose_clock_ran_ahead_blocks_the_queue_far_longer_than_a_lease(tmp_path):
    """A lease's hold ends at the `until` its holder wrote by its own clock: a lander on a machine whose
    clock is a day ahead that dies (or is cut off) would hold the queue for a day. Another lander counts
    such a hold for at most lease_s from when it first saw it unchanged, by its own clock."""
    root, upstream, (t1, _, _) = project(tmp_path, lease_s=60)
    queue_change(upstream, tmp_path, t1, {"checks/check1.txt": "ok\n"}, passes=("checks::check1",))
    ahead = lander(root, upstream, tmp_path, "ahead", host="machine-a-day-ahead",
                   clock=lambda: now() + timedelta(days=1))
    assert ahead.lease.take()  # then its machine goes away
    later = [timedelta(0)]
    watcher = lander(root, upstream, tmp_path, "watcher", clock=lambda: now() + later[0])
    assert watcher.pass_once() == 0 and watcher.other.agent == "ahead"  # held, as far as it can tell
    later[0] = timedelta(seconds=59)
    assert watcher.pass_once() == 0  # still within a lease of first seeing it
    later[0] = timedelta(seconds=61)
    assert watcher.pass_once() == 1, watcher.other  # a lease later, unchanged: taken over


# 7 -------------------------------------------------------------------------------------------------------
def test_a_worker_stopped_after_its_queueing_push_drops_its_queued_change(tmp_path):
    """same_holder() ignores `queued`: the worker's exit paths (_release_on_exit on Ctrl-C,
    _charge_or_release on a crash) must not remove a lock the lander owns now: `self.holding` still names the
    queued lock from the queueing push until attempt() returns (a Ctrl-C during or right after the
    push: the push often completes on the upstream while git is being interrupted). The verified change
    is dropped without a word to the lander (and _charge_or_release even writes a failure record)."""
    from clude.team.backends import get_backend
    from clude.team.protocol.repository import TeamRepository
    from clude.team.work.worker import Worker, WorkerConfig

    root, upstream, (t1, _, _) = project(tmp_path)
    settings, _ = load_settings(root)
    w = Worker(WorkerConfig(agent_id="a1", upstream=upstream, workdir=tmp_path / "agents" / "a1",
                            state_dir=tmp_path / "state", backend=get_backend("command", command="true"),
                            settings=settings))
    w.land = Repo.clone(upstream, tmp_path / "agents" / "a1" / "land", agent="a1")
    w.control = Repo.clone(upstream, tmp_path / "agents" / "a1" / "control", agent="a1")
    w.repo = TeamRepository(w.control, w.land, agent="a1", host=w.host, role=None, lease_s=120, clock=now,
                            state_dir=tmp_path / "state", rng=w.rng)
    lock = new_lock(t1, "a1", w.host, os.getpid(), 1, now(), 120)

    def claim(checkout: Path) -> str:
        (checkout / lock_path(t1)).write_text(render_lock(lock), encoding="utf-8")
        return f"claim {t1}"

    update_upstream(w.land, claim)
    (w.land.path / "checks/check1.txt").write_text("ok\n")
    w.land.commit_all(f"{t1}: change")
    commit = w.land.head()
    queued = Queued(at=now(), commit=commit, passes=["checks::check1"], text="check 1 works")
    assert enqueue(w.land, lock, commit, queued).status == "queued"
    w.holding = lock  # as in Worker.cycle while attempt() -> _land() -> enqueue() has not returned yet
    w._release_on_exit()  # the KeyboardInterrupt path of Worker._run
    w.land.fetch()
    w.land.reset_to_upstream()
    on_main = lock_on_disk(w.land.path, t1)
    assert on_main is not None and on_main.queued is not None, "the queued lock was released"
    assert lander(root, upstream, tmp_path, "L1").pass_once() == 1


# 8 -------------------------------------------------------------------------------------------------------
def test_a_lander_with_verify_none_lands_verified_changes_as_done_without_any_suite_run(tmp_path):
    """The lander judges by its own worker's [team] verify, not by the queued change: a lander of a
    worker started with verify = "none" lands a change queued by a verifying worker (which ran only the
    acceptance tests, whole_suite=False) as plainly `done`, verified, though it breaks a test that passes
    on main and the whole suite never ran on it. Such entries should wait for a verifying lander (or
    the verify mode should come from main, the same for every worker)."""
    root, upstream, (t1, _, _) = project(tmp_path)
    queue_change(upstream, tmp_path, t1, {"checks/check1.txt": "ok\n", "checks/base.txt": "broken\n"},
                 passes=("checks::check1",))
    careless = judged_lander(root, upstream, tmp_path, "careless", verify=False)
    careless.pass_once()
    assert upstream_file(upstream, "checks/base.txt") == "ok\n", landed(upstream)


# 9 -------------------------------------------------------------------------------------------------------
def test_a_change_is_given_back_as_a_conflict_with_a_change_that_is_itself_sent_back(tmp_path):
    """_check() cherry-picks landing + batch before it tests anything, and a conflict names the later
    change at once (Rejected.entry): it is released ("does not merge with the changes queued before
    it"), its verified work thrown away, even when the change it conflicts with is then found red and
    never lands. A hostile agent can so queue a broken change touching many files and have every
    change queued after it discarded, pass after pass, without ever using their attempts (a conflict is
    free), so those tasks neither land nor fail. A conflict should only count against what lands: set
    the entry aside and apply it again once the entries before it are settled."""
    root, upstream, (t1, t2, _) = project(tmp_path)
    queue_change(upstream, tmp_path, t1, {"notes.txt": "one\n", "checks/base.txt": "broken\n"})  # red
    queue_change(upstream, tmp_path, t2, {"notes.txt": "two\n", "checks/check2.txt": "ok\n"}, agent="w2",
                 passes=("checks::check2",))  # good, merges with main; conflicts only with t1
    one = lander(root, upstream, tmp_path, "L1")
    assert one.pass_once() == 2
    lines = landed(upstream)
    assert any(line.startswith(f"attempt 1 of {t1} failed") for line in lines), lines
    assert f"done {t2}: check 2 (agent w2)" in lines, lines  # released instead: its work is lost


# 10 ------------------------------------------------------------------------------------------------------
def test_a_lander_fetching_while_a_change_is_queued_releases_it_as_not_on_the_upstream(tmp_path):
    """enqueue() pushes main (the lock marked queued) and the queue's ref (refs/clude/queued) with
    --atomic, but --atomic only means both refs move or neither: a fetch running at the same moment can
    be advertised the new main and not yet the new queue ref (git updates loose refs one by one; a
    plain shell loop of atomic pushes against a fetch loop shows it in several per cent of fetches). The
    lander's pass then finds the commit "missing" and releases the task at once ("its queued change is
    not on the upstream"): verified work thrown away. A missing change should be looked for again
    (ls-remote of its ref, or the next pass) before it is released."""
    from clude.team.protocol.admin import add_task, view

    root, upstream, first = project(tmp_path)
    tasks = list(first) + [add_task(view(root, upstream), {"title": f"more {n}"})[0].id for n in range(37)]
    staged = []
    for n, task in enumerate(tasks):  # each worker's claimed task and its change, ready to queue
        repo = Repo.clone(upstream, tmp_path / "workers" / task, agent=f"w{n}")
        lock = new_lock(task, f"w{n}", HOST, os.getpid(), 1, now(), 600)

        def claim(checkout: Path, lock=lock) -> str:
            (checkout / lock_path(lock.task)).write_text(render_lock(lock), encoding="utf-8")
            return f"claim {lock.task}"

        update_upstream(repo, claim)
        (repo.path / f"file{n}.txt").write_text(f"{n}\n")
        repo.commit_all(f"{task}: change")
        staged.append((repo, lock, repo.head()))
    reader = judged_lander(root, upstream, tmp_path, "reader", verify=False)
    done, seen_missing = [], []

    def queue_all() -> None:
        for repo, lock, commit in staged:
            enqueue(repo, lock, commit, Queued(at=now(), commit=commit, text=f"{lock.task} works"))
        done.append(True)

    import threading

    from clude.team.queue.enqueue import CLUDE_FETCH
    from clude.team.queue.lander import queued_entries

    writer = threading.Thread(target=queue_all)
    writer.start()
    while not done:  # the first steps of Lander.pass_once, as they are: what it would release
        reader.repo.fetch(CLUDE_FETCH)
        main = reader.repo.git("rev-parse", "origin/main")
        _, missing = reader._present(queued_entries(reader.repo, main))
        seen_missing += [e.task for e in missing]
    writer.join()
    reader.repo.fetch(CLUDE_FETCH)
    assert reader._present(queued_entries(reader.repo, "origin/main"))[1] == {}  # they all are there
    # every task seen "missing" here would have been released by pass_once (release ... not on the upstream)
    assert seen_missing == [], f"{len(set(seen_missing))} of {len(tasks)} queued changes seen missing"
