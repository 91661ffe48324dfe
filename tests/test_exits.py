"""One table of exit codes: every command's codes come from clude.exits, and docs/exit-codes.md says
exactly what the table says."""

from __future__ import annotations

import re
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


def test_models_check_and_the_demo_take_their_codes_from_the_table():
    from clude.cli import models_cmd
    assert models_cmd.EXIT_ERROR == exits.DOCTOR_ERROR == exits.RUN_ERROR  # "cannot be used" is 4 everywhere
    assert {models_cmd.EXIT_OK, models_cmd.EXIT_ERROR} <= set(exits.TABLE["clude models check"])
    assert {exits.DEMO_AS_DESIGNED, exits.DEMO_NOT_AS_DESIGNED} == set(exits.TABLE["clude team demo"])


# sys.exit(1), ctx.exit(4), fail("...", 4): a number where a name of clude.exits belongs
LITERAL = re.compile(r"(?:sys\.exit|ctx\.exit|\.exit)\((?:[0-9]|[^()]*\belse [0-9])|\bfail\(.*, [0-9]+\)")
# files another change owns for now (the team's control commands): to take out of this set once their
# literals are names of clude.exits
def test_no_command_ends_with_a_literal_code():
    found = []
    for path in sorted((Path(__file__).resolve().parents[1] / "src" / "clude" / "cli").glob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if LITERAL.search(line):
                found.append(f"{path.name}:{number}: {line.strip()}")
    assert not found, "use a name from clude.exits:\n" + "\n".join(found)


def test_the_readme_sums_up_every_row_of_the_table():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Exit codes\n", 1)[1].split("\n## ", 1)[0]
    assert "docs/exit-codes.md" in section
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("`clude"):
            rows[cells[0].replace("`", "")] = {int(n) for n in re.findall(r"(?:^|· )([0-9]+) ", cells[1])}
    assert rows == {command: set(codes) for command, codes in exits.TABLE.items()}
