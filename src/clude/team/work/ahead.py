"""Claiming ahead. When an agent has finished and its result is taken, the worker claims its next task
and starts that task's agent at once, then reviews, verifies and queues the finished one while the next
agent works: the verification's time overlaps the next agent's instead of adding to it. The push that
queues the finished one also reserves the task after (Reserved), so that the next claim ahead costs no
push of its own: with many workers, pushes are the team's one serial part. The reserved task's tree is
made then too, while the agent claimed ahead works, so that its agent starts the moment that one ends. A
worker so holds at most three tasks, the one it verifies, the one whose agent runs and the one reserved,
each in its own tree (WORK_DIRS) with its own pidfile, so that a worker restarted after a crash kills
every agent it ran."""

from __future__ import annotations

from collections.abc import Callable, Collection
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from clude.team.backends import AgentRun
from clude.team.board.board import BoardTask
from clude.team.board.locks import Lock
from clude.team.protocol.lease import LeaseKeeper

WORK_DIRS = ("work", "work-2", "work-3")  # a worker's agent trees, in its folder: one per task it holds


def pidfile_of(work: Path) -> Path:
    """Where the group of the agent working in `work` is recorded (sandbox/leftovers.py)."""
    return work.parent / f"{work.name}.pid"


def free_work_dir(workdir: Path, busy: Collection[Path]) -> Path:
    """The agent tree to use next: the first of WORK_DIRS no agent running or about to run has."""
    return next(workdir / name for name in WORK_DIRS if workdir / name not in busy)


@dataclass
class Launch:
    """An agent started (or about to be) on a task: its tree, its run's name and log, and its run."""

    work: Path
    name: str
    log_path: Path
    call: Callable[[], AgentRun]
    future: Future | None = None  # set when it runs in the background (claimed ahead)

    def wait(self) -> AgentRun:
        """The agent's run: waited for when it runs in the background, else run here and now."""
        return self.future.result() if self.future is not None else self.call()


@dataclass
class Reserved:
    """A task claimed in the push that queued the one before, for the worker's next agent; `lease` is
    kept (started) when it may wait for a whole agent run."""

    task: BoardTask
    lock: Lock
    lease: LeaseKeeper | None = None
    launch: Launch | None = None  # its agent's tree, made ahead (not started)
    base: str = ""                # the upstream's commit that tree was made from


@dataclass
class Ahead:
    """The next task, claimed while the last one's result is verified, with its agent at work."""

    task: BoardTask
    lock: Lock
    lease: LeaseKeeper
    base: str            # the upstream's commit the agent's tree was made from
    launch: Launch
