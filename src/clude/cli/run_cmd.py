"""`clude run`, `clude resume` and `clude sessions`: the single agent on the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from clude.cli.signals import stop_signals_as_interrupt

from clude.exits import RUN_ERROR as EXIT_ERROR, USAGE as EXIT_USAGE

_project = click.option("-C", "--project", type=click.Path(file_okay=False, exists=True, path_type=Path),
                        default=Path("."), help="The project directory [default: .].")
_json = click.option("--json", "as_json", is_flag=True,
                     help="Print the result as JSON on stdout (progress goes to stderr).")
_headless = click.option("--headless", is_flag=True,
                         help="Never ask anything; no progress output unless --verbose.")


_sandbox = click.option("--sandbox", "sandbox_mode", type=click.Choice(["on", "off"]), default=None,
                        help="Run the agent's shell commands and the tests in bubblewrap (on), or without "
                             "a sandbox (off) [default: [sandbox] mode, on].")


@click.command("run")
@click.argument("goal", nargs=-1)
@click.option("--task-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Read the goal from this file.")
@_project
@_json
@_headless
@click.option("--confirm", is_flag=True, help="Show the plan and ask: approve, edit or reject.")
@click.option("--parallel", type=click.IntRange(1, 32), default=None, metavar="N",
              help="Run up to N independent steps at once, each in its own git worktree.")
@click.option("--verify", type=click.Choice(["end", "each_step", "never"]), default=None,
              help="When to run the tests [default: [agent] verify, end].")
@click.option("--max-iterations", type=click.IntRange(1, 1000), default=None, metavar="N",
              help="Model turns per step [default: [agent] max_iterations, 30].")
@click.option("--verbose", "-v", is_flag=True, help="Progress output even with --headless.")
@click.option("--no-doctor", is_flag=True, help="Skip the pre-flight checks (clude doctor --scope run).")
@click.option("--allow-tests", is_flag=True, default=None,
              help="Let the agent change the tests and their configuration (refused by default: the "
                   "tests judge its work).")
@_sandbox
def run_command(goal, task_file, project, as_json, headless, confirm, parallel, verify, max_iterations,
                verbose, no_doctor, allow_tests, sandbox_mode) -> None:
    """Plan, carry out and verify GOAL with the configured model: `clude run "fix the failing test"`.

    \b
    Exit codes: 0 done, 1 failed (the work did not succeed or verify), 3 blocked (no valid plan,
    a budget used up, the plan rejected), 4 error (the model or the environment cannot be used:
    fix it and `clude resume`), 130 interrupted (`clude resume`), 2 bad usage or configuration.
    """
    if goal and task_file:
        _usage("give the goal as arguments or with --task-file, not both")
    if task_file:
        try:
            text = task_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            _usage(f"{task_file}: cannot be read: {error}")
    else:
        text = " ".join(goal)
    if not text.strip():
        _usage("no goal: clude run \"what to do\", or clude run --task-file TASK.md")
    if confirm and headless:
        _usage("--confirm asks questions; --headless never does: choose one")
    overrides = {"agent": {"parallel": parallel, "verify": verify, "max_iterations": max_iterations,
                           "allow_tests": allow_tests}}
    settings = _settings(project, {**overrides, "sandbox": {"mode": sandbox_mode} if sandbox_mode else {}})
    _sandbox_or_exit(settings, as_json)
    if not no_doctor:  # before any session exists: an environment that cannot work is refused at once
        _preflight(project, settings, as_json)
    else:
        _model_or_exit(settings, as_json)
    console = _console(as_json, headless and not verbose)
    from clude.agent import start_run
    from clude.cli.run_view import ConsoleView, confirm_plan
    from clude.llm.base import ModelError

    try:
        with stop_signals_as_interrupt():
            result = start_run(project, text.strip(), settings, overrides=overrides["agent"],
                               confirm=confirm_plan(console) if confirm else None,
                               listener=ConsoleView(console) if console else None)
    except ModelError as error:
        _infra_error(f"the model cannot be used: {error}", as_json)
    _finish(result, as_json, console)


@click.command("resume")
@click.argument("session_id", required=False)
@_project
@_json
@_headless
@click.option("--verbose", "-v", is_flag=True, help="Progress output even with --headless.")
@_sandbox
def resume_command(session_id, project, as_json, headless, verbose, sandbox_mode) -> None:
    """Go on with an interrupted run (the latest one without SESSION_ID); done steps are not redone."""
    settings = _settings(project, {"sandbox": {"mode": sandbox_mode}} if sandbox_mode else {})
    _sandbox_or_exit(settings, as_json)
    console = _console(as_json, headless and not verbose)
    from clude.agent import resume_run
    from clude.agent.session import SessionBusy, SessionFinished, SessionNotFound
    from clude.cli.run_view import ConsoleView
    from clude.llm.base import ModelError

    try:
        with stop_signals_as_interrupt():
            result = resume_run(project, settings, session_id,
                                listener=ConsoleView(console) if console else None)
    except (SessionNotFound, SessionFinished, SessionBusy) as error:
        _usage(str(error))
    except ModelError as error:
        _infra_error(f"the model cannot be used: {error}", as_json)
    _finish(result, as_json, console)


@click.command("sessions")
@_project
@_json
def sessions_command(project, as_json) -> None:
    """List the runs of this project: id, status, steps done, goal."""
    from clude.agent.session import SessionStore

    found = SessionStore(project.resolve()).list()
    if as_json:
        click.echo(json.dumps([{
            "id": s.id, "status": s.outcome, "state": s.state.value, "goal": s.goal, "reason": s.reason,
            "steps": len(s.steps), "done": sum(1 for r in s.steps.values() if r.status == "done"),
            "updated_at": s.updated_at} for s in found], ensure_ascii=False))
        return
    if not found:
        click.echo("no sessions yet: start one with clude run \"GOAL\"")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_edge=False)
    for column in ("session", "status", "state", "steps", "goal"):
        table.add_column(column)
    for s in found:
        done = sum(1 for r in s.steps.values() if r.status == "done")
        goal = s.goal.strip().splitlines()[0] if s.goal.strip() else ""
        table.add_row(s.id, s.outcome, s.state.value, f"{done}/{len(s.steps)}",
                      goal if len(goal) <= 60 else goal[:57] + "...")
    Console().print(table)


# helpers -------------------------------------------------------------------------------------
def _usage(message: str) -> None:
    click.echo(f"clude: {message}", err=True)
    sys.exit(EXIT_USAGE)


def _sandbox_or_exit(settings, as_json: bool) -> None:
    """The run's shell commands and tests need the sandbox: stop with how to get bubblewrap when it
    cannot be used here (before any session is made); this process keeps its environment (the
    model's key) from them."""
    from clude.sandbox import SandboxUnavailable, agent_sandbox, make_undumpable

    try:
        agent_sandbox(settings)
    except SandboxUnavailable as error:
        _infra_error(f"the agent's commands and tests need a sandbox: {error}", as_json)
    make_undumpable()


def _settings(project: Path, overrides: dict):
    from clude.config import ConfigError, load_settings

    try:
        settings, _ = load_settings(project, overrides)
    except ConfigError as error:
        _usage(str(error))
    return settings


def _console(as_json: bool, quiet: bool):
    from rich.console import Console

    if quiet:
        return None
    return Console(stderr=as_json, highlight=False, soft_wrap=True)


def _preflight(project: Path, settings, as_json: bool) -> None:
    from clude.cli.doctor_cmd import preflight, print_refusal
    from clude.doctor import refusal

    errors = preflight(project.resolve(), settings, scope="run")
    if errors:
        print_refusal(errors)
        _infra_error(refusal(errors), as_json, quiet=True)


def _model_or_exit(settings, as_json: bool) -> None:
    """Without the checks, a run with no model configured still stops at once, saying how to get one."""
    from clude.doctor.model import NOT_CONFIGURED, model_configured

    if not model_configured(settings.model):
        _infra_error(f"the model cannot be used: {NOT_CONFIGURED}", as_json)


def _infra_error(message: str, as_json: bool, quiet: bool = False) -> None:
    if as_json:
        click.echo(json.dumps({"status": "error", "reason": message, "session_id": None}))
    elif not quiet:
        click.echo(f"clude: {message}", err=True)
    sys.exit(EXIT_ERROR)


def _finish(result, as_json: bool, console) -> None:
    if as_json:
        click.echo(result.model_dump_json())
    if console is not None:
        from clude.cli.run_view import summary

        summary(console, result)
    elif not as_json:  # --headless: one line to act on
        click.echo(f"{result.status}: {result.reason} (session {result.session_id})")
    sys.exit(result.exit_code)
