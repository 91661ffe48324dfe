"""`clude team worker`, `clude team run` and `clude team status`: the workers and what they do."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import click

from clude.cli.signals import stop_signals_as_interrupt
from clude.cli.team_cmd import _project, _upstream, board_repo, fail, settings_of

from clude.exits import INTERRUPTED, TEAM_INFRA as EXIT_INFRA, TEAM_TASKS_LEFT as EXIT_TASKS_LEFT

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
    from clude.team.worker import Worker, WorkerConfig

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
@click.option("--json", "as_json", is_flag=True, help="Print the final board as JSON.")
@click.option("--no-doctor", is_flag=True, help="Skip the pre-flight checks (clude doctor --scope team).")
@_sandbox
@_upstream
@_project
def run_command(agents, backend, command, roles, forever, as_json, no_doctor, sandbox_mode, upstream,
                project) -> None:
    """Start N workers, restart the ones that exit (a crash loop blocks a worker with its reason), and
    return when every task is done, failed or blocked."""
    from clude.team.admin import NoTeam, upstream_of
    from clude.team.monitor import Plan
    from clude.team.runner import assign_roles, parse_roles

    root = project.resolve()
    settings = settings_of(project)
    if sandbox_mode:  # the doctor's sandbox check and the workers follow the flag
        settings = settings.model_copy(update={"sandbox": settings.sandbox.model_copy(update={"mode": sandbox_mode})})
    try:
        url = upstream_of(root, settings, upstream)
        assigned = assign_roles(agents or settings.team.agents, parse_roles(roles) or settings.team.roles)
    except (NoTeam, ValueError) as error:
        fail(str(error))
    from clude.team.roles import role_names
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
    sys.exit(run_team(root, settings, url, plans, forever=forever, as_json=as_json))


def run_team(root: Path, settings, url: str, plans, *, forever: bool, as_json: bool,
             echo=lambda text: click.echo(text, err=True)) -> int:
    """The monitor over `plans` until the board is settled or no worker can work; prints the end."""
    from clude.harness.runner import clude_dir
    from clude.team.admin import MONITOR_CLONE, board_of, clone_turn, note_progress, view
    from clude.team.board import all_settled
    from clude.team.crashloop import Policy
    from clude.team.events import EventLog
    from clude.team.monitor import Monitor

    team = settings.team
    state = clude_dir(root)
    with clone_turn(root, MONITOR_CLONE):
        repo = view(root, url, MONITOR_CLONE)
    logs: dict[str, EventLog] = {}
    seen: list = []  # the last board read: a failed fetch (a network blip) keeps it for one more look

    def emit(kind: str, level: str = "INFO", *, worker: str, **details) -> None:
        logs.setdefault(worker, EventLog(state, worker)).emit(kind, level, by="monitor", **details)

    def current():
        from clude.gitcli import GitError

        with clone_turn(root, MONITOR_CLONE):
            try:
                if not repo.refresh() and seen:  # main has not moved: the board is what it was
                    return seen[-1]
            except GitError as error:
                if not seen:
                    raise
                echo(f"could not read the upstream ({error}); trying again")
                return seen[-1]
            seen[:] = [board_of(repo, team.lease_s)]
        return seen[-1]

    def blocked(worker: str, reason: str) -> None:
        echo(f"worker {worker} blocked: {reason}")
        with clone_turn(root, MONITOR_CLONE):
            note_progress(repo, "blocked", f"worker {worker}", reason, agent=worker)

    policy = Policy(k=team.crash_loop, window_s=team.crash_window_s, base_s=team.restart_s,
                    cap_s=team.restart_cap_s)
    monitor = Monitor(root, state, url, plans, env=dict(os.environ), policy=policy,
                      heartbeat_s=team.heartbeat_s, forever=forever,
                      board_settled=lambda: all_settled(current()), emit=emit, on_blocked=blocked)
    unsandboxed = [p.agent_id for p in plans if p.sandbox == "off"]
    if unsandboxed:
        warning = (f"agents of {', '.join(unsandboxed)} run WITHOUT a sandbox (--sandbox off): they can read "
                   "your credentials and files, write outside their work trees and reach the upstream")
        echo(f"WARNING: {warning}")
        with clone_turn(root, MONITOR_CLONE):
            note_progress(repo, "note", "sandbox", warning, agent="monitor")
    from clude.secrets import Redactor
    echo(f"started {len(plans)} workers ({', '.join(sorted({p.backend for p in plans}))}) on "
         f"{Redactor({}).text(url)}")

    with stop_signals_as_interrupt((signal.SIGTERM,)):
        why = "interrupted"
        try:
            why = monitor.run()
        except KeyboardInterrupt:
            why = "interrupted"
        finally:
            monitor.finish() if why == "settled" else monitor.stop()
    board = current()
    workers = {a: {"state": w.state, "restarts": w.restarts, "reason": w.reason,
                   "exit_code": w.process.exit_code if w.process else None}
               for a, w in monitor.workers.items()}
    if as_json:
        from clude.cli.team_view import board_json
        click.echo(json.dumps({"stopped": why, "workers": workers, **board_json(board)}, ensure_ascii=False))
    else:
        from clude.cli.team_view import print_board
        print_board(board)
        for agent, w in workers.items():
            click.echo(f"worker {agent}: {w['state']}" + (f" — {w['reason']}" if w["state"] == "blocked" else "")
                       + (f" ({w['restarts']} restarts)" if w["restarts"] else ""))
        click.echo(f"stopped: {why}")
        click.echo(f"PROGRESS.md: {repo.path / 'PROGRESS.md'}; logs: {state / 'logs'}")
    if why == "interrupted":
        return INTERRUPTED
    states = {item.state for item in board.tasks.values()}
    if why in ("all workers blocked", "workers exited") and states & {"open", "claimed"}:
        return EXIT_INFRA
    return EXIT_TASKS_LEFT if states & {"failed", "blocked", "open", "claimed"} else 0


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print tasks and workers as JSON.")
@click.option("--watch", "live", is_flag=True, help="Refresh every second until Ctrl-C.")
@_upstream
@_project
def status_command(as_json, live, upstream, project) -> None:
    """Tasks (state, attempts, holder) and workers (state, task, last error)."""
    from clude.harness.runner import clude_dir
    from clude.team.admin import board_of
    from clude.team.events import read_events
    from clude.team.heartbeat import read_heartbeats

    state = clude_dir(project.resolve())
    if live:
        if as_json:
            fail("--watch and --json do not go together")
        from clude.cli.team_logs_cmd import status_view, watch
        from clude.team.admin import WATCH_CLONE, clone_turn

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


_STATE_AFTER = {"worker_restarted": "restarting", "worker_started": "idle", "claimed": "working",
                "agent_started": "working",
                "agent_finished": "verifying", "done": "idle", "failed_attempt": "idle", "infra": "idle",
                "lost": "idle", "worker_blocked": "blocked", "worker_done": "finished",
                "worker_stopped": "exited"}


def worker_states(events: list[dict], beats: dict[str, dict] | None = None, now: float | None = None) -> list[dict]:
    """Each worker's state from its events (and heartbeats): the last state-changing event, its task
    and attempt, uptime, restarts and last error."""
    now = time.time() if now is None else now
    workers: dict[str, dict] = {}
    for event in events:
        agent = str(event.get("agent", "?"))
        w = workers.setdefault(agent, {"agent": agent, "state": "idle", "task": None, "attempt": None,
                                       "since": None, "uptime_s": None, "restarts": 0, "error": None})
        kind = event.get("kind")
        at = float(event.get("at", 0))
        if kind == "worker_started":
            w["started"] = at
            w["sandbox"] = event.get("sandbox", "on")
        if kind == "worker_restarted":
            w["restarts"] = int(event.get("restarts") or w["restarts"] + 1)
        if kind in _STATE_AFTER:
            w["state"] = _STATE_AFTER[kind]
            w["since"] = time.strftime("%H:%M:%S", time.localtime(at))
            working = w["state"] in ("working", "verifying")
            w["task"] = event.get("task") if working else None
            w["attempt"] = event.get("attempt") if working else None
        if event.get("level") == "ERROR":
            w["error"] = event.get("reason") or event.get("message")
    for agent, beat in (beats or {}).items():
        w = workers.setdefault(agent, {"agent": agent, "restarts": 0, "error": None})
        if w.get("state") not in ("blocked", "exited", "finished"):
            w.update(state=beat.get("state"), task=beat.get("task"), attempt=beat.get("attempt"),
                     since=time.strftime("%H:%M:%S", time.localtime(float(beat.get("since") or 0))))
        w["started"] = float(beat.get("started") or w.get("started") or now)
        w["heartbeat_age_s"] = round(now - float(beat.get("at") or 0), 1)
    for w in workers.values():
        started = w.pop("started", None)
        ended = w.get("state") in ("exited", "blocked", "finished")
        w["uptime_s"] = round(now - started) if started and not ended else None
    return list(workers.values())


@click.command("demo")
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to make the demo project [default: a new temp folder].")
def demo_command(folder) -> None:
    """A whole team offline in under a minute: a sample library with failing tests, four tasks, three
    workers with clude's agent on a scripted model, and a fourth whose backend lacks its API key."""
    import tempfile

    from clude.config import load_settings
    from clude.team.demo import WORKERS, create_demo
    from clude.team.monitor import Plan

    folder = (folder or Path(tempfile.mkdtemp(prefix="clude-team-demo-"))).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    click.echo(f"making the demo project in {folder} ...", err=True)
    root, upstream = create_demo(folder)
    settings, _ = load_settings(root)
    sandbox_of(settings, None)  # the demo's agents run in the sandbox too: say so when it cannot be made
    plans = [Plan(agent, None, backend) for agent, backend in WORKERS]
    code = run_team(root, settings, upstream, plans, forever=False, as_json=False)
    click.echo(f"\nthe project: {root}  (its upstream: {upstream})\n"
               f"what happened: {root / '.clude/team/monitor/PROGRESS.md'}, failure records in "
               f"{root / '.clude/team/monitor/tasks/failures'}, logs in {root / '.clude/logs'}\n"
               f"look again with: clude team status -C {root}")
    # the demo ends as designed: 3 tasks done, 1 failed after 3 attempts, worker a4 blocked
    sys.exit(0 if code == EXIT_TASKS_LEFT else 1)
