"""`clude team worker`, `clude team run` and `clude team status`: the workers and what they do."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import click

from clude.cli.signals import stop_signals_as_interrupt
from clude.cli.team_cmd import _project, _upstream, board_repo, fail, settings_of

from clude.exits import (DEMO_AS_DESIGNED, DEMO_NOT_AS_DESIGNED, TEAM_INFRA as EXIT_INFRA,
                         TEAM_TASKS_LEFT as EXIT_TASKS_LEFT)

_backend = click.option("--backend", default=None, help="The agent CLI: clude, claude, codex, aider, "
                        "gemini, command, or one of [backends.NAME] [default: [team] backend].")
_command = click.option("--command", default=None, metavar="TEMPLATE",
                        help="For --backend command: the command line, with {prompt_file} {task_id} "
                             "{workdir} {agent_id}.")


_sandbox = click.option("--sandbox", "sandbox_mode", type=click.Choice(["on", "off"]), default=None,
                        help="Run agents and tests in bubblewrap (on), or without a sandbox (off: they can "
                             "read your credentials and reach the upstream) [default: [sandbox] mode, on].")


def sandbox_of(settings, mode: str | None):
    """The sandbox of --sandbox / [sandbox]; a usage failure saying how to install bubblewrap when it is
    on and cannot be used."""
    from clude.sandbox import Sandbox, SandboxUnavailable

    try:
        return Sandbox.from_config(settings.sandbox, override=mode)
    except SandboxUnavailable as error:
        fail(f"agents are not started without a sandbox: {error}", EXIT_INFRA)


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
@click.option("--exit-with-parent", is_flag=True, hidden=True,
              help="Stop (releasing the task) when the process that started this worker is gone.")
@_sandbox
@_project
def worker_command(upstream, agent_id, backend, command, role, workdir, state_dir, forever, max_tasks,
                   exit_with_parent, sandbox_mode, project) -> None:
    """One worker: claim, work, verify, push, until no task is left (local, or on another machine)."""
    from clude.harness.runner import clude_dir
    from clude.team.work.worker import Worker, WorkerConfig

    settings = settings_of(project)
    state = state_dir or clude_dir(project.resolve())
    worker = Worker(WorkerConfig(
        agent_id=agent_id, upstream=upstream, workdir=(workdir or state / "agents" / agent_id).resolve(),
        state_dir=Path(state).resolve(), backend=_backend_of(settings, backend, command),
        settings=settings, role=role, env=dict(os.environ), forever=forever, max_tasks=max_tasks,
        parent_pid=os.getppid() if exit_with_parent else None, project=project.resolve(),
        sandbox=sandbox_of(settings, sandbox_mode)))
    with stop_signals_as_interrupt((signal.SIGTERM,)):
        code = worker.run()
    sys.exit(code)


@click.command("run")
@click.option("--agents", type=click.IntRange(1, 64), default=None,
              help="Workers to start [default: [team] agents, 3].")
@_backend
@_command
@click.option("--roles", default=None, metavar="ROLE=N,...", help="e.g. implementer=3,docs=1.")
@click.option("--forever", is_flag=True, help="Keep the workers waiting for new tasks.")
@click.option("--goal", default=None, metavar="TEXT",
              help="With --forever: what the team works towards; when the board is empty a planner (the "
                   "[model]) proposes the next tasks, up to [team] max_auto_tasks [default: [team] goal].")
@click.option("--from-tests", is_flag=True,
              help="Make the upstream's failing tests the tasks (one per cause), at the start and as the code "
                   "changes; run until the suite is green or what is left is failed or blocked.")
@click.option("--json", "as_json", is_flag=True, help="Print the final board as JSON.")
@click.option("--no-doctor", is_flag=True, help="Skip the pre-flight checks (clude doctor --scope team).")
@_sandbox
@_upstream
@_project
def run_command(agents, backend, command, roles, forever, goal, from_tests, as_json, no_doctor, sandbox_mode,
                upstream, project) -> None:
    """Start N workers, restart the ones that exit (a crash loop blocks a worker with its reason), and
    return when every task is done, failed or blocked."""
    from clude.team.supervision.monitor import Plan
    from clude.team.supervision.runner import assign_roles, parse_roles

    root = project.resolve()
    settings = settings_of(project)
    if sandbox_mode:  # the doctor's sandbox check and the workers follow the flag
        settings = settings.model_copy(update={"sandbox": settings.sandbox.model_copy(update={"mode": sandbox_mode})})
    url = _team_upstream(root, settings, upstream)
    try:
        assigned = assign_roles(agents or settings.team.agents, parse_roles(roles) or settings.team.roles)
    except ValueError as error:
        fail(str(error))
    from clude.team.work.roles import role_names
    known = role_names(Path(settings.team.roles_dir) if settings.team.roles_dir else None)
    unknown = sorted({role for _, role in assigned if role and role not in known})
    if unknown:
        fail(f"unknown role {', '.join(unknown)}: the roles are {', '.join(known)} (or add ROLE.md to "
             "[team] roles_dir)")
    name = _backend_of(settings, backend, command).name  # a bad name stops here, before any worker
    if not no_doctor:  # an environment that cannot work stops here, before any worker, with the fixes
        from clude.cli.doctor_cmd import preflight, print_refusal

        errors = preflight(root, settings, scope="team", backends=[name], command=command, upstream=url)
        if errors:
            print_refusal(errors)
            if as_json:
                click.echo(json.dumps({"stopped": "doctor", "ok": False,
                                       "checks": [c.as_dict() for c in errors]}, ensure_ascii=False))
            sys.exit(EXIT_INFRA)
    sandbox = sandbox_of(settings, None)  # refused here, before any worker, when bwrap is missing
    plans = [Plan(agent_id, role, name, command, sandbox="on" if sandbox.enabled else "off")
             for agent_id, role in assigned]
    tests_to_tasks = None
    if from_tests:
        from clude.harness.runner import clude_dir
        from clude.team.supervision.from_tests import TestsToTasks
        tests_to_tasks = TestsToTasks(root, settings, url, clude_dir(root), sandbox=sandbox,
                                      echo=lambda text: click.echo(text, err=True))
    director = _director(root, settings, url, sandbox, goal, forever=forever)
    sys.exit(run_team(root, settings, url, plans, forever=forever, as_json=as_json, from_tests=tests_to_tasks,
                      director=director))


def _director(root: Path, settings, url: str, sandbox, goal: str | None, *, forever: bool):
    """The planner of `--forever` when there is a goal (a usage error: --goal without --forever)."""
    if goal and not forever:
        fail("--goal is for --forever: the planner proposes tasks when the board is empty")
    goal = goal or settings.team.goal  # [team] goal without --forever: nothing to do
    if not goal or not forever or settings.team.max_auto_tasks == 0:
        return None
    from clude.harness.runner import clude_dir
    from clude.llm.base import ModelError
    from clude.llm.providers import make_model
    from clude.team.supervision.direct import Director
    from clude.team.supervision.from_tests import monitor_judge, suite_summary
    from clude.team.work.roles import role_names

    try:
        model = make_model(settings.model, base_dir=root)
    except ModelError as error:
        fail(f"--goal needs a model for its planner: {error} (clude init sets up [model])", EXIT_INFRA)
    judge = monitor_judge(root, settings, url, clude_dir(root), sandbox)
    roles = role_names(Path(settings.team.roles_dir) if settings.team.roles_dir else None)
    return Director(model, goal, roles=roles, max_tasks=settings.team.max_auto_tasks,
                    max_attempts=settings.team.max_attempts, suite=lambda path: suite_summary(judge, path),
                    echo=lambda text: click.echo(text, err=True))


def _team_upstream(root: Path, settings, upstream: str | None) -> str:
    """The team's upstream, or a usage failure saying what to do first (git init and a first commit
    where root is no git repository yet, then `clude team init`)."""
    from clude.team.protocol.admin import NoTeam, upstream_of
    from clude.team.protocol.upstream import not_a_team_yet

    try:
        return upstream_of(root, settings, upstream)
    except NoTeam:
        fail(not_a_team_yet(root))


def run_team(root: Path, settings, url: str, plans, *, forever: bool, as_json: bool,
             echo=lambda text: click.echo(text, err=True), from_tests=None, director=None) -> int:
    """The monitor over `plans` until the board is settled or no worker can work; prints the end."""
    from clude.team.supervision.team_run import supervise

    with stop_signals_as_interrupt((signal.SIGTERM,)):
        ended = supervise(root, settings, url, plans, forever=forever, echo=echo, from_tests=from_tests,
                          director=director)
    if as_json:
        from clude.cli.team_view import board_json
        click.echo(json.dumps({"stopped": ended.why, "workers": ended.workers, **board_json(ended.board)},
                              ensure_ascii=False))
    else:
        from clude.cli.team_view import print_board
        print_board(ended.board)
        for agent, w in ended.workers.items():
            click.echo(f"worker {agent}: {w['state']}" + (f" — {w['reason']}" if w["state"] == "blocked" else "")
                       + (f" ({w['restarts']} restarts)" if w["restarts"] else ""))
        click.echo(f"stopped: {ended.why}")
        click.echo(f"PROGRESS.md: {ended.progress}; logs: {ended.logs}")
    return ended.exit_code


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print tasks and workers as JSON.")
@click.option("--watch", "live", is_flag=True, help="Refresh every second until Ctrl-C.")
@_upstream
@_project
def status_command(as_json, live, upstream, project) -> None:
    """Tasks (state, attempts, holder) and workers (state, task, last error)."""
    from clude.harness.runner import clude_dir
    from clude.team.protocol.admin import board_of
    from clude.team.logs.events import read_events
    from clude.team.logs.status import worker_states
    from clude.team.work.heartbeat import read_heartbeats

    state = clude_dir(project.resolve())
    _team_upstream(project.resolve(), settings_of(project), upstream)  # no team here: what to do first
    if live:
        if as_json:
            fail("--watch and --json do not go together")
        from clude.cli.team_logs_cmd import status_view, watch
        from clude.team.protocol.admin import WATCH_CLONE, clone_turn

        # its own clone, so that a `task add` meanwhile never shares one with it; taken for each refresh
        with board_repo(project, upstream, WATCH_CLONE) as (settings, repo):
            pass  # made, and the upstream reached (or a clear error before the first view)

        def render():
            with clone_turn(project.resolve(), WATCH_CLONE):
                repo.refresh()  # a fetch only when the upstream's main moved
                board = board_of(repo, settings.team.lease_s)
            return status_view(board, worker_states(read_events(state), read_heartbeats(state)))

        watch(render, 1.0)
        return
    with board_repo(project, upstream) as (settings, repo):
        board = board_of(repo, settings.team.lease_s)
    workers = worker_states(read_events(state), read_heartbeats(state))
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
        from clude.cli.team_logs_cmd import sandbox_warning
        if sandbox_warning(workers):
            console.print(sandbox_warning(workers), style="yellow")


@click.command("demo")
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to make the demo project [default: a new temp folder].")
def demo_command(folder) -> None:
    """A whole team offline in under a minute: a sample library with failing tests, four tasks, three
    workers with clude's agent on a scripted model, and a fourth whose backend lacks its API key."""
    import tempfile

    from clude.config import load_settings
    from clude.team.demo import WORKERS, create_demo
    from clude.team.supervision.monitor import Plan

    folder = (folder or Path(tempfile.mkdtemp(prefix="clude-team-demo-"))).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    click.echo(f"making the demo project in {folder} ...", err=True)
    root, upstream = create_demo(folder)
    settings, _ = load_settings(root)
    sandbox_of(settings, None)  # the demo's agents run in the sandbox too: say so when it cannot be made
    plans = [Plan(agent, None, backend) for agent, backend in WORKERS]
    code = run_team(root, settings, upstream, plans, forever=False, as_json=False)
    click.echo(f"\n{_pulled(root)}")  # the fixes landed on the upstream: the project folder gets them too
    click.echo(f"the project: {root}  (its upstream: {upstream})\n"
               f"what happened: {root / '.clude/team/monitor/PROGRESS.md'}, failure records in "
               f"{root / '.clude/team/monitor/tasks/failures'}, logs in {root / '.clude/logs'}\n"
               f"look again with: clude team status -C {root}")
    # the demo ends as designed: 3 tasks done, 1 failed after 3 attempts, worker a4 blocked
    sys.exit(DEMO_AS_DESIGNED if code == EXIT_TASKS_LEFT else DEMO_NOT_AS_DESIGNED)


def _pulled(root: Path) -> str:
    """Pull the upstream into the demo's project folder; what it did, as a line to print."""
    import subprocess

    from clude.team.demo import PULL, pull_upstream

    command = "git " + " ".join(arg for arg in PULL if arg != "-q")
    try:
        commits = pull_upstream(root)
    except subprocess.CalledProcessError as error:
        why = (error.stderr or "").strip().splitlines()
        return (f"could not bring the team's work into {root} ({why[-1] if why else error}); it is on the "
                f"upstream: cd {root} && {command}")
    return (f"pulled the team's work into {root} ({commits} commit{'s' if commits != 1 else ''} from the "
            f"upstream, {command}): the fixes are in its files now")
