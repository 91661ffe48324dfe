"""One table of exit codes: every command's codes come from clude.exits, and docs/exit-codes.md says
exactly what the table says."""

from __future__ import annotations

from pathlib import Path

from clude import exits
from clude.agent.result import EXIT_CODES as RUN_CODES
from clude.harness.status import EXIT_CODES as TEST_CODES

DOCS = Path(__file__).resolve().parents[1] / "docs" / "exit-codes.md"


def test_the_documented_table_is_the_table_in_the_code():
    assert DOCS.read_text(encoding="utf-8") == exits.markdown(), \
        "docs/exit-codes.md is out of date: write it with clude.exits.markdown()"


def test_every_code_a_command_ends_with_is_in_its_row_of_the_table():
    known = {command: set(codes) | set(exits.COMMON) for command, codes in exits.TABLE.items()}
    assert set(TEST_CODES.values()) | {exits.TEST_REGRESSIONS} <= known["clude test"]
    assert set(RUN_CODES.values()) <= known["clude run / clude resume"]
    from clude.team.work import worker
    assert {worker.EXIT_SETTLED, worker.EXIT_UPSTREAM, worker.EXIT_INFRA, worker.EXIT_CRASHED,
            worker.EXIT_INTERRUPTED} <= known["clude team worker"]
    from clude.cli import doctor_cmd, team_run_cmd
    assert {team_run_cmd.EXIT_TASKS_LEFT, team_run_cmd.EXIT_INFRA} <= known["clude team run"]
    assert {doctor_cmd.EXIT_ERROR, doctor_cmd.EXIT_USAGE} <= known["clude doctor"]
    # each command's codes differ from one another: a script can tell every outcome apart
    for command, codes in exits.TABLE.items():
        assert not set(codes) & set(exits.COMMON), command
