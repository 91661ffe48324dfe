"""The worker loop: sync, claim a task by pushing its lock, run the agent, verify, then land the work or
record the failure. Every change to the upstream is one push that lands whole or is retried."""

from __future__ import annotations

import os
import random
import socket
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping

from clude.config.settings import Settings
from clude.team.backends import AgentRun, Backend, InfraFailure
from clude.team.board import BoardTask, all_settled, claimable, read_board
from clude.team.events import EventLog
from clude.team.heartbeat import Heartbeat
from clude.team.git import Repo
from clude.team.landing import commit_work, land
from clude.team.layout import failure_path, lock_path, task_path
from clude.team.lease import LeaseKeeper, lock_on_disk, same_holder
from clude.team.locks import Lock, new_lock, render_lock
from clude.team.prompt import task_prompt
from clude.team.records import append_progress, failure_record, progress_line
from clude.team.sync import UpstreamRejected, update_upstream
from clude.team.tasks import parse_task, render_task
from clude.team.turns import push_turn
from clude.team.verify import BaselineUnusable, Verification, baseline, verify_task

# Exit codes of `clude team worker`.
EXIT_SETTLED = 0        # no task left to do (or --max-tasks reached)
EXIT_UPSTREAM = 3       # the upstream refuses pushes (permissions, hooks, disk): says why
EXIT_INFRA = 4          # the agent cannot run here (MAX_INFRA_IN_A_ROW infrastructure failures in a row)
EXIT_CRASHED = 5        # an unexpected error (the traceback is in the worker's log); the task released
EXIT_INTERRUPTED = 130
MAX_INFRA_IN_A_ROW = 3  # then the worker stops; the monitor (and a person) must fix the environment
CLAIM_SPREAD = 16       # equal-priority tasks a worker picks among at random, to spread the claims


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class WorkerConfig:
    agent_id: str
    upstream: str
    workdir: Path                 # this worker's folder: control/ and work/ clones, prompts/, runs/
    state_dir: Path               # events.jsonl and logs/ (the project's .clude on this machine)
    backend: Backend
    settings: Settings
    role: str | None = None
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    forever: bool = False         # keep waiting for new tasks when everything is settled
    max_tasks: int | None = None  # stop after this many attempts (tests, one-shot runs)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], datetime] = utc_now
    parent_pid: int | None = None  # exit (releasing the task) when this process is gone: the monitor


