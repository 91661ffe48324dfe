"""One attempt at a task: the agent works in its own tree inside the sandbox, the worker takes the
result back as files into its own clone, checks it (test files, conflict markers), runs the upstream's
acceptance tests on it, then queues it for the merge queue (team/queue) in one push, or records why not."""

from __future__ import annotations

import subprocess
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from clude.gitcli import GitError
from clude.harness.frameworks.base import importable_modules
from clude.team.protocol.objects import remove_tree
from clude.team.work.agent_tree import TooLarge, prepare, take_result
from clude.team.work.ahead import Ahead, Launch, Reserved, free_work_dir, pidfile_of
from clude.team.backends import AgentRun, InfraFailure
from clude.team.backends.base import agent_env
from clude.team.board.board import BoardTask
from clude.harness.compare import PASSING
from clude.harness.verdict import Status
from clude.team.supervision.crashloop import error_signature
from clude.team.board.layout import is_team_path
from clude.team.board.locks import Lock, Queued
from clude.team.work.prompt import task_prompt
from clude.team.board.records import MAX_AGENT_SUMMARY, failure_record
from clude.team.work.review import judged_commit, review
from clude.team.board.tasks import allows_test_changes
from clude.team.work.verify import BaselineUnusable, Verification, baseline, verify_task

MAX_PASSES = 200  # tests a queued change carries for the batch to keep passing
KEPT_STATE_BYTES = 64 * 1024 * 1024  # an agent's state folder larger than this is not kept with its run
KEPT_STATES = 20  # agents' state folders a worker keeps (the newest)
AGENT_PIDFILE = "agent.pid"   # in the worker's folder: the running agent's group, killed by a restarted worker


@dataclass
class Checked:
    """What the worker concluded about one agent result."""

    verification: Verification
    commit: str = ""                  # the agent's change as a commit in the worker's own clone
    changed_tests: tuple[str, ...] = ()
    unverified: bool = False          # landed without tests ([team] verify = "none")


def in_background(call, name: str) -> Future:
    """call() in a daemon thread while the worker goes on (a worker stopping never waits for it): its
    Future, whose result() hands back the value or raises what it raised, in the worker's thread."""
    future: Future = Future()

    def run() -> None:
        try:
            future.set_result(call())
        except BaseException as error:  # handed to the worker's thread by result()
            future.set_exception(error)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


