"""`clude team run`'s supervision: the monitor over the workers until the board is settled or no worker
can work, and how it ended (the command line prints it)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from clude.exits import INTERRUPTED, TEAM_DONE, TEAM_INFRA, TEAM_TASKS_LEFT
from clude.gitcli import GitError
from clude.harness.runner import clude_dir
from clude.secrets import Redactor
from clude.team.board.board import Board, all_settled
from clude.team.logs.events import EventLog
from clude.team.logs.progress import Progress
from clude.team.protocol.admin import MONITOR_CLONE, board_of, clone_turn, note_progress, view
from clude.team.protocol.sync import UpstreamRejected
from clude.team.supervision.control import forget_run, record_run
from clude.team.supervision.crashloop import Policy
from clude.team.supervision.direct import Director
from clude.team.supervision.from_tests import TestsToTasks
from clude.team.supervision.monitor import Monitor


@dataclass
class Ended:
    why: str                  # "settled", "interrupted", "all workers blocked", "workers exited"
    board: Board              # as the upstream has it at the end
    workers: dict[str, dict]  # agent -> state, restarts, reason, exit_code
    progress: Path            # the monitor's PROGRESS.md
    logs: Path
    exit_code: int


def supervise(root: Path, settings, url: str, plans, *, forever: bool, echo: Callable[[str], None],
              from_tests: TestsToTasks | None = None, director: Director | None = None) -> Ended:
    """Start the workers of `plans` and keep them running (restarts, crash loops, silence) until the
    board is settled (or, with `forever`, until interrupted). `from_tests`: the upstream's failing tests
    are made tasks before the workers start and whenever main's code moves; the run ends when the
    board is settled and main's suite has no failure left that no task stands for. `director` (with
    `forever`): a planner adds the next tasks when the board is settled."""
    team = settings.team
    state = clude_dir(root)
    with clone_turn(root, MONITOR_CLONE):
        repo = view(root, url, MONITOR_CLONE)
    logs: dict[str, EventLog] = {}
    seen: list = []  # the last board read: a failed fetch (a network blip) keeps it for one more look

    def emit(kind: str, level: str = "INFO", *, worker: str, **details) -> None:
        logs.setdefault(worker, EventLog(state, worker)).emit(kind, level, by="monitor", **details)

    def current():
        with clone_turn(root, MONITOR_CLONE):
            try:
                if not repo.refresh() and seen:  # main has not moved: the board is what it was
                    return seen[-1]
            except GitError as error:
                if not seen:
                    raise
                echo(f"could not read the upstream ({error}); trying again")
                return seen[-1]
            board = board_of(repo, team.lease_s)
            if from_tests is not None and from_tests.check(repo, board):
                board = board_of(repo, team.lease_s)  # with the tasks just made
            if director is not None and director.next_tasks(repo, board):
                board = board_of(repo, team.lease_s)
            seen[:] = [board]
        return seen[-1]

    progress = Progress(since=time.time())  # what happens, as it happens, from the team's events

    def told(event: dict) -> None:
        line = progress.line(event)
        if line:
            echo(line)

    def blocked(worker: str, reason: str) -> None:
        echo(f"worker {worker} blocked: {reason}")
        with clone_turn(root, MONITOR_CLONE):
            try:
                note_progress(repo, "blocked", f"worker {worker}", reason, agent=worker)
            except (GitError, UpstreamRejected) as error:  # the note is lost, never the monitor
                echo(f"could not note it in PROGRESS.md ({error})")

    if from_tests is not None:
        current()  # the first tasks made before any worker looks at the board
    policy = Policy(k=team.crash_loop, window_s=team.crash_window_s, base_s=team.restart_s,
                    cap_s=team.restart_cap_s)
    monitor = Monitor(root, state, url, plans, env=dict(os.environ), policy=policy,
                      heartbeat_s=team.heartbeat_s, forever=forever,
                      workers_forever=forever or from_tests is not None,
                      board_settled=lambda: all_settled(current()), emit=emit, on_blocked=blocked,
                      on_event=told)
    unsandboxed = [p.agent_id for p in plans if p.sandbox == "off"]
    if unsandboxed:
        warning = (f"agents of {', '.join(unsandboxed)} run WITHOUT a sandbox (--sandbox off): they can read "
                   "your credentials and files, write outside their work trees and reach the upstream")
        echo(f"WARNING: {warning}")
        with clone_turn(root, MONITOR_CLONE):
            note_progress(repo, "note", "sandbox", warning, agent="monitor")
    echo(f"started {len(plans)} workers ({', '.join(sorted({p.backend for p in plans}))}) on "
         f"{Redactor({}).text(url)}")

    why = "interrupted"
    record_run(state)  # `clude team stop` (and the dashboard's stop) signal this process
    try:
        why = monitor.run()
    except KeyboardInterrupt:
        why = "interrupted"
    finally:
        monitor.finish() if why == "settled" else monitor.stop()
        monitor.drain()
        forget_run(state)
    board = current()
    workers = {a: {"state": w.state, "restarts": w.restarts, "reason": w.reason,
                   "exit_code": w.process.exit_code if w.process else None}
               for a, w in monitor.workers.items()}
    return Ended(why, board, workers, repo.path / "PROGRESS.md", state / "logs", exit_code(why, board))


def exit_code(why: str, board: Board) -> int:
    """`team run`'s exit code (clude.exits) for how it ended and the board it left."""
    if why == "interrupted":
        return INTERRUPTED
    states = {item.state for item in board.tasks.values()}
    if why in ("all workers blocked", "workers exited") and states & {"open", "claimed"}:
        return TEAM_INFRA
    return TEAM_TASKS_LEFT if states & {"failed", "blocked", "open", "claimed"} else TEAM_DONE
