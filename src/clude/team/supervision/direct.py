"""`clude team run --forever` with a goal: when the board has nothing left to do, a planner (clude's model,
team/plan/propose.py) looks at the goal, the suite and PROGRESS.md and proposes the next tasks, up to
[team] max_auto_tasks in the run; each is added with a PROGRESS.md line saying why it was made."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from clude.agent.planner import PlanningFailed
from clude.llm.base import ChatModel, ModelError
from clude.team.board.board import Board, all_settled
from clude.team.board.layout import PROGRESS
from clude.team.board.records import append_progress, progress_line
from clude.gitcli import GitError
from clude.team.plan.propose import GoalReached, cut, propose, task_fields
from clude.team.protocol.admin import add_tasks
from clude.team.protocol.git import Repo
from clude.team.protocol.sync import UpstreamRejected, update_upstream

MADE_BY = "auto"
PROGRESS_LINES = 40  # of PROGRESS.md shown to the planner


def goal_text(goal: str, *, suite: str, progress: str) -> str:
    """What the planner is asked (pure): the goal, how the suite stands, the end of PROGRESS.md."""
    tail = "\n".join(progress.strip().splitlines()[-PROGRESS_LINES:])
    return (f"{goal.strip()}\n\nThe team has finished every task on its board. Propose the next few tasks "
            f"towards this goal; when it is reached, reply {{\"title\": \"done\", \"steps\": []}}.\n\n"
            f"The suite on main now: {suite}\n\n"
            f"The end of PROGRESS.md:\n{tail}")


class Director:
    def __init__(self, model: ChatModel, goal: str, *, roles: list[str], max_tasks: int, max_attempts: int,
                 suite: Callable[[Path], str], echo: Callable[[str], None]):
        self.model, self.goal, self.roles, self.echo, self.suite = model, goal, roles, echo, suite
        self.left, self.max_attempts = max_tasks, max_attempts
        self.asked_at: str | None = None  # the main the planner was last asked about

    def next_tasks(self, repo: Repo, board: Board) -> list[str]:
        """When the board is settled: the tasks the planner proposes, added (ids); none while tasks are
        open, once the run's budget of tasks is spent, or when main has not moved since the last ask."""
        head = repo.head()
        if not all_settled(board) or self.left <= 0 or head == self.asked_at:
            return []
        self.asked_at = head
        progress = (repo.path / PROGRESS).read_text(encoding="utf-8", errors="replace") \
            if (repo.path / PROGRESS).is_file() else ""
        asked = goal_text(self.goal, suite=self.suite(repo.path), progress=progress)
        try:
            plan = propose(self.model, repo.path, asked, roles=self.roles, may_end=True,
                           board={tid: item.task.title for tid, item in board.tasks.items()})
        except GoalReached:
            self.echo("--forever: the planner says the goal is reached; the workers wait for new tasks")
            return []
        except (PlanningFailed, ModelError) as error:
            self.echo(f"--forever: the planner proposed nothing usable: {error}")
            return []
        steps = cut(plan, self.left)
        fields = [{**f, "made_by": MADE_BY}
                  for f in task_fields(plan, max_attempts=self.max_attempts, goal=self.goal, limit=self.left)]
        if not fields:
            return []
        try:
            tasks, _ = add_tasks(repo, fields)
        except (GitError, UpstreamRejected, ValueError) as error:  # tried again when main moves
            self.asked_at = None
            self.echo(f"--forever: the planner's tasks could not be added: {error}")
            return []
        self.left -= len(tasks)
        why = {t.id: (s.description.strip() or s.title) for t, s in zip(tasks, steps)}

        def note(checkout: Path) -> str:
            now = datetime.now(timezone.utc)
            for task_id, reason in why.items():
                append_progress(checkout, progress_line("note", task_id, f"made by the planner (--forever) "
                                                        f"towards the goal: {reason}", agent="planner", when=now))
            return f"planner: why {', '.join(why)} were made"

        try:
            update_upstream(repo, note)
        except (GitError, UpstreamRejected) as error:  # the tasks are there; only the notes are lost
            self.echo(f"--forever: could not note why the tasks were made: {error}")
        self.echo(f"--forever: the planner added {', '.join(why)} ({self.left} more allowed in this run)")
        return list(why)