class AttemptSteps:
    """The attempt half of Worker (worker.py): everything between a claim and the next one."""

    def attempt(self, task: BoardTask, lock: Lock, ahead: Ahead | None = None, lease=None) -> str:
        """One attempt at a claimed task; `ahead`: its agent already started (claimed ahead, ahead.py);
        `lease`: the lock's keeper, when one was started at the claim."""
        self.ran = None
        with ahead.lease if ahead else lease or self._keeper(lock) as lease:
            if ahead is not None:  # the agent's tree was made from the upstream as it was at the claim
                self.land.fetch()
            base = self.land.reset_to_upstream(ignored=True, commit=ahead.base if ahead else None)
            # the upstream's verdict (mostly from the machine's cache) is computed while the agent's tree
            # is made and the agent works: a baseline the cache does not know costs the agent no time
            base_verdict = in_background(self._baseline, name=f"baseline-{task.task.id}")
            run, checked = self._run_agent(task, lock, base, base_verdict, launch=ahead.launch if ahead else None)
            if isinstance(run, InfraFailure):
                return self._infra(task, lock, run)
            self.worked()
            if lease.lost:
                self.events.emit("lost", "WARNING", task=task.task.id,
                                 reason="the lease ran out and another worker took the task")
                return "lost"
            if checked.verification.ok:
                return self._land(task, lock, run, base, checked, lease)
            return self._record_failure(task, lock, run, checked.verification, checked.commit)

    def _keeper(self, lock: Lock):
        return self.repo.keeper(lock, lambda m: self.events.emit("lease_error", "WARNING", message=m))

    def _baseline(self):
        self._base_verdict = None if self.team.verify == "none" else baseline(self.land.path, self.judge)
        return self._base_verdict

    # the agent -------------------------------------------------------------------------------
    def _launch(self, task: BoardTask, lock: Lock, source, *, conflict: str = "", overlay: list[str] = (),
                background: bool = False) -> Launch:
        """The agent's prompt written and its tree made (a clone of `source`'s checkout, with `overlay`'s
        files from it); its run started in the background, or left for Launch.wait() to run."""
        n = lock.attempt
        prompt = task_prompt(self.control.path, task.task, n, role=task.task.role or self.c.role or "implementer",
                             roles_dir=Path(self.team.roles_dir) if self.team.roles_dir else None,
                             conflict=conflict)
        runs = self.c.workdir / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        name = run_name(runs, f"{task.task.id}_attempt_{n}" + ("_conflict" if conflict else ""))
        prompt_file = self.c.workdir / "prompts" / f"{name}.md"
        prompt_file.parent.mkdir(parents=True, exist_ok=True)
        prompt_file.write_text(prompt, encoding="utf-8")
        log_path = runs / f"{name}.log"
        held = [later.launch.work for later in (self.ahead, self.prepared) if later is not None and later.launch]
        work = free_work_dir(self.c.workdir, held)
        prepare(source, work, self.c.agent_id, overlay=list(overlay))

        def call() -> AgentRun:
            self.events.emit("agent_started", task=task.task.id, attempt=n, log=str(log_path))
            return self.c.backend.run(prompt_file=prompt_file, workdir=work, task_id=task.task.id,
                                      agent_id=self.c.agent_id, env=self.c.env, log_path=log_path,
                                      timeout_s=self.team.agent_timeout_s, sandbox=self.sandbox,
                                      hidden=self.private_paths, pidfile=pidfile_of(work))

        launch = Launch(work, name, log_path, call)
        if background:
            launch.future = in_background(call, name=f"agent-{task.task.id}")
        return launch

    def _run_agent(self, task: BoardTask, lock: Lock, base: str, baseline_run: Future, conflict: str = "",
                   overlay: list[str] = (), launch: Launch | None = None
                   ) -> tuple[AgentRun | InfraFailure, Checked | None]:
        """The agent in its own tree (`launch`: started already), then its result checked against the
        baseline (the land clone is left to `baseline_run` until then: the agent's tree is a clone of it,
        made while it runs)."""
        n = lock.attempt
        if launch is None:
            launch = self._launch(task, lock, self.land, conflict=conflict, overlay=overlay)
            if baseline_run.done() or self.unusable_base == base:
                # known already (the cache), or this upstream was unusable last time: wait, and an
                # unusable upstream costs no agent run
                try:
                    baseline_run.result()
                except BaselineUnusable as error:
                    return InfraFailure(kind="suite_unusable", message=str(error)), None
        run = launch.wait()
        work, runs = launch.work, self.c.workdir / "runs"
        keep_agent_state(work, runs / f"{launch.name}.clude")
        try:
            base_verdict = baseline_run.result()
        except BaselineUnusable as error:  # found while the agent ran: its work cannot be judged
            self.unusable_base = base
            return InfraFailure(kind="suite_unusable", message=str(error)), None
        self.ran = (lock, run)  # from here on, a crash of the worker is this attempt's failure
        try:
            commit = take_result(self.land, work, base, f"{task.task.id}: {task.task.title} "
                                                        f"(agent {self.c.agent_id}, attempt {n})",
                                 max_file_bytes=int(self.team.max_file_mb * 1024 * 1024),
                                 never_land=(*self.c.backend.spec.never_land, *self.team.never_land))
        except TooLarge as error:
            return run, Checked(Verification(False, str(error), "", []))
        except (GitError, OSError, RecursionError, subprocess.TimeoutExpired) as error:  # its files defeat git
            return run, Checked(Verification(False, f"the agent's result could not be read: "
                                                    f"{type(error).__name__}: {str(error)[:500]}", "", []))
        self.events.emit("agent_finished", task=task.task.id, attempt=n, exit_code=run.exit_code,
                         changed=commit is not None, seconds=round(run.duration_s, 2), cost_usd=run.cost_usd,
                         tokens=run.tokens)
        if run.infra is not None and commit is None and not run.timed_out:
            return self._checked_claim(run.infra, task.task.id), None  # it could not work: nothing to judge
        # a run that changed something, or ran out of time, is judged as the task's whatever its output
        # says of keys or rate limits: words an agent prints never stop a worker nor buy a free retry
        if commit is None:
            why = _nothing_done(run)
            if why is None:  # it ended before changing anything, for no reason known: not the task's
                last = next((line for line in reversed(run.summary.splitlines()) if line.strip()), "")
                how = f"exited with {run.exit_code}" if run.signal is None else f"was killed by signal {run.signal}"
                return InfraFailure(kind="start_failed", message=f"the agent {how} before changing anything: "
                                    f"{last[:200]}"), None
            return run, Checked(Verification(False, why, "", []))
        self.claim_ahead(task)  # the next agent works while this result is checked
        checked = self._check(task, base, commit, base_verdict)
        if run.infra is not None and not checked.verification.ok:
            checked.verification.reason += f" (its output also said: {run.infra.message[:200]})"
        if run.timed_out and not checked.verification.ok:
            checked.verification.reason = (f"the agent ran out of time after {run.duration_s:.0f} s, and what "
                                           f"it left does not pass: {checked.verification.reason}")
        return run, checked

    def _checked_claim(self, failure: InfraFailure, task_id: str) -> InfraFailure:
        """An agent saying a variable is missing that the worker does give it is not believed: an
        unknown failure (weighed by blame.py), never a reason to stop the worker."""
        if failure.kind == "missing_env" and failure.name and failure.name in agent_env(
                self.c.backend, self.c.env, agent_id=self.c.agent_id, task_id=task_id):
            return InfraFailure(kind="start_failed", message=f"the agent said {failure.name} is missing, but "
                                f"it is set in its environment: {failure.message}")
        return failure

    def _check(self, task: BoardTask, base: str, commit: str, base_verdict) -> Checked:
        """Review the change base..commit, then verify it (the worker's clone is left at `commit`)."""
        allowed = allows_test_changes(task.task)
        python = self.judge.python(self.land.path)
        seen = review(self.land, base, commit, allow_tests=allowed, extra_globs=self.team.protected,
                      importable=importable_modules(python) if python else frozenset())
        self._checkout(commit)
        if seen.refused:
            return Checked(Verification(False, seen.refused, seen.detail, []), commit)
        if self.team.verify == "none":
            return Checked(Verification(True, "not verified: [team] verify = \"none\"", ""), commit,
                           tuple(seen.changed_tests), unverified=True)
        if seen.protected:
            judged = judged_commit(self.land, base, commit, seen.protected)
            verification = verify_task(self.land.path, self.judge, base_verdict, tests=task.task.tests,
                                       checkout=self._checkout, judged=judged, own=commit)
            self._checkout(commit)
        else:  # the acceptance tests here; the whole suite once, on the batch, in the merge queue
            verification = verify_task(self.land.path, self.judge, base_verdict, tests=task.task.tests,
                                       whole_suite=False, restore=lambda: self._checkout(commit))
        return Checked(verification, commit, tuple(seen.changed_tests))

    def _checkout(self, commit: str) -> None:
        """The worker's clone exactly at `commit`: what earlier test runs left (bytecode, caches, ignored
        files a test wrote to fool a later run) removed."""
        self.land.check_out(commit, ignored=True)

    # outcomes --------------------------------------------------------------------------------
    def _land(self, task, lock, run, base, checked: Checked, lease, *, retried=False) -> str:
        """Queue the verified change (team/queue) and move on: the lander lands it or sends it back."""
        lease.stop()  # from here the queued lock is held without renewals, until the lander ends it
        queued = Queued(at=self.c.clock(), commit=checked.commit, passes=_passes(checked, self._base_verdict),
                        text=_done_text(task, run, checked), summary=run.summary[-MAX_AGENT_SUMMARY:],
                        log=f"{self.host}:{run.log_path}", unverified=checked.unverified,
                        changed_tests=list(checked.changed_tests))

        result, following = self.repo.queue(lease.lock, checked.commit, queued,
                                            claim_next=self.prepared is None and self.may_claim(),
                                            avoid=self.starts.avoid())
        if result.status == "queued":
            self.holding = self.ran = None  # the lander ends this hold now; nothing of it is ours to give back
            self.failed_in_a_row.clear()
            self.events.emit("queued", task=task.task.id, attempt=lock.attempt, commit=checked.commit)
            self.poke_lander()
            if following is not None:  # claimed in the queueing push, for the next agent to start
                reserved = Reserved(*following, lease=self._keeper(following[1]))
                reserved.lease.start()  # it may wait for the whole run of the agent claimed ahead
                self.prepared = reserved
                self.holding = self.ahead.lock if self.ahead else reserved.lock
                if self.ahead is not None:  # its tree made now, while the agent claimed ahead works
                    self._make_ahead(reserved)
                self.events.emit("claimed", task=following[0].task.id, attempt=following[1].attempt,
                                 with_queue=task.task.id)
            return "queued"
        if result.status == "lost":
            self.events.emit("lost", "WARNING", task=task.task.id, reason=result.detail)
            return "lost"
        if not retried:
            self.events.emit("conflict", "WARNING", task=task.task.id, files=result.detail)
            return self._after_conflict(task, lock, result.detail, lease, checked.commit)
        reason = f"merge conflict with the upstream persisted ({result.detail})"
        return self._record_failure(task, lock, run, Verification(False, reason, "", []))

    def _make_ahead(self, reserved: Reserved) -> None:
        """The reserved task's agent tree and prompt, made from the upstream as it is now (not started)."""
        try:
            with self.repo.guard:
                self.control.refresh()
                base = self.control.head()
                reserved.launch, reserved.base = self._launch(reserved.task, reserved.lock, self.control), base
        except (GitError, OSError, subprocess.TimeoutExpired):  # made when its agent starts instead
            reserved.launch = None

    def _after_conflict(self, task, lock, files: str, lease, work_commit: str) -> str:
        """The work conflicts with what landed meanwhile: once, the agent resolves it on the new upstream."""
        lease.start()
        base = self.land.reset_to_upstream(ignored=True)
        baseline_run = in_background(self._baseline, name=f"baseline-{task.task.id}")  # the clean upstream
        try:
            baseline_run.result()  # before the cherry-pick below changes the files it tests
        except BaselineUnusable as error:
            return self._infra(task, lock, InfraFailure(kind="suite_unusable", message=str(error)))
        self.land.git("cherry-pick", "--no-commit", work_commit, ok=(0, 1))
        self.land.git("reset", "-q")  # markers stay in the files; nothing staged
        overlay = [*self.land.git("diff", "--name-only", "-z").split("\0"),
                   *self.land.git("ls-files", "--others", "--exclude-standard", "-z").split("\0")]
        note = (f"Files with conflict markers: {files}. Resolve them keeping both your change and what "
                "landed upstream, then make sure the tests still pass.")
        run, checked = self._run_agent(task, lock, base, baseline_run, conflict=note,
                                       overlay=[p for p in overlay if p])
        if isinstance(run, InfraFailure):
            return self._infra(task, lock, run)
        if not checked.verification.ok:
            return self._record_failure(task, lock, run, checked.verification, checked.commit)
        return self._land(task, lock, run, base, checked, lease, retried=True)

    def _record_failure(self, task: BoardTask, lock: Lock, run: AgentRun, verification: Verification,
                        commit: str = "") -> str:
        """A failed attempt's record pushed; the files its change touched (`commit`) join the task's
        files, so a worker keeps the next attempt apart from overlapping work (board/overlap.py)."""
        n = lock.attempt
        summary = verification.reason + (f"\n\n{verification.report}" if verification.report else "")
        record = failure_record(task.task, n, agent=self.c.agent_id, verdict_summary=summary,
                                failures=verification.failures,
                                agent_summary=run.summary, log_path=f"{self.host}:{run.log_path}",
                                when=self.c.clock())
        touched = [p for p in self.land.changed_files(f"{commit}^", commit) if not is_team_path(p)] if commit else []
        final = self.repo.record_failure(task, lock, record, verification.reason, touched=touched)
        if verification.verdict is not None and verification.verdict.status is Status.FAILED:
            self.failed_in_a_row.clear()  # its tests ran and judged the work: the environment works
        else:  # the tests could not run, or there was nothing to run them on: alike thrice is suspect
            self.failed_in_a_row.append((task.task.id, error_signature(verification.reason)))
        self.events.emit("failed_attempt", "WARNING", task=task.task.id, attempt=n,
                         reason=verification.reason, final=bool(final))
        return "failed"


