"""The worker loop: sync, claim a task by pushing its lock, run the agent, verify, then land the work or
record the failure. Every change to the upstream is one push that lands whole or is retried."""

from __future__ import annotations

import os
import random
import signal
import socket
import threading
import time
import traceback
from itertools import takewhile
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping

from clude.backoff import backoff
from clude.config.settings import Settings
from clude.exits import INTERRUPTED as EXIT_INTERRUPTED  # the exit codes of `clude team worker`
from clude.exits import WORKER_CRASHED as EXIT_CRASHED
from clude.exits import WORKER_INFRA as EXIT_INFRA
from clude.exits import WORKER_SETTLED as EXIT_SETTLED
from clude.exits import WORKER_UPSTREAM as EXIT_UPSTREAM
from clude.harness.process import lower_commands
from clude.sandbox import Sandbox, allowed_env
from clude.sandbox.leftovers import kill_leftovers
from clude.team.supervision.control import is_paused
from clude.team.work.ahead import WORK_DIRS, Ahead, Reserved, pidfile_of
from clude.team.work.attempt import AGENT_PIDFILE, AttemptSteps, in_background
from clude.team.backends import Backend, InfraFailure
from clude.team.board.board import BoardTask
from clude.team.supervision.crashloop import environment_suspect
from clude.team.logs.events import EventLog
from clude.team.work.blame import StartFailures
from clude.team.work.heartbeat import Heartbeat
from clude.team.protocol.failures import unreachable
from clude.team.protocol.git import Repo, is_local_url, upstream_head, wait_for_move
from clude.team.board.locks import Lock
from clude.team.queue.service import LanderService
from clude.team.supervision.runner import FINISH_SIGNAL
from clude.team.protocol.repository import TeamRepository
from clude.team.protocol.sync import UpstreamRejected
from clude.team.protocol.turns import in_turn, keep_turns_ahead
from clude.team.work.verify import Judge


class Finish(BaseException):
    """The team's work is finished (FINISH_SIGNAL): stop where the worker is, as a settled worker does."""


DRAIN_LOOK_S = 0.1      # between looks at the upstream while waiting for this worker's queued changes
MAX_RATE_LIMIT_WAIT_S = 600.0  # the longest wait after a transient failure, Retry-After or not
# Nice levels below the worker at which its agents and test runs start: the worker's own short work at the
# upstream (a push in the machine's turn, which every worker waits for) comes first on a busy machine.
COMMAND_NICE = 10


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
    project: Path | None = None   # the user's repository, hidden from agents and tests
    sandbox: Sandbox | None = None  # None: as [sandbox] says (SandboxUnavailable when bwrap cannot be used)


