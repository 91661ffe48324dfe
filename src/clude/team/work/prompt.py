"""The prompt file a worker hands its agent: the role, the task, its earlier failures, the team's notes."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

import jinja2

from clude.team.board.records import earlier_failures, progress_notes
from clude.team.work.roles import role_prompt
from clude.team.board.tasks import Task


@functools.cache
def _template() -> jinja2.Template:
    text = resources.files("clude.team").joinpath("data/task_prompt.md").read_text(encoding="utf-8")
    return jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False).from_string(text)


def task_prompt(checkout: Path, task: Task, attempt: int, *, role: str, roles_dir: Path | None = None,
                conflict: str = "") -> str:
    """The whole prompt for one attempt at `task`, from the board in `checkout`."""
    return _template().render(role_prompt=role_prompt(role, roles_dir).strip(), task=task,
                              attempt=attempt, failures=earlier_failures(checkout, task.id).strip(),
                              notes=progress_notes(checkout).strip(), conflict=conflict.strip()).strip() + "\n"