class Worker:
    def __init__(self, config: WorkerConfig):
        self.c = config
        self.team = config.settings.team
        self.events = EventLog(config.state_dir, config.agent_id, dict(config.env))
        self.host = socket.gethostname()
        # CONTROL_GUARD: the control clone is used by this loop and by the lease thread; one at a time.
        self.control_guard = threading.Lock()
        self.control: Repo | None = None
        self.work: Repo | None = None
        self.infra_in_a_row: list[InfraFailure] = []
        self.failed_in_a_row: list[tuple[str, str]] = []  # (task, error signature) of failed attempts
        self.attempts_made = 0
        self.holding: Lock | None = None
        self.prepared: tuple[BoardTask, Lock] | None = None  # the next task, claimed with a landing
        self._next: tuple[BoardTask, Lock] | None = None
        self.rng = random.Random(config.agent_id)

    # the loop --------------------------------------------------------------------------------
    def run(self) -> int:
        self.events.emit("worker_started", backend=self.c.backend.name, role=self.c.role,
                         upstream=self.c.upstream, pid=os.getpid())
        beat = Heartbeat(self.c.state_dir, self.c.agent_id, self.team.heartbeat_s, self.c.parent_pid)
        self.heartbeat = beat
        beat.start()
        try:
            return self._run()
        finally:
            beat.stop()

    def _run(self) -> int:
        try:
            problems = self.c.backend.check(self.c.env)
            if problems:  # a required variable or the program is missing: no task is touched
                self.events.emit("worker_blocked", "ERROR", reason=problems[0].message, cause=problems[0].kind)
                return EXIT_INFRA
            self._open()
            while True:
                outcome = self.cycle()
                if outcome == "settled" and not self.c.forever:
                    self.events.emit("worker_done", reason="every task is done, failed or blocked")
                    return EXIT_SETTLED
                if self.c.max_tasks is not None and self.attempts_made >= self.c.max_tasks:
                    return EXIT_SETTLED
                suspect = environment_suspect(self.infra_in_a_row, self.failed_in_a_row)
                if suspect:
                    self.events.emit("worker_blocked", "ERROR", **suspect)
                    return EXIT_INFRA
                if outcome in ("idle", "settled"):
                    self.c.sleep(self.team.poll_s)
        except UpstreamRejected as error:
            self.events.emit("worker_stopped", "ERROR", reason=f"the upstream refuses pushes: {error}")
            return EXIT_UPSTREAM
        except KeyboardInterrupt:
            self._release_on_exit()
            self.events.emit("worker_stopped", "WARNING", reason="interrupted")
            return EXIT_INTERRUPTED
        except Exception as error:  # a bug or an OS/git failure: say it, give the task back, stop
            self._release_on_exit()
            self.events.emit("worker_stopped", "ERROR", reason=f"{type(error).__name__}: {error}",
                             traceback=traceback.format_exc()[-4000:])
            return EXIT_CRASHED

    def _open(self) -> None:
        """This worker's two clones: `control` for the board (claims, leases, records), `work` for the agent."""
        self.c.workdir.mkdir(parents=True, exist_ok=True)
        for clone in ("control", "work"):  # git's own locks left by a worker killed mid-command
            git_dir = self.c.workdir / clone / ".git"
            for stale in [*git_dir.glob("*.lock"), *git_dir.glob("refs/**/*.lock")]:
                stale.unlink(missing_ok=True)
        self.control = Repo.clone(self.c.upstream, self.c.workdir / "control", agent=self.c.agent_id)
        self.work = Repo.clone(self.c.upstream, self.c.workdir / "work", agent=self.c.agent_id)

    def cycle(self) -> str:
        """One look at the board: 'settled', 'idle', or what became of the task it claimed."""
        self._state("claiming")
        claimed, self.prepared = self.prepared or self.claim(), None
        if isinstance(claimed, str):
            self._state("idle")
            return claimed
        task, lock = claimed
        self.holding = lock
        self._state("working", task.task.id, lock.attempt)
        self.attempts_made += 1
        outcome = self.attempt(task, lock)  # on an interruption `holding` stays: released on the way out
        self.holding = self.prepared[1] if self.prepared else None
        return outcome

    def _state(self, state: str, task: str | None = None, attempt: int | None = None) -> None:
        beat = getattr(self, "heartbeat", None)
        if beat is not None:
            beat.set(state, task, attempt)

    # claiming --------------------------------------------------------------------------------
    def _board(self, checkout: Path):
        return read_board(checkout, now=self.c.clock(), lease_s=self.team.lease_s,
                          lock_written_at=self.control.commit_time)

    def _pick(self, board, ready: list[str]) -> str:
        """The highest-priority claimable task; among several of that priority, one chosen at random
        (seeded by the agent id) from the first CLAIM_SPREAD, so workers racing for the board do not all
        push for the same task and lose to each other."""
        top = board.tasks[ready[0]].task.priority
        same = [t for t in ready[:CLAIM_SPREAD] if board.tasks[t].task.priority == top]
        return same[self.rng.randrange(len(same))]

    def _claim_next(self, checkout: Path, *, exclude: str) -> tuple[BoardTask, Lock] | None:
        """In a landing's push, the claim of this worker's next task (one push instead of two)."""
        self._next = None
        if self.c.max_tasks is not None and self.attempts_made >= self.c.max_tasks:
            return None
        board = read_board(checkout, now=self.c.clock(), lease_s=self.team.lease_s,
                           lock_written_at=self.work.commit_time)
        ready = [t for t in claimable(board, role=self.c.role, now=self.c.clock()) if t != exclude]
        if not ready:
            return None
        task = board.tasks[self._pick(board, ready)]
        lock = new_lock(task.task.id, self.c.agent_id, self.host, os.getpid(), task.attempts + 1,
                        self.c.clock(), self.team.lease_s)
        (checkout / lock_path(task.task.id)).write_text(render_lock(lock), encoding="utf-8")
        self._next = (task, lock)
        return self._next

    def claim(self) -> tuple[BoardTask, Lock] | str:
        picked: dict = {}

        def change(checkout: Path) -> str | None:
            picked.clear()
            board = self._board(checkout)
            if all_settled(board):
                picked["none"] = "settled"
                return None
            ready = claimable(board, role=self.c.role, now=self.c.clock())
            if not ready:
                picked["none"] = "idle"
                return None
            task = board.tasks[self._pick(board, ready)]
            lock = new_lock(task.task.id, self.c.agent_id, self.host, os.getpid(), task.attempts + 1,
                            self.c.clock(), self.team.lease_s)
            path = checkout / lock_path(task.task.id)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render_lock(lock), encoding="utf-8")
            picked.update(task=task, lock=lock)
            broke = f", breaking the expired lock of {task.lock.agent}" if task.lock else ""
            return f"claim {task.task.id} (agent {self.c.agent_id}, attempt {lock.attempt}){broke}"

        with push_turn(self.c.state_dir), self.control_guard:
            update_upstream(self.control, change)
        if "lock" not in picked:
            return picked.get("none", "idle")
        task, lock = picked["task"], picked["lock"]
        self.events.emit("claimed", task=task.task.id, attempt=lock.attempt,
                         broke_lock_of=task.lock.agent if task.lock else None)
        return task, lock

    # one attempt -----------------------------------------------------------------------------
    def attempt(self, task: BoardTask, lock: Lock) -> str:
        with LeaseKeeper(self.control, self.control_guard, lock, self.team.lease_s, self.c.clock,
                         on_error=lambda m: self.events.emit("lease_error", "WARNING", message=m)) as lease:
            base = self.work.reset_to_upstream()
            test_env = self._test_env()
            try:
                base_verdict = baseline(self.work.path, self.c.settings.test, test_env)
            except BaselineUnusable as error:
                return self._infra(task, lock, InfraFailure(kind="start_failed", message=str(error)))
            run, verification = self._run_agent(task, lock, base, base_verdict, test_env)
            if isinstance(run, InfraFailure):
                return self._infra(task, lock, run)
            self.infra_in_a_row.clear()
            if lease.lost:
                self.events.emit("lost", "WARNING", task=task.task.id,
                                 reason="the lease ran out and another worker took the task")
                return "lost"
            if verification.ok:
                return self._land(task, lock, run, base, base_verdict, test_env, lease)
            return self._record_failure(task, lock, run, verification)

    def _run_agent(self, task: BoardTask, lock: Lock, base: str, base_verdict, test_env,
                   conflict: str = "") -> tuple[AgentRun | InfraFailure, Verification | None]:
        n = lock.attempt
        prompt = task_prompt(self.control.path, task.task, n, role=task.task.role or self.c.role or "implementer",
                             roles_dir=Path(self.team.roles_dir) if self.team.roles_dir else None,
                             conflict=conflict)
        suffix = "_conflict" if conflict else ""
        prompt_file = self.c.workdir / "prompts" / f"{task.task.id}_attempt_{n}{suffix}.md"
        prompt_file.parent.mkdir(parents=True, exist_ok=True)
        prompt_file.write_text(prompt, encoding="utf-8")
        log_path = self.c.workdir / "runs" / f"{task.task.id}_attempt_{n}{suffix}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.events.emit("agent_started", task=task.task.id, attempt=n, log=str(log_path))
        run = self.c.backend.run(prompt_file=prompt_file, workdir=self.work.path, task_id=task.task.id,
                                 agent_id=self.c.agent_id, env=self.c.env, log_path=log_path,
                                 timeout_s=self.team.agent_timeout_s)
        changed = bool(self.work.git("status", "--porcelain").strip()) or self.work.head() != base
        self.events.emit("agent_finished", task=task.task.id, attempt=n, exit_code=run.exit_code,
                         changed=changed, seconds=round(run.duration_s, 2), cost_usd=run.cost_usd)
        if run.infra is not None:
            return run.infra, None
        if (run.exit_code != 0 or run.signal) and not run.timed_out and not changed:
            last = next((line for line in reversed(run.summary.splitlines()) if line.strip()), "")
            return InfraFailure(kind="start_failed", message=f"the agent exited with {run.exit_code} "
                                f"before changing anything: {last[:200]}", name=None,
                                retry_after_s=None), None
        committed = commit_work(self.work, base, f"{task.task.id}: {task.task.title} "
                                                 f"(agent {self.c.agent_id}, attempt {n})")
        if not committed:
            return run, Verification(False, "the agent changed nothing", "", [])
        return run, verify_task(self.work.path, self.c.settings.test, base_verdict, tests=task.task.tests,
                                env=test_env)

    def _test_env(self) -> dict[str, str]:
        """What verification runs with: no secrets, and no bytecode written into the clone."""
        from clude.secrets import without_secrets
        return {**without_secrets(self.c.env), "PYTHONDONTWRITEBYTECODE": "1"}

    # outcomes --------------------------------------------------------------------------------
    def _land(self, task, lock, run, base, base_verdict, test_env, lease, *, retried=False) -> str:
        unusable: list[str] = []

        def reverify(upstream: str) -> str | None:
            head = self.work.head()
            self.work.git("checkout", "-q", "--detach", upstream)
            try:
                new_base = baseline(self.work.path, self.c.settings.test, test_env)
            except BaselineUnusable as error:
                unusable.append(str(error))
                return f"the tests cannot run on the new upstream: {error}"
            finally:
                self.work.git("checkout", "-q", head)
            again = verify_task(self.work.path, self.c.settings.test, new_base, tests=task.task.tests,
                                env=test_env)
            return None if again.ok else again.reason

        def bookkeeping(checkout: Path) -> str:
            done = parse_task((checkout / task_path(task.task.id)).read_text(encoding="utf-8"),
                              task_path(task.task.id))
            (checkout / task_path(task.task.id)).write_text(
                render_task(done.model_copy(update={"status": "done"})), encoding="utf-8")
            (checkout / lock_path(task.task.id)).unlink(missing_ok=True)
            append_progress(checkout, progress_line("done", task.task.id, f"{task.task.title} — "
                                                    f"{_one_line(run.summary)[:200]}", agent=self.c.agent_id,
                                                    when=self.c.clock()))
            following = self._claim_next(checkout, exclude=task.task.id)
            then = f"; claim {following[0].task.id} (attempt {following[1].attempt})" if following else ""
            return f"done {task.task.id}: {task.task.title} (agent {self.c.agent_id}){then}"

        self.work.git("checkout", "-q", "-B", "main")
        with push_turn(self.c.state_dir):
            landing = land(self.work, lease.lock, verified_on=base, bookkeeping=bookkeeping, reverify=reverify)
        lease.stop()
        if landing.status == "landed":
            self.failed_in_a_row.clear()
            self.events.emit("done", task=task.task.id, attempt=lock.attempt, commit=landing.commit)
            if self._next is not None:  # claimed in the landing's own push
                self.prepared = self._next
                self.holding = self._next[1]
                self.events.emit("claimed", task=self._next[0].task.id, attempt=self._next[1].attempt,
                                 with_landing=task.task.id)
            return "done"
        if landing.status == "lost":
            self.events.emit("lost", "WARNING", task=task.task.id, reason=landing.detail)
            return "lost"
        if landing.status == "conflict" and not retried:
            self.events.emit("conflict", "WARNING", task=task.task.id, files=landing.detail)
            return self._after_conflict(task, lock, landing.detail, test_env, lease)
        if unusable:  # the upstream's own tests broke meanwhile: not this task's failure
            return self._infra(task, lock, InfraFailure(kind="start_failed", message=unusable[-1]))
        reason = (f"merge conflict with the upstream persisted ({landing.detail})"
                  if landing.status == "conflict" else f"no longer verified on the new upstream: {landing.detail}")
        return self._record_failure(task, lock, run, Verification(False, reason, "", []))

    def _after_conflict(self, task, lock, files: str, test_env, lease) -> str:
        """The work conflicts with what landed meanwhile: once, the agent resolves it on the new upstream."""
        work_commit = self.work.head()
        base = self.work.reset_to_upstream()
        try:
            base_verdict = baseline(self.work.path, self.c.settings.test, test_env)  # the clean upstream
        except BaselineUnusable as error:
            return self._infra(task, lock, InfraFailure(kind="start_failed", message=str(error)))
        self.work.git("cherry-pick", "--no-commit", work_commit, ok=(0, 1))
        self.work.git("reset", "-q")  # markers stay in the files; nothing staged
        note = (f"Files with conflict markers: {files}. Resolve them keeping both your change and what "
                "landed upstream, then make sure the tests still pass.")
        run, verification = self._run_agent(task, lock, base, base_verdict, test_env, conflict=note)
        if isinstance(run, InfraFailure):
            return self._infra(task, lock, run)
        if not verification.ok:
            return self._record_failure(task, lock, run, verification)
        return self._land(task, lock, run, base, base_verdict, test_env, lease, retried=True)

    def _record_failure(self, task: BoardTask, lock: Lock, run: AgentRun, verification: Verification) -> str:
        n = lock.attempt
        summary = verification.reason + (f"\n\n{verification.report}" if verification.report else "")
        record = failure_record(task.task, n, agent=self.c.agent_id, verdict_summary=summary,
                                failures=verification.failures,
                                agent_summary=run.summary, log_path=f"{self.host}:{run.log_path}",
                                when=self.c.clock())
        final: dict = {}

        def change(checkout: Path) -> str | None:
            current = lock_on_disk(checkout, task.task.id)
            if current is None or not same_holder(current, lock):
                return None  # someone else holds it now: our attempt does not count
            (checkout / lock_path(task.task.id)).unlink()
            path = checkout / failure_path(task.task.id, n)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(record, encoding="utf-8")
            used = len(list(path.parent.glob(f"{task.task.id}_attempt_*.md")))
            final["failed"] = used >= task.task.max_attempts
            if final["failed"]:
                file = checkout / task_path(task.task.id)
                now_task = parse_task(file.read_text(encoding="utf-8"), task_path(task.task.id))
                file.write_text(render_task(now_task.model_copy(update={"status": "failed"})), encoding="utf-8")
                append_progress(checkout, progress_line(
                    "failed", task.task.id, f"{task.task.title} — failed {used} attempts; last: "
                    f"{verification.reason}", agent=self.c.agent_id, when=self.c.clock()))
            return f"attempt {n} of {task.task.id} failed: {verification.reason[:100]} (agent {self.c.agent_id})"

        with self.control_guard:
            update_upstream(self.control, change)
        self.failed_in_a_row.append((task.task.id, error_signature(verification.reason)))
        self.events.emit("failed_attempt", "WARNING", task=task.task.id, attempt=n,
                         reason=verification.reason, final=final.get("failed", False))
        return "failed"

    def _infra(self, task: BoardTask, lock: Lock, failure: InfraFailure) -> str:
        """The agent could not run: the task goes back untouched (no record, no attempt used)."""
        self._release(lock)
        self.infra_in_a_row.append(failure)
        self.events.emit("infra", "ERROR", task=task.task.id, cause=failure.kind, reason=failure.message)
        if failure.kind == "rate_limited":
            wait = failure.retry_after_s or min(600.0, self.team.poll_s * 2 ** min(10, len(self.infra_in_a_row)))
            self.events.emit("backoff", "WARNING", seconds=wait)
            self.c.sleep(wait)
        return "infra"

    def _release(self, lock: Lock) -> None:
        def change(checkout: Path) -> str | None:
            current = lock_on_disk(checkout, lock.task)
            if current is None or not same_holder(current, lock):
                return None
            (checkout / lock_path(lock.task)).unlink()
            return f"release {lock.task} untouched (agent {self.c.agent_id})"

        with self.control_guard:
            update_upstream(self.control, change)

    def _release_on_exit(self) -> None:
        if self.holding is not None and self.control is not None:
            try:
                self._release(self.holding)
            except Exception:  # best effort on the way out: the lease expires anyway
                pass


def error_signature(text: str) -> str:
    from clude.team.logread import normalize_error
    return normalize_error(text)


def environment_suspect(infra: list[InfraFailure], failed: list[tuple[str, str]],
                        k: int = MAX_INFRA_IN_A_ROW) -> dict | None:
    """When the environment, not the tasks, is failing this worker: its last k agent runs could not
    work with the same cause (rate limits excepted: they back off), or its last k failed attempts, on
    different tasks, failed with the same error. None otherwise."""
    last = infra[-k:]
    if len(last) == k and len({(f.kind, f.name) for f in last}) == 1 and last[0].kind != "rate_limited":
        return {"cause": last[-1].kind, "reason": last[-1].message}
    recent = failed[-k:]
    if len(recent) == k and len({sig for _, sig in recent}) == 1 and len({t for t, _ in recent}) > 1:
        return {"cause": "same_failure", "reason": f"the last {k} attempts, on different tasks, failed "
                                                    f"alike: {recent[-1][1][:200]}"}
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())
