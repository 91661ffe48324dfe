"""What a person does to the board from their own machine: add tasks, list and show them, see the state;
every change goes through a private clone of the upstream (.clude/team/view) in one push."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

from clude.config.settings import Settings
from clude.team.board.board import Board, dependency_problems, read_board
from clude.team.protocol.git import Repo
from clude.team.protocol.objects import ObjectError, remove_tree
from clude.team.board.layout import TASKS_DIR, task_path
from clude.team.protocol.sync import update_upstream
from clude.team.board.tasks import Task, parse_task, render_task
from clude.team.protocol.upstream import not_a_team_yet, team_upstream

DEPENDENCY = "dependency: "  # the prefix of a blocked_reason set by the dependency check (lifted again when fixed)
# The named clones of .clude/team/: task add/list/show and status read and change the board through
# "view", `status --watch` refreshes through "watch", `team run` watches its workers through "monitor".
VIEW_CLONE, WATCH_CLONE, MONITOR_CLONE = "view", "watch", "monitor"
# .clude/team/<name>.lock, beside the clone .clude/team/<name>: an exclusive flock held by one command
# of this machine for its whole read or change of the board through that clone (clone, fetch, reset,
# read, commit, push), so two commands using one clone (two `task add` from two shells) take turns
# instead of resetting each other's checkout. Released on exit, and by the kernel when killed.
CLONE_LOCK_SUFFIX = ".lock"


class NoTeam(Exception):
    """The project has no team upstream yet."""


def upstream_of(root: Path, settings: Settings, given: str | None = None) -> str:
    url = given or settings.team.upstream or team_upstream(root)
    if not url:
        raise NoTeam(not_a_team_yet(root))
    return url


def view(root: Path, upstream: str, name: str = VIEW_CLONE) -> Repo:
    """The private clone `name` this machine reads and changes the board through, fresh from the
    upstream. A caller that may run beside another command of this machine holds clone_turn(root,
    name) while it uses the clone."""
    from clude.harness.runner import clude_dir

    folder = clude_dir(root) / "team" / name
    repo = Repo.clone(upstream, folder)
    repo.fetch()
    try:
        repo.reset_to_upstream()
    except ObjectError:  # objects of main missing (an earlier clude's copy, protocol/transfer.py): anew
        remove_tree(folder)
        repo = Repo.clone(upstream, folder)
        repo.reset_to_upstream()
    return repo


def clone_turn(root: Path, name: str):
    """Wait until no other command of this machine uses the clone `name`, and keep it to this one until
    the block ends (CLONE_LOCK_SUFFIX)."""
    from clude.harness.runner import clude_dir
    from clude.store import exclusive

    return exclusive(clude_dir(root) / "team" / f"{name}{CLONE_LOCK_SUFFIX}")


def tests_detected(checkout: Path, settings: Settings, env: Mapping[str, str]) -> bool:
    """Whether the project in `checkout` has tests to verify tasks with: [test] command is set, or a
    test framework is detected in its tree."""
    from clude.harness import frameworks

    return bool(settings.test.argv()) or frameworks.detect(checkout, dict(env)) is not None


def board_of(repo: Repo, lease_s: float) -> Board:
    return read_board(repo.path, now=datetime.now(timezone.utc), lease_s=lease_s,
                      lock_written_at=repo.commit_time)


def mark_dependency_problems(checkout: Path) -> list[str]:
    """Open tasks that can never run (unknown dependency, cycle, a failed or blocked dependency) become
    blocked with the reason; tasks blocked that way whose problem is gone open again. Returns what changed."""
    tasks: dict[str, tuple[Path, Task]] = {}
    broken: list[str] = []
    for file in sorted((checkout / TASKS_DIR).glob("*.md")):
        try:
            task = parse_task(file.read_text(encoding="utf-8"), f"{TASKS_DIR}/{file.name}")
        except ValueError:
            broken.append(file.stem)  # reported by read_board
            continue
        tasks[task.id] = (file, task)
    # tasks this check blocked are judged as if open, so a fixed problem frees a whole chain at once
    judged = {tid: t.model_copy(update={"status": "open", "blocked_reason": None}) if _ours(t) else t
              for tid, (_, t) in tasks.items()}
    problems = dependency_problems(judged, broken=broken)
    changed = []
    for tid, (file, task) in tasks.items():
        problem = problems.get(tid)
        if problem and (task.status == "open" or (_ours(task) and task.blocked_reason != DEPENDENCY + problem)):
            task = task.model_copy(update={"status": "blocked", "blocked_reason": DEPENDENCY + problem})
            changed.append(f"{tid} blocked: {problem}")
        elif not problem and _ours(task):
            task = task.model_copy(update={"status": "open", "blocked_reason": None})
            changed.append(f"{tid} open again: its dependencies can be met now")
        else:
            continue
        file.write_text(render_task(task), encoding="utf-8")
    return changed


def add_task(repo: Repo, fields: dict) -> tuple[Task, list[str]]:
    """Add a task (the next free id) and apply the dependency check; one push."""
    tasks, notes = add_tasks(repo, [fields])
    return tasks[0], notes


def add_tasks(repo: Repo, many: list[dict], *, why: str = "") -> tuple[list[Task], list[str]]:
    """Add tasks (the next free ids, in order) and apply the dependency check, in one push; `why`: a
    PROGRESS.md line saying what made them. A task's "deps" may name another of `many` by its place
    ("#1" for the first)."""
    from clude.team.board.records import append_progress, progress_line
    from clude.team.board.tasks import next_task_id

    made: dict = {}

    def change(checkout: Path) -> str:
        existing = [p.stem for p in (checkout / TASKS_DIR).glob("*.md")]
        ids: list[str] = []
        for fields in many:
            ids.append(next_task_id([*existing, *ids]))
        tasks = []
        for task_id, fields in zip(ids, many):
            deps = [_placed(d, ids) for d in fields.get("deps", [])]
            task = Task(id=task_id, **{**fields, "deps": deps})
            path = checkout / task_path(task.id)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render_task(task), encoding="utf-8")
            tasks.append(task)
        made["notes"] = mark_dependency_problems(checkout)
        made["tasks"] = [parse_task((checkout / task_path(t.id)).read_text(encoding="utf-8"), task_path(t.id))
                         for t in tasks]
        if why:
            append_progress(checkout, progress_line("note", ", ".join(ids), why, agent="clude",
                                                    when=datetime.now(timezone.utc)))
        if len(tasks) == 1:
            return f"add {tasks[0].id}: {tasks[0].title}"
        return f"add {len(tasks)} tasks ({ids[0]} .. {ids[-1]})" + (f": {why}" if why else "")

    if not many:
        return [], []
    update_upstream(repo, change)
    return made["tasks"], made["notes"]


def _placed(dep: str, ids: list[str]) -> str:
    """A dependency as add_tasks writes it: "#N" is the N-th task added with it (ValueError when there is
    no such task), anything else a task's id."""
    if not dep.startswith("#"):
        return dep
    if not dep[1:].isdigit() or not 0 < int(dep[1:]) <= len(ids):
        raise ValueError(f"the dependency {dep!r} names none of the {len(ids)} task(s) being added")
    return ids[int(dep[1:]) - 1]


def check_dependencies(repo: Repo) -> list[str]:
    """The dependency check on the upstream's tasks as they are (pushed when it changes anything)."""
    notes: list[str] = []

    def change(checkout: Path) -> str | None:
        notes[:] = mark_dependency_problems(checkout)
        return f"dependency check: {'; '.join(notes)}" if notes else None

    update_upstream(repo, change)
    return notes


def _ours(task: Task) -> bool:
    return task.status == "blocked" and (task.blocked_reason or "").startswith(DEPENDENCY)


def note_progress(repo: Repo, kind: str, subject: str, text: str, *, agent: str) -> None:
    """A line in the upstream's PROGRESS.md (a worker blocked, a note), in one push."""
    from clude.team.board.records import append_progress, progress_line

    def change(checkout: Path) -> str:
        append_progress(checkout, progress_line(kind, subject, text, agent=agent,
                                                when=datetime.now(timezone.utc)))
        return f"progress: {kind} {subject}"

    update_upstream(repo, change)
