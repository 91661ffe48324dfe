"""`clude team`: init, task add/list/show, worker, run, status."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from clude.exits import TEAM_VIEW_UNREACHABLE
from clude.exits import USAGE as EXIT_USAGE

_project = click.option("-C", "--project", type=click.Path(file_okay=False, exists=True, path_type=Path),
                        default=Path("."), help="The project directory [default: .].")
_upstream = click.option("--upstream", default=None, metavar="PATH|URL",
                         help="The team's upstream [default: [team] upstream, else the remote 'upstream'].")


def fail(message: str, code: int = EXIT_USAGE) -> None:
    click.echo(f"clude: {message}", err=True)
    sys.exit(code)


def settings_of(project: Path):
    from clude.config import ConfigError, load_settings

    try:
        return load_settings(project)[0]
    except ConfigError as error:
        fail(str(error))


@contextmanager
def board_repo(project: Path, upstream: str | None, name: str | None = None) -> Iterator[tuple]:
    """(settings, the team's clone `name` [default: the view clone] fresh from the upstream), the clone
    kept to this command until the block ends (admin.clone_turn: two commands of this machine take
    turns); a usage error when there is no team."""
    from clude.gitcli import GitError
    from clude.team.protocol.admin import VIEW_CLONE, NoTeam, clone_turn, upstream_of, view

    root, settings = project.resolve(), settings_of(project)
    try:
        url = upstream_of(root, settings, upstream)
    except NoTeam as error:
        fail(str(error))
    with clone_turn(root, name or VIEW_CLONE):
        try:
            repo = view(root, url, name or VIEW_CLONE)
        except GitError as error:
            fail(f"cannot read the team's upstream: {error}", TEAM_VIEW_UNREACHABLE)
        yield settings, repo


@click.group("team")
def team_group() -> None:
    """A team of agents working in parallel on one git repository."""


@team_group.command("init")
@_upstream
@_project
def init_command(upstream, project) -> None:
    """Make this git repository a team: a bare upstream (made, or an existing URL) with tasks/,
    current_tasks/ and PROGRESS.md."""
    from clude.team.protocol.upstream import TeamInitError, init_team

    try:
        url = init_team(project.resolve(), upstream)
    except TeamInitError as error:
        fail(str(error))
    click.echo(f"team upstream: {url}\nnext: clude team task add \"TITLE\" --tests SELECTOR, then clude team run")


@team_group.group("task")
def task_group() -> None:
    """The team's tasks (kept in the upstream, under tasks/)."""


@task_group.command("add")
@click.argument("title")
@click.option("--body", default=None, help="What to do, in words.")
@click.option("--body-file", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Read the body from a file.")
@click.option("--tests", default=None, metavar="SELECTOR",
              help="The acceptance tests: a pytest node id or path, or anything `clude test` selects.")
@click.option("--deps", default="", metavar="ID,...", help="Tasks that must be done first.")
@click.option("--role", default=None, help="Only workers of this role take it.")
@click.option("--priority", type=int, default=0, show_default=True, help="Higher first.")
@click.option("--max-attempts", type=click.IntRange(1, 100), default=None,
              help="Failed attempts before the task is failed [default: [team] max_attempts, 3].")
@click.option("--files", default="", metavar="PATH,...",
              help="Files it is expected to touch (paths, folder/ or globs): overlapping tasks are kept apart.")
@click.option("--allow-tests", is_flag=True,
              help="The agent may change the project's tests (a tester's task always may).")
@_upstream
@_project
def task_add_command(title, body, body_file, tests, deps, role, priority, max_attempts, files, allow_tests,
                     upstream, project) -> None:
    """Add a task; a dependency that does not exist or a cycle is reported and the task blocked."""
    from clude.team.protocol.steer import SteerError, new_task

    if body and body_file:
        fail("give --body or --body-file, not both")
    text = body_file.read_text(encoding="utf-8") if body_file else (body or "")
    with board_repo(project, upstream) as (settings, repo):
        fields = {"title": title, "body": text, "tests": tests, "role": role, "priority": priority,
                  "deps": [d.strip() for d in deps.split(",") if d.strip()], "allow_tests": allow_tests,
                  "max_attempts": max_attempts, "files": files}
        try:
            task, notes = new_task(repo, settings, fields)
        except SteerError as error:
            fail(str(error))
    click.echo(f"added {task.id}: {task.title}" + (f" (blocked: {task.blocked_reason})"
                                                    if task.status == "blocked" else ""))
    for note in notes:
        click.echo(f"note: {note}")


@task_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the tasks as JSON.")
@_upstream
@_project
def task_list_command(as_json, upstream, project) -> None:
    """Every task with its state, attempts and holder."""
    from clude.team.protocol.admin import board_of, check_dependencies

    with board_repo(project, upstream) as (settings, repo):
        notes = check_dependencies(repo)
        board = board_of(repo, settings.team.lease_s)
    from clude.cli.team_view import board_json, print_board

    if as_json:
        click.echo(json.dumps(board_json(board), ensure_ascii=False))
        return
    print_board(board)
    for note in notes:
        click.echo(f"note: {note}")


@task_group.command("show")
@click.argument("task_id")
@_upstream
@_project
def task_show_command(task_id, upstream, project) -> None:
    """One task: its file, state, lock and failure records."""
    from clude.team.protocol.admin import board_of
    from clude.team.board.board import shown_state
    from clude.team.board.layout import FAILURES_DIR

    with board_repo(project, upstream) as (settings, repo):
        board = board_of(repo, settings.team.lease_s)
        item = board.tasks.get(task_id)
        if item is None:
            fail(f"no task {task_id!r} (tasks: {', '.join(board.tasks) or 'none'})")
        click.echo((repo.path / item.path).read_text(encoding="utf-8").rstrip())
        click.echo(f"\nstate: {shown_state(item)}" + (f" — {item.reason}" if item.reason else "")
                   + f"; attempts: {item.attempts} of {item.task.max_attempts}")
        if item.lock:
            ends = item.lease_end or item.lock.lease_until
            capped = f" (its lock says {item.lock.lease_until:%Y-%m-%d %H:%M:%S}Z: a lease ends at most " \
                     f"[team] lease_s after the lock's last renewal)" if ends != item.lock.lease_until else ""
            click.echo(f"held by {item.lock.agent} on {item.lock.host} (attempt {item.lock.attempt}), "
                       f"lease until {ends:%Y-%m-%d %H:%M:%S}Z{capped}")
        for record in sorted((repo.path / FAILURES_DIR).glob(f"{task_id}_attempt_*.md")):
            click.echo(f"\n--- {record.relative_to(repo.path)}\n{record.read_text(encoding='utf-8').rstrip()}")