def run_name(runs: Path, name: str) -> str:
    """`name`, or name.2, name.3, ...: the first no run in `runs` has used (a task claimed again after
    a run that used no attempt keeps the earlier run's log, prompt and state)."""
    taken, k = name, 1
    while (runs / f"{taken}.log").exists() or (runs / f"{taken}.log").is_symlink():
        k += 1
        taken = f"{name}.{k}"
    return taken


def keep_agent_state(work: Path, keep: Path) -> None:
    """The agent's own state folder (work/.clude: clude run's sessions, messages, logs) moved beside its
    run's log before the tree is made anew; never followed when it is a link, not kept when it is larger
    than KEPT_STATE_BYTES (apparent size: sparse files count whole), and only the KEPT_STATES newest
    of a worker's are kept."""
    state = work / ".clude"
    if not state.is_dir() or state.is_symlink():
        return
    try:
        size = subprocess.run(["du", "-s", "-B1", "--apparent-size", "--", str(state)], capture_output=True,
                              text=True, timeout=60).stdout.split()
        if not size or int(size[0]) > KEPT_STATE_BYTES:
            return
        state.rename(keep)
    except (OSError, ValueError, subprocess.TimeoutExpired):  # the log is kept all the same
        return
    kept = sorted((p for p in keep.parent.glob("*.clude") if p.is_dir() and not p.is_symlink()),
                  key=lambda p: p.stat().st_mtime)
    for old in kept[:-KEPT_STATES]:
        remove_tree(old)


