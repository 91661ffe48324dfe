"""Whose fault an agent run that ended before changing anything is, pure: the task's or the worker's.

An agent that exits at once with no reason clude recognizes (an "unknown" failure, backends/infra.py)
may have a broken environment, or may have been given a task it always chokes on. The difference shows
over time: a broken worker fails on every task; a poisoned task fails on workers that do other tasks
fine. So a worker keeps the streak of its start failures since its last healthy run (an agent run whose
result could be judged), and:

- a failure right after a healthy run is the task's (the worker was just working): noted on the task;
- a failure while the worker has not worked yet is a suspicion, noted on the task once the worker
  then runs some other task fine;
- START_STREAK failures in a row make the worker's environment the suspect (it stops, with the reason),
  unless they were all the same task on a worker that had worked before: then they are that task's;
- a task noted START_FAILURES_TO_BLOCK times (by any workers; board/books.py) is blocked with the
  reason, and the team goes on without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from clude.team.supervision.crashloop import MAX_INFRA_IN_A_ROW as START_STREAK


@dataclass
class StartFailures:
    """One worker's view: whether it has worked in this life, and its start failures since it last
    did (task id, reason), oldest first; `noted`: those of them already written on their task."""

    healthy: bool = False
    streak: list[tuple[str, str]] = field(default_factory=list)
    noted: set[int] = field(default_factory=set)

    def failed(self, task: str, reason: str) -> Literal["note", "suspect", "worker"]:
        """A start failure on `task`: "note" (it is the task's: write it on the task now), "suspect"
        (keep it until the worker has worked), or "worker" (the worker's environment is the suspect)."""
        self.streak.append((task, reason))
        if len(self.streak) >= START_STREAK:
            if self.healthy and len({t for t, _ in self.streak}) == 1:
                self.noted.add(len(self.streak) - 1)
                return "note"
            return "worker"
        if self.healthy and len(self.streak) == 1:
            self.noted.add(0)
            return "note"
        return "suspect"

    def worked(self) -> list[tuple[str, str]]:
        """An agent run of this worker could be judged: the suspicions it leaves to note on their tasks
        (one per task, the last reason), and the streak ends."""
        pending: dict[str, str] = {}
        for i, (task, reason) in enumerate(self.streak):
            if i not in self.noted:
                pending[task] = reason
        self.healthy, self.streak, self.noted = True, [], set()
        return list(pending.items())

    def avoid(self) -> set[str]:
        """The tasks to leave to other workers while other tasks are ready: those of the streak."""
        return {task for task, _ in self.streak}