class Worker(AttemptSteps):
    """One worker: its loop and claims here, an attempt in attempt.py."""

    def __init__(self, config: WorkerConfig):
        self.c = config
        self.team = config.settings.team
        self.sandbox = config.sandbox or Sandbox.from_config(config.settings.sandbox)
        # what no agent and no test run may see: the user's repository, the upstream, clude's state,
        # this worker's own folder (its clones, prompts, logs); the agent's tree is bound back in
        upstream = [Path(config.upstream).expanduser()] if is_local_url(config.upstream) else []
        siblings = [config.workdir.parent] if config.workdir.parent.name == "agents" else []  # other workers
        self.private_paths = tuple(p for p in [config.project, *upstream, config.state_dir, config.workdir,
                                               *siblings] if p is not None)
        self.judge = Judge(config.settings.test, allowed_env(config.env, config.settings.test.pass_env),
                           sandbox=self.sandbox, state_dir=config.workdir / "harness", hidden=self.private_paths)
        self.events = EventLog(config.state_dir, config.agent_id, dict(config.env))
        self.host = socket.gethostname()
        self.control: Repo | None = None
        self.repo: TeamRepository | None = None  # the protocol over control and land (made in _open)
        self.land: Repo | None = None  # the worker's own clone: agents' results verified and queued from it
        self.lander: LanderService | None = None  # this worker's lander (team/queue), in a thread
        self.infra_in_a_row: list[InfraFailure] = []
        self.starts = StartFailures()  # its agent runs that ended before changing anything (blame.py)
        self.blamed: dict | None = None  # why this worker's own environment is the suspect, when it is
        self.failed_in_a_row: list[tuple[str, str]] = []  # (task, error signature) of failed attempts
        self.attempts_made = 0
        self.unusable_base: str | None = None  # an upstream commit the tests could not run on
        self.holding: Lock | None = None
        self.prepared: Reserved | None = None  # the next task, claimed in the push that queued the last
        self.ahead: Ahead | None = None  # the next task, claimed with its agent started (ahead.py)
        self.rng = random.Random(config.agent_id)

    # the loop --------------------------------------------------------------------------------
    def run(self) -> int:
        beat = Heartbeat(self.c.state_dir, self.c.agent_id, self.team.heartbeat_s, self.c.parent_pid)
        self.heartbeat = beat
        beat.start()  # before the rest is lowered: on a busy machine a late beat looks like a hung worker
        keep_turns_ahead()  # its turns at the upstream at its priority, the rest lower
        lower_commands(COMMAND_NICE)
        self.events.emit("worker_started", backend=self.c.backend.name, role=self.c.role,
                         upstream=self.c.upstream, pid=os.getpid(),
                         sandbox="on" if self.sandbox.enabled else "off")
        if not self.sandbox.enabled:
            self.events.emit("sandbox_off", "WARNING", reason="agents and tests run without a sandbox "
                             "(--sandbox off): they can read credentials and reach the upstream")
        try:
            return self._run()
        finally:
            self._kill_agents()  # an agent started in the background outlives no worker
            if self.lander is not None:
                self.lander.stop(timeout=30)  # the pass under way ends; the lease goes to another lander
            beat.stop()

    def _run(self) -> int:
        def finish(signum, frame):
            raise Finish()

        if threading.current_thread() is threading.main_thread():
            signal.signal(FINISH_SIGNAL, finish)
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
                    self._drain()
                    self.events.emit("worker_done", reason=f"--max-tasks {self.c.max_tasks} reached")
                    return EXIT_SETTLED
                suspect = self.blamed or environment_suspect(self.infra_in_a_row, self.failed_in_a_row)
                if suspect:
                    self.events.emit("worker_blocked", "ERROR", **suspect)
                    return EXIT_INFRA
                if outcome in ("idle", "settled"):
                    self._idle()
        except UpstreamRejected as error:
            self.events.emit("worker_stopped", "ERROR", reason=f"the upstream refuses pushes: {error}")
            return EXIT_UPSTREAM
        except KeyboardInterrupt:
            self._release_on_exit()
            self.events.emit("worker_stopped", "WARNING", reason="interrupted")
            return EXIT_INTERRUPTED
        except Finish:
            self._release_on_exit()
            self.events.emit("worker_done", reason="the team's work is finished")
            return EXIT_SETTLED
        except Exception as error:  # a bug or an OS/git failure: say it, give the task back, stop
            self._charge_or_release(error)
            self.events.emit("worker_stopped", "ERROR", reason=f"{type(error).__name__}: {error}",
                             traceback=traceback.format_exc()[-4000:])
            return EXIT_CRASHED

    def _kill_agents(self) -> int | None:
        """Kill what runs of this worker's agents (an earlier worker's in this folder, or its own on the
        way out): the groups their pidfiles record, if still those. The pid of one killed, else None."""
        killed = None
        for pidfile in [self.c.workdir / AGENT_PIDFILE, *(pidfile_of(self.c.workdir / d) for d in WORK_DIRS)]:
            killed = kill_leftovers(pidfile) or killed
        return killed

    def _open(self) -> None:
        """This worker's two clones, `control` for the board (claims, leases, records) and `land` for
        verifying and landing; the agent gets a tree of its own (work/, remade every attempt). What an
        earlier worker in this folder left running is killed first."""
        self.c.workdir.mkdir(parents=True, exist_ok=True)
        killed = self._kill_agents()
        if killed:
            self.events.emit("leftovers_killed", "WARNING", pid=killed,
                             reason="an agent of an earlier worker in this folder was still running")
        for clone in ("control", "land", "lander"):  # git's own locks left by a worker killed mid-command
            git_dir = self.c.workdir / clone / ".git"
            for stale in [*git_dir.glob("*.lock"), *git_dir.glob("refs/**/*.lock")]:
                stale.unlink(missing_ok=True)
        self.control = Repo.clone(self.c.upstream, self.c.workdir / "control", agent=self.c.agent_id, check=True)
        self.land = Repo.clone(self.c.upstream, self.c.workdir / "land", agent=self.c.agent_id, check=True)
        self.repo = TeamRepository(self.control, self.land, agent=self.c.agent_id, host=self.host, role=self.c.role,
                                   lease_s=self.team.lease_s, clock=self.c.clock, state_dir=self.c.state_dir,
                                   rng=self.rng, keep_apart=self.team.overlap == "apart")
        judge = None if self.team.verify == "none" else replace(self.judge, state_dir=self.c.workdir / "harness-lander")
        self.lander = LanderService.of_worker(self.c.workdir / "lander", self.c.upstream, judge, self.events,
                                              agent=self.c.agent_id, host=self.host, lease_s=self.team.lease_s,
                                              clock=self.c.clock, turn=lambda work: in_turn(self.c.state_dir, work)[1])
        self.lander.start()

    def _idle(self) -> None:
        """Nothing to take now: wait until the upstream's main moves (a task added, a landing, a lock
        expiring needs a look anyway after poll_s), at most poll_s. A test's injected sleep is its clock."""
        if self.c.sleep is not time.sleep:
            return self.c.sleep(self.team.poll_s)
        wait_for_move(self.c.upstream, upstream_head(self.c.upstream), self.team.poll_s)

    def poke_lander(self) -> None:
        """This worker queued a change: its lander looks now."""
        if self.lander is not None:
            self.lander.poke.set()

    def _drain(self) -> None:
        """Before stopping with work queued (--max-tasks): wait until this worker's queued changes are
        landed or sent back, by its lander or another."""
        while True:
            board = self.repo.look()
            if not any(t.queued and t.lock.agent == self.c.agent_id for t in board.tasks.values()):
                return
            self.poke_lander()
            time.sleep(DRAIN_LOOK_S)

    def cycle(self) -> str:
        """One look at the board: 'settled', 'idle', or what became of the task it claimed."""
        self._state("claiming")
        ahead, self.ahead = self.ahead, None
        prepared, lease = None, None
        if ahead is None and self.prepared is not None and self.prepared.launch is not None:
            ahead, self.prepared = self._start_reserved(self.prepared), None  # its tree is ready
        if ahead is not None:
            claimed = ahead.task, ahead.lock
        else:
            prepared, self.prepared = self.prepared, None
            claimed, lease = ((prepared.task, prepared.lock), prepared.lease) if prepared else (self.claim(), None)
        if isinstance(claimed, str):
            self._state("paused" if claimed == "paused" else "idle")
            return "idle" if claimed == "paused" else claimed
        task, lock = claimed
        self.holding = lock
        self._state("working", task.task.id, lock.attempt)
        self.attempts_made += 1
        outcome = self.attempt(task, lock, ahead, lease)  # on an interruption `holding` stays: released on the way out
        self.holding = self.ahead.lock if self.ahead else self.prepared.lock if self.prepared else None
        return outcome

    def _state(self, state: str, task: str | None = None, attempt: int | None = None) -> None:
        beat = getattr(self, "heartbeat", None)
        if beat is not None:
            beat.set(state, task, attempt)

    # claiming --------------------------------------------------------------------------------
    def claim(self, *, wait: bool = True, ahead_of: str | None = None) -> tuple[BoardTask, Lock] | str:
        if is_paused(self.c.state_dir, self.c.agent_id):  # `clude team pause`: nothing new until resumed
            return "paused"
        claimed = self.repo.claim(avoid=self.starts.avoid(), wait=wait, strict=ahead_of is not None)
        if not isinstance(claimed, str):
            task, lock = claimed
            self.events.emit("claimed", task=task.task.id, attempt=lock.attempt,
                             broke_lock_of=task.lock.agent if task.lock else None,
                             **({"ahead_of": ahead_of} if ahead_of else {}))
        return claimed

    def claim_ahead(self, finished: BoardTask) -> None:
        """With `finished`'s result taken, start the next task's agent now (ahead.py): the task reserved
        in the last queueing push, or else one claimed now, only when this machine's turn at the upstream
        is free: when other workers are pushing, a claim of its own would add to the one serial part of
        the team, and the queueing push claims the next task anyway (one push for both)."""
        if self.ahead is not None:
            return
        reserved, self.prepared = self.prepared, None
        if reserved is not None and reserved.launch is not None:  # its tree made already: started now
            self.ahead = self._start_reserved(reserved)
            return
        if reserved is not None:
            task, lock, lease = reserved.task, reserved.lock, reserved.lease
        else:
            if not self.may_claim():
                return
            claimed = self.claim(wait=False, ahead_of=finished.task.id)
            if isinstance(claimed, str):
                return
            task, lock = claimed
            lease = self._keeper(lock)
            lease.start()
        try:
            with self.repo.guard:  # the control clone, at the claim or newer, is what the agent's tree is made from
                if reserved is not None:
                    self.control.refresh()
                base = self.control.head()
                launch = self._launch(task, lock, self.control, background=True)
        except BaseException:
            lease.stop()
            self.repo.release(lock)
            raise
        self.ahead = Ahead(task, lock, lease, base, launch)

    def _start_reserved(self, reserved: Reserved) -> Ahead:
        """The reserved task's agent, its tree made ahead, started in the background."""
        launch = reserved.launch
        launch.future = in_background(launch.call, name=f"agent-{reserved.task.task.id}")
        return Ahead(reserved.task, reserved.lock, reserved.lease, reserved.base, launch)

    def may_claim(self) -> bool:
        """Whether this worker may take another task (not paused; --max-tasks: the ones it holds for
        later count)."""
        if is_paused(self.c.state_dir, self.c.agent_id):
            return False
        held = self.attempts_made + (self.ahead is not None) + (self.prepared is not None)
        return self.c.max_tasks is None or held < self.c.max_tasks

    def _infra(self, task: BoardTask, lock: Lock, failure: InfraFailure) -> str:
        """The agent could not run: the task goes back untouched (no record, no attempt used). What
        follows depends on the failure's category (backends/infra.py): an environment failure stops the
        worker (run()); a transient one waits; an unknown one is weighed by blame.py."""
        self.infra_in_a_row.append(failure)
        self.events.emit("infra", "ERROR", task=task.task.id, cause=failure.kind, category=failure.category,
                         reason=failure.message)
        if failure.category != "unknown":
            self.repo.release(lock)
        else:
            verdict = self.starts.failed(task.task.id, failure.message)
            if self.repo.release(lock, start_failure=failure.message if verdict == "note" else None):
                self._task_blocked(task.task.id, failure.message)
            if verdict == "worker":
                self.blamed = {"cause": failure.kind, "reason": f"the last {len(self.starts.streak)} agent runs "
                               f"ended before changing anything: {failure.message}"}
        if failure.category == "transient":
            streak = len(list(takewhile(lambda f: f.category == "transient", reversed(self.infra_in_a_row))))
            wait = (failure.retry_after_s * (1 + 0.1 * self.rng.random()) if failure.retry_after_s else
                    backoff(streak, first=2 * self.team.poll_s, cap=MAX_RATE_LIMIT_WAIT_S, rng=self.rng))
            wait = min(max(wait, self.team.poll_s), MAX_RATE_LIMIT_WAIT_S)  # whatever an API (or agent) asks
            self.events.emit("backoff", "WARNING", seconds=round(wait, 2), cause=failure.kind)
            self._state("waiting")
            self.c.sleep(wait)
        return "infra"

    def worked(self) -> None:
        """An agent run of this worker could be judged: its environment works. Its suspicions about
        tasks it failed at start on are noted on them (blame.py)."""
        self.infra_in_a_row.clear()
        pending = self.starts.worked()
        if pending:
            for blocked in self.repo.note_start_failures(pending):
                self._task_blocked(blocked, dict(pending)[blocked])

    def _task_blocked(self, task_id: str, reason: str) -> None:
        self.events.emit("task_blocked", "WARNING", task=task_id,
                         reason=f"its agent ends before changing anything on workers that do other tasks "
                                f"fine: {reason}")

    def _charge_or_release(self, error: Exception) -> None:
        """After a crash: when the agent had already run on the task held, its result is what broke the
        worker, so the attempt counts (a failure record); otherwise the task goes back untouched. A task
        whose result crashes every worker cannot bounce forever."""
        ran = getattr(self, "ran", None)
        if ran is None or self.holding is None or ran[0] is not self.holding or self.control is None \
                or unreachable(error):  # the upstream out of reach is nobody's result
            return self._release_on_exit()
        from clude.team.work.verify import Verification

        try:
            task = self.repo.board().tasks[self.holding.task]
            self._record_failure(task, self.holding, ran[1], Verification(
                False, f"the worker failed on this attempt's result ({type(error).__name__}: {error})", ""))
        except Exception:
            self._release_on_exit()

    def _release_on_exit(self) -> None:
        ahead, self.ahead = self.ahead, None
        prepared, self.prepared = self.prepared, None
        for later in (ahead, prepared):  # an agent started is killed on the way out (run()); tasks go back
            if later is not None:
                later.lease.stop()
        claimed = list(self.repo.held.values()) if self.repo is not None else []  # even as it was stopped
        held = [self.holding, *claimed, *(later.lock for later in (ahead, prepared) if later is not None)]
        for lock in {lock.task: lock for lock in held if lock is not None}.values():
            if self.control is not None:
                try:
                    self.repo.release(lock)
                except Exception as error:  # best effort on the way out: the lease expires anyway
                    self.events.emit("release_failed", "WARNING", task=lock.task,
                                     reason=f"{type(error).__name__}: {error}; the task waits for its lease "
                                            f"({self.team.lease_s:g} s) to run out")
