"""`clude team plan "GOAL"`: the model proposes a graph of tasks (team/plan/propose.py); shown as a table and
a graph, approved, edited in $EDITOR or rejected, then added to the board in one push."""

from __future__ import annotations

import json
from pathlib import Path

import click

from clude.cli.team_cmd import _project, _upstream, board_repo, fail
from clude.exits import PLAN_ADDED, PLAN_BLOCKED, PLAN_ERROR, PLAN_REJECTED, TEAM_VIEW_UNREACHABLE


def plan_dict(plan) -> dict:
    from clude.team.plan.propose import shown

    return {"title": plan.title, "steps": shown(plan)}


def tasks_table(plan: dict):
    from rich.table import Table

    table = Table(title=f"Tasks for: {plan['title']}", title_justify="left")
    for column in ("id", "title", "role", "after", "tests", "files"):
        table.add_column(column, overflow="fold")
    for step in plan["steps"]:
        table.add_row(step["id"], step["title"], step.get("role") or "", ", ".join(step.get("deps") or []),
                      step.get("tests") or "", ", ".join(step.get("files") or []))
    return table


def graph_lines(plan: dict) -> list[str]:
    """The dependencies, one line per task: "impl <- tests, read"."""
    return [f"{s['id']} <- {', '.join(s['deps'])}" if s.get("deps") else f"{s['id']} (starts at once)"
            for s in plan["steps"]]


@click.command("plan")
@click.argument("goal", required=False)
@click.option("--goal-file", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Read the goal from a file.")
@click.option("--yes", is_flag=True, help="Add the tasks without asking.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the proposed tasks as JSON (added too with --yes; nothing is asked).")
@click.option("--attempts", type=click.IntRange(1, 10), default=3, show_default=True,
              help="Replies the model may give before its plan is valid.")
@_upstream
@_project
def plan_command(goal, goal_file, yes, as_json, attempts, upstream, project) -> None:
    """Turn a goal into tasks with dependencies, roles, acceptance tests and the files each will touch,
    proposed by the model ([model]) and checked like `clude run`'s plans; approve, edit or reject, then
    they are added to the board in one push."""
    from rich.console import Console

    from clude.agent.plan import PlanError
    from clude.agent.planner import PlanningFailed
    from clude.cli.run_view import confirm_plan
    from clude.gitcli import GitError
    from clude.llm.base import ModelError
    from clude.llm.providers import make_model
    from clude.team.plan.propose import parse_team_plan, propose, task_fields
    from clude.team.protocol.admin import add_tasks
    from clude.team.protocol.sync import UpstreamRejected
    from clude.team.work.roles import role_names

    if goal and goal_file:
        fail("give GOAL or --goal-file, not both")
    goal = goal_file.read_text(encoding="utf-8") if goal_file else goal
    if not goal or not goal.strip():
        fail('give the goal: clude team plan "GOAL" (or --goal-file FILE)')
    console = Console(highlight=False, soft_wrap=True, stderr=as_json)
    with board_repo(project, upstream) as (settings, repo):
        from clude.team.protocol.admin import board_of
        board = board_of(repo, settings.team.lease_s)
        roles = role_names(Path(settings.team.roles_dir) if settings.team.roles_dir else None)
        on_board = {tid: item.task.title for tid, item in board.tasks.items()}
        try:
            model = make_model(settings.model, base_dir=project.resolve())
            plan = propose(model, repo.path, goal, roles=roles, board=on_board, attempts=attempts)
        except PlanningFailed as error:
            fail(f"the model gave no usable plan: {error}", PLAN_BLOCKED)
        except ModelError as error:
            fail(f"the model cannot be used: {error} (clude init sets up [model]; clude doctor checks it)",
                 PLAN_ERROR)
        shown = plan_dict(plan)
        if as_json and not yes:
            click.echo(json.dumps({"plan": shown, "added": []}, ensure_ascii=False))
            return
        if not as_json:
            if yes:  # asked, the question shows them
                console.print(tasks_table(shown))
            console.print("\n".join(graph_lines(shown)))
        if not yes:
            def validate(data):
                return parse_team_plan(json.dumps(data), roles=roles, board=on_board)
            try:
                plan = confirm_plan(console, question="Add these tasks?", dump=plan_dict, table=tasks_table,
                                    validate=validate)(plan)
            except PlanError as error:  # pragma: no cover - validate reports through the loop
                fail("; ".join(error.errors))
            if plan is None:
                click.echo("rejected: nothing added")
                raise SystemExit(PLAN_REJECTED)
        try:
            tasks, notes = add_tasks(repo, task_fields(plan, max_attempts=settings.team.max_attempts, goal=goal),
                                     why=f"planned for the goal: {' '.join(goal.split())[:150]}")
        except (GitError, UpstreamRejected) as error:
            fail(f"cannot change the team's upstream: {error}", TEAM_VIEW_UNREACHABLE)
    ids = dict(zip([s.id for s in plan.steps], [t.id for t in tasks]))
    if as_json:
        click.echo(json.dumps({"plan": plan_dict(plan), "added": [{"step": s, "task": t} for s, t in ids.items()]},
                              ensure_ascii=False))
    else:
        click.echo(f"added {len(tasks)} task(s): " + ", ".join(f"{t} ({s})" for s, t in ids.items()))
        for note in notes:
            click.echo(f"note: {note}")
    raise SystemExit(PLAN_ADDED)
