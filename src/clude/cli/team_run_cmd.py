"""`clude team worker`, `clude team run` and `clude team status`: the workers and what they do."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click

from clude.cli.team_cmd import _project, _upstream, board_repo, fail, settings_of

EXIT_TASKS_LEFT = 1   # team run: some tasks failed or are blocked
EXIT_INFRA = 4        # team run: the workers could not work (see their reasons)

_backend = click.option("--backend", default=None, help="The agent CLI: clude, claude, codex, aider, "
                        "gemini, command, or one of [backends.NAME] [default: [team] backend].")
_command = click.option("--command", default=None, metavar="TEMPLATE",
                        help="For --backend command: the command line, with {prompt_file} {task_id} "
                             "{workdir} {agent_id}.")


def _backend_of(settings, name: str | None, command: str | None):
    from clude.team.backends import get_backend

    name = name or ("command" if command else settings.team.backend)
    try:
        return get_backend(name, settings.backends, command=command)
    except ValueError as error:
        fail(str(error))


@click.command("worker")
@click.option("--upstream", required=True, metavar="URL", help="The team's upstream (any git URL).")
@click.option("--agent-id", required=True, help="This worker's name, unique in the team.")
@_backend
@_command
@click.option("--role", default=None, help="Take only tasks of this role (and tasks without one).")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where this worker keeps its clones [default: .clude/agents/AGENT_ID].")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where events.jsonl and logs/ go [default: .clude].")
@click.option("--forever", is_flag=True, help="Keep waiting for new tasks when none is left.")
@click.option("--max-tasks", type=click.IntRange(1), default=None, help="Stop after this many attempts.")
@_project
def worker_command(upstream, agent_id, backend, command, role, workdir, state_dir, forever, max_tasks,
                   project) -> None:
    """One worker: claim, work, verify, push, until no task is left (local, or on another machine)."""
    from clude.harness.runner import clude_dir
    from clude.team.worker import Worker, WorkerConfig

    settings = settings_of(project)
    state = state_dir or clude_dir(project.resolve())
    worker = Worker(WorkerConfig(
        agent_id=agent_id, upstream=upstream, workdir=(workdir or state / "agents" / agent_id).resolve(),
        state_dir=Path(state).resolve(), backend=_backend_of(settings, backend, command),
        settings=settings, role=role, env=dict(os.environ), forever=forever, max_tasks=max_tasks))
    import signal

    def stop(signum, frame):
        raise KeyboardInterrupt()

    signal.signal(signal.SIGTERM, stop)
    sys.exit(worker.run())


@click.command("run")
@click.option("--agents", type=click.IntRange(1, 64), default=None,
              help="Workers to start [default: [team] agents, 3].")
@_backend
@_command
@click.option("--roles", default=None, metavar="ROLE=N,...", help="e.g. implementer=3,docs=1.")
@click.option("--forever", is_flag=True, help="Keep the workers waiting for new tasks.")
@click.option("--json", "as_json", is_flag=True, help="Print the final board as JSON.")
@_upstream
@_project
def run_command(agents, backend, command, roles, forever, as_json, upstream, project) -> None:
    """Start N workers and return when every task is done, failed or blocked."""
    from clude.team.admin import NoTeam, board_of, upstream_of, view
    from clude.team.runner import assign_roles, parse_roles, start_worker, stop_workers, supervise

    root = project.resolve()
    settings = settings_of(project)
    try:
        url = upstream_of(root, settings, upstream)
        plan = assign_roles(agents or settings.team.agents, parse_roles(roles) or settings.team.roles)
    except (NoTeam, ValueError) as error:
        fail(str(error))
    backend_obj = _backend_of(settings, backend, command)  # checked here: a bad name stops at once
    workers = [start_worker(root, url, agent_id, role, backend=backend_obj.name, command=command,
                            forever=forever, env=dict(os.environ)) for agent_id, role in plan]
    click.echo(f"started {len(workers)} workers ({backend_obj.name}) on {url}", err=True)
    repo = view(root, url)

    def current():
        repo.fetch()
        repo.reset_to_upstream()
        return board_of(repo, settings.team.lease_s)

    try:
        why = supervise(workers, current, forever=forever)
    except KeyboardInterrupt:
        why = "interrupted"
    stop_workers(workers)
    board = current()
    exits = {w.agent_id: w.proc.returncode for w in workers}
    if as_json:
        from clude.cli.team_view import board_json
        click.echo(json.dumps({"stopped": why, "workers": exits, **board_json(board)}, ensure_ascii=False))
    else:
        from clude.cli.team_view import print_board
        print_board(board)
        click.echo(f"stopped: {why}; worker exit codes: "
                   + ", ".join(f"{a}={c}" for a, c in exits.items()))
        click.echo(f"PROGRESS.md: {repo.path / 'PROGRESS.md'}; logs: {root / '.clude' / 'logs'}")
    if why == "interrupted":
        sys.exit(130)
    states = {item.state for item in board.tasks.values()}
    if why == "workers exited" and states & {"open", "claimed"}:
        sys.exit(EXIT_INFRA)
    sys.exit(EXIT_TASKS_LEFT if states & {"failed", "blocked", "open", "claimed"} else 0)


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print tasks and workers as JSON.")
@_upstream
@_project
def status_command(as_json, upstream, project) -> None:
    """Tasks (state, attempts, holder) and workers (state, task, last error)."""
    from clude.harness.runner import clude_dir
    from clude.team.admin import board_of
    from clude.team.events import read_events

    settings, repo = board_repo(project, upstream)
    board = board_of(repo, settings.team.lease_s)
    workers = worker_states(read_events(clude_dir(project.resolve())))
    if as_json:
        from clude.cli.team_view import board_json
        click.echo(json.dumps({**board_json(board), "workers": workers}, ensure_ascii=False))
        return
    from rich.console import Console

    from clude.cli.team_view import print_board, workers_table
    console = Console(highlight=False, soft_wrap=True)
    print_board(board, console)
    if workers:
        console.print(workers_table(workers))


_STATE_AFTER = {"worker_started": "idle", "claimed": "working", "agent_started": "working",
                "agent_finished": "verifying", "done": "idle", "failed_attempt": "idle", "infra": "idle",
                "lost": "idle", "worker_blocked": "blocked", "worker_done": "exited",
                "worker_stopped": "exited"}


def worker_states(events: list[dict]) -> list[dict]:
    """Each worker's state from its events: the last state-changing event, its task and last error."""
    workers: dict[str, dict] = {}
    for event in events:
        agent = str(event.get("agent", "?"))
        w = workers.setdefault(agent, {"agent": agent, "state": "idle", "task": None, "since": None,
                                       "error": None})
        kind = event.get("kind")
        if kind in _STATE_AFTER:
            w["state"] = _STATE_AFTER[kind]
            w["since"] = time.strftime("%H:%M:%S", time.localtime(float(event.get("at", 0))))
            w["task"] = event.get("task") if w["state"] in ("working", "verifying") else None
        if event.get("level") == "ERROR":
            w["error"] = event.get("reason") or event.get("message")
    return list(workers.values())
