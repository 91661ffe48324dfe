"""Steering a team by hand: `team task retry/block/unblock`, `team pause/resume` (one worker) and `team
stop`. The dashboard (`team serve`) calls the same functions (team/protocol/steer.py, team/supervision/
control.py)."""

from __future__ import annotations

import getpass
from pathlib import Path

import click

from clude.cli.team_cmd import _project, _upstream, board_repo, fail, task_group
from clude.exits import STOP_NO_RUN, TEAM_VIEW_UNREACHABLE


def person() -> str:
    """Who steers, as PROGRESS.md names them: the user's login name."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "user"


def _steer(project: Path, upstream: str | None, action, *args, **kwargs) -> None:
    from clude.gitcli import GitError
    from clude.team.protocol.steer import SteerError
    from clude.team.protocol.sync import UpstreamRejected

    with board_repo(project, upstream) as (settings, repo):
        try:
            said = action(repo, *args, who=person(), lease_s=settings.team.lease_s, **kwargs)
        except SteerError as error:
            fail(str(error))
        except (GitError, UpstreamRejected) as error:
            fail(f"cannot change the team's upstream: {error}", TEAM_VIEW_UNREACHABLE)
    click.echo(said)


@task_group.command("retry")
@click.argument("task_id")
@click.option("--attempts", type=click.IntRange(1, 99), default=1, show_default=True,
              help="Attempts it is given again.")
@_upstream
@_project
def task_retry_command(task_id, attempts, upstream, project) -> None:
    """Open a failed task again; its failure records stay for the next agent to read."""
    from clude.team.protocol.steer import retry_task

    _steer(project, upstream, retry_task, task_id, attempts=attempts)


@task_group.command("block")
@click.argument("task_id")
@click.option("--reason", required=True, help="Why (shown on the board).")
@_upstream
@_project
def task_block_command(task_id, reason, upstream, project) -> None:
    """Keep a task from being taken until it is unblocked."""
    from clude.team.protocol.steer import block_task

    _steer(project, upstream, block_task, task_id, reason)


@task_group.command("unblock")
@click.argument("task_id")
@_upstream
@_project
def task_unblock_command(task_id, upstream, project) -> None:
    """Open a blocked task again."""
    from clude.team.protocol.steer import unblock_task

    _steer(project, upstream, unblock_task, task_id)


def _state_dir(project: Path) -> Path:
    from clude.harness.runner import clude_dir

    return clude_dir(project.resolve())


@click.command("pause")
@click.argument("agent")
@_project
def pause_command(agent, project) -> None:
    """Let a worker finish what it holds, then take nothing new until `team resume`."""
    from clude.team.supervision.control import ControlError, pause

    try:
        changed = pause(_state_dir(project), agent)
    except ControlError as error:
        fail(str(error))
    click.echo(f"{agent} paused: it finishes what it holds and takes nothing new" if changed
               else f"{agent} was paused already")


@click.command("resume")
@click.argument("agent")
@_project
def resume_command(agent, project) -> None:
    """Let a paused worker take tasks again (within its next look at the board)."""
    from clude.team.supervision.control import ControlError, resume

    try:
        changed = resume(_state_dir(project), agent)
    except ControlError as error:
        fail(str(error))
    click.echo(f"{agent} resumed" if changed else f"{agent} was not paused")


@click.command("stop")
@_project
def stop_command(project) -> None:
    """Stop the project's running `team run` as Ctrl-C would: its workers give their tasks back."""
    from clude.team.supervision.control import ControlError, stop_team

    try:
        pid = stop_team(_state_dir(project))
    except ControlError as error:
        fail(str(error), STOP_NO_RUN)
    click.echo(f"asked the team run (pid {pid}) to stop; its workers give their tasks back")