def _nothing_done(run: AgentRun) -> str | None:
    """Why an agent run that changed nothing is the task's failure, in words; None when it ended
    before changing anything for a reason that is not the task's (exited non-zero, unexplained)."""
    if run.timed_out:
        return (f"the agent ran out of time after {run.duration_s:.0f} s ([team] agent_timeout_s) without "
                "changing anything")
    if run.gave_up:
        return f"the agent could not do the task: {' '.join(run.gave_up.split())[:300]}"
    if run.exit_code != 0 or run.signal:
        return None
    return "the agent changed nothing"


def _passes(checked: Checked, base) -> list[str]:
    """The tests the worker saw pass that do not pass on its base (the acceptance tests, mostly): the
    merge queue's batch must keep them passing."""
    verdict = checked.verification.verdict
    if verdict is None:
        return []
    before = base.outcomes if base is not None else {}
    return [t for t, o in verdict.outcomes.items() if o in PASSING and before.get(t) not in PASSING][:MAX_PASSES]


def _done_text(task: BoardTask, run: AgentRun, checked: Checked) -> str:
    said = " ".join(run.summary.split())[:200]
    tests = ""
    if checked.changed_tests:
        new = len(checked.verification.new_tests)
        tests = (f" — changed tests: {', '.join(checked.changed_tests[:8])}"
                 + (f" (+{len(checked.changed_tests) - 8} more)" if len(checked.changed_tests) > 8 else "")
                 + (f"; {new} new test(s)" if new else ""))
    flaky = checked.verification.flaky
    noted = (f" — flaky, not charged: {', '.join(flaky[:5])}" + (" ..." if len(flaky) > 5 else "")) if flaky else ""
    return f"{task.task.title} — {said}{tests}{noted}"
