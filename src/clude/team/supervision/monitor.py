"""The monitor of `clude team run`: starts the workers, restarts the ones that exit (with backoff),
kills the silent ones, and blocks a worker in a crash loop with the reason instead of restarting it."""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from clude.harness.process import tail as process_tail
from clude.team.supervision.crashloop import INFRA_BLOCKED, Policy, Run, decide
from clude.team.supervision.runner import FINISH_SIGNAL, STOP_GRACE_S, WorkerProcess, start_worker

POLL_S = 0.5


@dataclass
class Plan:
    """What one worker runs as."""

    agent_id: str
    role: str | None
    backend: str
    command: str | None = None
    sandbox: str = "on"   # "off": started with --sandbox off


@dataclass
class Watched:
    plan: Plan
    process: WorkerProcess | None = None
    started: float = 0.0
    runs: list[Run] = field(default_factory=list)
    restart_at: float | None = None
    state: str = "starting"      # running | waiting (to restart) | blocked | done
    reason: str = ""
    restarts: int = 0


class Monitor:
    def __init__(self, root: Path, state_dir: Path, upstream: str, plans: list[Plan], *, env: dict[str, str],
                 policy: Policy, heartbeat_s: float, forever: bool, board_settled: Callable[[], bool],
                 emit: Callable[..., None], on_blocked: Callable[[str, str], None] = lambda a, r: None,
                 on_event: Callable[[dict], None] = lambda event: None,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 workers_forever: bool | None = None):
        self.root, self.state_dir, self.upstream, self.env = root, state_dir, upstream, env
        self.workers = {p.agent_id: Watched(p) for p in plans}
        self.policy, self.stale_s = policy, max(30.0, 6 * heartbeat_s)
        self.forever, self.board_settled, self.emit, self.on_blocked = forever, board_settled, emit, on_blocked
        # workers that wait for new tasks when none is left (--forever; --from-tests, whose monitor may make
        # tasks after the board settled and ends the run itself)
        self.workers_forever = forever if workers_forever is None else workers_forever
        self.on_event = on_event  # each event of the team as it is read (team run prints progress from them)
        self.clock, self.sleep = clock, sleep
        self._events_offset = 0
        self._claims: dict[str, list[float]] = {}    # agent -> times it claimed a task
        self._progress: dict[str, list[float]] = {}  # agent -> times an agent run of it was judged
        self._last_words: dict[str, tuple[float, str]] = {}  # agent -> (at, ERROR reason) from its events

    def run(self) -> str:
        """Until the board is settled, or no worker is left that could work. Returns why it stopped."""
        for watched in self.workers.values():
            self._start(watched)
        while True:
            self._read_events()
            for watched in self.workers.values():
                self._look_after(watched)
            settled = self.board_settled()  # looked at with --forever too: the planner acts on a settled board
            if settled and not self.forever:
                return "settled"
            alive = [w for w in self.workers.values() if w.state in ("running", "waiting", "starting")]
            if not alive:
                blocked = [w for w in self.workers.values() if w.state == "blocked"]
                return "all workers blocked" if blocked and len(blocked) == len(self.workers) else \
                    "workers exited"
            self.sleep(POLL_S)

    def finish(self) -> None:
        """The work is done: tell every worker to finish (FINISH_SIGNAL: it exits 0 as settled, never
        "interrupted"), wait for them, then stop() whatever is left."""
        live = [w.process for w in self.workers.values() if w.process and w.process.exit_code is None]
        for process in live:
            try:
                os.kill(process.proc.pid, FINISH_SIGNAL)  # the worker alone, not its agent's group
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + STOP_GRACE_S
        for process in live:
            try:
                process.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except Exception:
                break
        for watched in self.workers.values():
            if watched.process and watched.process.exit_code is not None and watched.state == "running":
                watched.state = "done"
        self.stop()

    def drain(self) -> None:
        """Read the events written since the last look: once the workers ended, their last words (a task
        landed or failed as the board settled) reach on_event too."""
        self._read_events()

    def stop(self) -> None:
        """SIGTERM every worker's group (they release their locks), then SIGKILL what is left."""
        live = [w.process for w in self.workers.values() if w.process and w.process.exit_code is None]
        for watched in self.workers.values():
            if watched.state in ("running", "waiting", "starting"):
                watched.state = "stopped"
        for process in live:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for process in live:
            try:
                process.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except Exception:
                _signal_group(process, signal.SIGKILL)
                process.proc.wait()

    # one worker ------------------------------------------------------------------------------
    def _start(self, watched: Watched) -> None:
        plan = watched.plan
        watched.process = start_worker(self.root, self.upstream, plan.agent_id, plan.role, backend=plan.backend,
                                       command=plan.command, forever=self.workers_forever, env=self.env,
                                       exit_with_parent=True, sandbox=plan.sandbox)
        watched.started, watched.state, watched.restart_at = self.clock(), "running", None

    def _look_after(self, watched: Watched) -> None:
        now = self.clock()
        if watched.state == "waiting" and watched.restart_at is not None and now >= watched.restart_at:
            watched.restarts += 1
            self.emit("worker_restarted", "WARNING", worker=watched.plan.agent_id, restarts=watched.restarts)
            self._start(watched)
            return
        if watched.state != "running" or watched.process is None:
            return
        code = watched.process.exit_code
        if code is None and self._silent(watched, now):
            self.emit("worker_silent", "ERROR", worker=watched.plan.agent_id,
                      reason=f"no heartbeat for {self.stale_s:.0f} s: killed")
            _signal_group(watched.process, signal.SIGKILL)
            watched.process.proc.wait()
            code = watched.process.exit_code
            self._last_words[watched.plan.agent_id] = (now, f"stopped heartbeating for {self.stale_s:.0f} s")
        if code is None:
            return
        run = Run(started=watched.started, ended=now, exit_code=code if code >= 0 else None,
                  worked=any(t >= watched.started for t in self._progress.get(watched.plan.agent_id, [])),
                  claimed=any(t >= watched.started for t in self._claims.get(watched.plan.agent_id, [])),
                  reason=self._reason(watched))
        watched.runs.append(run)
        decision = decide(watched.runs, self.policy)
        if decision.action == "done":
            watched.state = "done"
        elif decision.action == "blocked":
            watched.state, watched.reason = "blocked", decision.reason
            if code != INFRA_BLOCKED:  # a worker exiting so said it itself: each event is written once
                self.emit("worker_blocked", "ERROR", worker=watched.plan.agent_id, reason=decision.reason,
                          restarts=watched.restarts)
            self.on_blocked(watched.plan.agent_id, decision.reason)
        else:
            watched.state, watched.restart_at = "waiting", now + decision.delay_s
            watched.reason = decision.reason

    def _silent(self, watched: Watched, now: float) -> bool:
        path = self.state_dir / "heartbeats" / f"{watched.plan.agent_id}.json"
        try:
            beat = json.loads(path.read_text(encoding="utf-8"))
            last = float(beat["at"]) if int(beat.get("pid", -1)) == watched.process.proc.pid else watched.started
        except (OSError, ValueError, KeyError, TypeError):
            last = watched.started  # no heartbeat yet: counted from the start
        return now - max(last, watched.started) > self.stale_s

    def _reason(self, watched: Watched) -> str:
        """Why a worker's run ended: its own last ERROR words, else its output classified, else the
        last line it wrote."""
        at, words = self._last_words.get(watched.plan.agent_id, (0.0, ""))
        if words and at >= watched.started:
            return words
        from clude.team.backends import classify

        tail = process_tail(watched.process.log, 16384, watched.process.log_start) if watched.process else ""
        found = classify(tail, watched.process.exit_code if watched.process else 1)
        if found is not None:
            return found.message
        lines = [line.strip() for line in tail.splitlines() if line.strip()]
        errors = [line for line in lines if "error" in line.lower()]
        return (errors or lines or [f"exited with {watched.process.exit_code}"])[-1][:300]

    def _read_events(self) -> None:
        path = self.state_dir / "events.jsonl"
        try:
            with open(path, "rb") as f:
                f.seek(self._events_offset)
                chunk = f.read()
        except OSError:
            return
        end = chunk.rfind(b"\n") + 1  # a line still being written waits for the next look
        self._events_offset += end
        for line in chunk[:end].splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            self.on_event(event)
            agent = str(event.get("agent", ""))
            if event.get("kind") in ("done", "failed_attempt", "queued"):  # it worked: an agent run was judged
                self._progress.setdefault(agent, []).append(float(event.get("at", 0)))
            elif event.get("kind") == "claimed":
                self._claims.setdefault(agent, []).append(float(event.get("at", 0)))
            elif event.get("level") == "ERROR" and event.get("reason") and agent in self.workers:
                self._last_words[agent] = (float(event.get("at", 0)), str(event["reason"]))


def _signal_group(process: WorkerProcess, sig: int) -> None:
    try:
        os.killpg(process.proc.pid, sig)
    except ProcessLookupError:
        pass
