"""`clude doctor`: the pre-flight checks, one line each (`OK check — found` / `ERROR check — fix`); and
the same checks as `clude run` and `clude team run` make before anything starts."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from clude.exits import DOCTOR_ERROR as EXIT_ERROR, DOCTOR_OK as EXIT_OK, USAGE as EXIT_USAGE


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help='Print {"ok", "checks": [{"name", "ok", "detail"}]}.')
@click.option("--scope", type=click.Choice(["run", "team", "all"]), default="all", show_default=True,
              help="run: what `clude run` needs; team: what `clude team run` needs; all: both (team checks "
                   "when the project is a team or --backend is given).")
@click.option("--backend", "backends", multiple=True, metavar="NAME",
              help="A backend to check (repeatable) [default: [team] backend].")
@click.option("--command", default=None, metavar="TEMPLATE", help="The --command of the backend.")
@click.option("--upstream", default=None, metavar="PATH|URL",
              help="The team's upstream [default: [team] upstream, else the remote 'upstream'].")
@click.option("-C", "--project", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=Path("."), help="The project directory [default: .].")
def doctor_command(as_json, scope, backends, command, upstream, project) -> None:
    """Check git, the team's upstream, the agent CLIs and their variables, the model, the tests and disk
    space before agents start. Exit 0 when all is OK, 4 on any ERROR.

    The model is asked a one-token question (`clude run` and `clude team run` only ask its server for
    its model list before they start)."""
    ok = report(project, as_json=as_json, scope=scope, backends=list(backends) or None, command=command,
                upstream=upstream)
    sys.exit(EXIT_OK if ok else EXIT_ERROR)


def report(project: Path, *, as_json: bool = False, scope: str = "all", backends: list[str] | None = None,
           command: str | None = None, upstream: str | None = None) -> bool:
    """`clude doctor`'s checks and lines (also the end of `clude init`): whether no check is an ERROR.
    A configuration that cannot be read exits with the usage code."""
    from clude.config import ConfigError, load_settings
    from clude.doctor import run_checks

    try:
        settings, _ = load_settings(project)
    except ConfigError as error:
        click.echo(f"clude: {error}", err=True)
        sys.exit(EXIT_USAGE)
    checks = run_checks(project, settings, env=dict(os.environ), scope=scope, backends=backends,
                        command=command, upstream=upstream)
    ok = all(c.ok for c in checks)
    if as_json:
        click.echo(json.dumps({"ok": ok, "checks": [c.as_dict() for c in checks]}, ensure_ascii=False))
    else:
        for check in checks:
            click.echo(check.line())
    return ok


def preflight(project: Path, settings, *, scope: str, backends: list[str] | None = None,
              command: str | None = None, upstream: str | None = None) -> list:
    """The checks `clude run` and `clude team run` make before starting, the ERRORs among them. The
    model's server is asked for its model list rather than a reply (no tokens spent, no scripted
    reply taken)."""
    from clude.doctor import probe_model, run_checks

    checks = run_checks(project, settings, env=dict(os.environ), scope=scope, backends=backends,
                        command=command, upstream=upstream, model_check=probe_model)
    return [c for c in checks if not c.ok]


def print_refusal(errors: list) -> None:
    """The ERROR lines, and what to do, on stderr."""
    from clude.doctor.model import NOT_CONFIGURED

    for check in errors:
        click.echo(check.line(), err=True)
    if any(c.name == "model" and c.detail == NOT_CONFIGURED for c in errors):  # skipping checks cannot help
        click.echo("clude: not started: no model is configured: run `clude init` (or set [model] in "
                   "clude.toml), then `clude doctor` checks again", err=True)
        return
    click.echo("clude: not started: fix the ERRORs above (`clude doctor` checks again), or skip the "
               "checks with --no-doctor", err=True)
