"""The `clude` command group."""

from __future__ import annotations

import click

from clude import __version__
from clude.cli.doctor_cmd import doctor_command
from clude.cli.init_cmd import init_command
from clude.cli.models_cmd import models_group
from clude.cli.run_cmd import resume_command, run_command, sessions_command
from clude.cli.team_cmd import team_group
from clude.cli.team_control_cmd import pause_command, stop_command
from clude.cli.team_control_cmd import resume_command as team_resume
from clude.cli.team_logs_cmd import logs_group
from clude.cli.team_plan_cmd import plan_command
from clude.cli.team_serve_cmd import serve_command
from clude.cli.team_run_cmd import demo_command, run_command as team_run, status_command, worker_command
from clude.cli.test_cmd import test_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="clude")
def main() -> None:
    """Run AI coding agents unattended, and give them a test verdict they can trust."""


main.add_command(test_command)
main.add_command(models_group)
main.add_command(run_command)
main.add_command(resume_command)
main.add_command(sessions_command)
main.add_command(team_group)
main.add_command(doctor_command)
main.add_command(init_command)
for _command in (worker_command, team_run, status_command, demo_command, logs_group, pause_command,
                 team_resume, stop_command, serve_command, plan_command):
    team_group.add_command(_command)
