"""`clude test`: run the project's tests and print the concise report (or the Verdict as JSON)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from clude.exits import TEST_REGRESSIONS as EXIT_REGRESSIONS, USAGE as EXIT_USAGE
from clude.config.files import ConfigError, raw_test_table
from clude.harness.cache import lookup, report_shown
from clude.harness.inject.clude_sample import default_seed
from clude.harness.status import EXIT_CODES, Status

if TYPE_CHECKING:
    from clude.harness.compare import Comparison
    from clude.harness.verdict import Verdict

_STYLE = {Status.PASSED: "bold green", Status.FAILED: "bold red"}


@click.command("test", context_settings={"ignore_unknown_options": True})
@click.option("--json", "as_json", is_flag=True, help="Print the Verdict as JSON instead of the report.")
@click.option("--fast", "rate", type=click.FloatRange(0, 1, min_open=True), default=None,
              metavar="RATE", help="Run a deterministic sample of the tests (0 < RATE <= 1).")
@click.option("--seed", default=None, help="Sample seed [default: $CLUDE_AGENT_ID, else the host name].")
@click.option("--no-cache", is_flag=True, help="Run even if the tree is unchanged since a cached run.")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), default=None, metavar="SECONDS",
              help="Kill the test run after this long [default: [test] timeout, 900].")
@click.option("--compare", "base", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="BASE.json", help="Report regressions and fixes against a saved Verdict.")
@click.option("--save", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Also write the Verdict, with every test's outcome, to FILE (what --compare reads later).")
@click.option("--explain", is_flag=True, help="Say what would run and the evidence for it; run nothing.")
@click.option("-C", "--project", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=Path("."), help="The project directory [default: .].")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def test_command(as_json, rate, seed, no_cache, timeout, base, save, explain, project, command) -> None:
    """Run the tests and give a verdict: `clude test [OPTIONS] [-- COMMAND ...]`.

    \b
    Exit codes: 0 passed, 1 failed, 3 error, 4 no_tests, 5 timeout, 6 crashed,
    130 interrupted, 2 bad usage or configuration; with --compare, 0 when nothing
    regressed and 7 when something did.
    """
    command = list(command) or None
    missed_key = None
    if explain:
        _explain(project, command)
    try:
        if not no_cache and base is None and save is None:
            missed_key = _answer_from_cache(project, command, rate, seed, raw_test_table(project),
                                            as_json)
        from clude.config.loader import load_settings
        settings, _ = load_settings(project)
    except ConfigError as exc:
        click.echo(f"clude: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    from clude.harness.compare import compare
    from clude.harness.runner import run_tests
    baseline = _load_base(base) if base else None
    verdict = run_tests(project, settings.test, command=command, rate=rate, seed=seed,
                        use_cache=not no_cache, timeout_s=timeout, missed_key=missed_key)
    comparison = compare(baseline, verdict) if baseline else None
    if save is not None:
        try:
            save.write_text(verdict.model_dump_json(), encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(f"cannot write {save}: {exc.strerror}", param_hint="--save")
    if as_json:
        data = verdict.public()
        if comparison:
            data["comparison"] = comparison.model_dump()
        click.echo(json.dumps(data, ensure_ascii=False))
    else:
        from clude.harness.report import concise
        _print(concise(verdict), verdict.status, comparison)
    sys.exit(_exit_code(verdict, comparison))


def _explain(project: Path, command: list[str] | None) -> None:
    from clude.config.loader import load_settings
    from clude.harness.runner import explain
    try:
        settings, _ = load_settings(project)
    except ConfigError as exc:
        click.echo(f"clude: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    found, lines = explain(project.resolve(), settings.test, command, {**os.environ, **settings.test.env})
    click.echo("\n".join(lines))
    sys.exit(EXIT_CODES[Status.PASSED] if found else EXIT_CODES[Status.NO_TESTS])


def _answer_from_cache(project: Path, command, rate, seed, test_table: dict, as_json: bool) -> str:
    """On a cache hit, print the stored answer and exit, before pydantic is even imported; on a
    miss, return the request's key."""
    env = dict(os.environ)
    key, entry = lookup(project.resolve(), command=command, rate=rate,
                        seed=seed if seed is not None else default_seed(env), config=test_table,
                        env=env)
    if entry is None:
        return key
    verdict = entry["verdict"]
    status = Status(verdict["status"])
    shown = report_shown(verdict.get("report_path"), project.resolve())
    if as_json:
        click.echo(json.dumps({k: (shown if k == "report_path" else v) for k, v in verdict.items()
                               if k != "outcomes"}, ensure_ascii=False))
    else:  # the report is named where the run that made it left it, and not at all once it is gone
        lines = [line for line in entry["report"].splitlines() if not line.startswith("report: ")]
        _print("\n".join(lines + ([f"report: {shown}"] if shown else [])), status, None)
    sys.exit(EXIT_CODES[status])


def _exit_code(verdict: Verdict, comparison: Comparison | None) -> int:
    if comparison is not None and verdict.status in (Status.PASSED, Status.FAILED):
        return EXIT_REGRESSIONS if comparison.regressions else 0
    return EXIT_CODES[verdict.status]


def _load_base(path: Path) -> Verdict:
    from pydantic import ValidationError

    from clude.harness.verdict import Verdict
    try:
        base = Verdict.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="--compare")
    except (ValueError, ValidationError) as exc:
        raise click.BadParameter(f"{path} is not a clude Verdict ({str(exc).splitlines()[0]})",
                                 param_hint="--compare")
    if base.outcomes is None:
        raise click.BadParameter(
            f"{path} has no per-test outcomes: save it with clude test --save FILE (or use the verdict.json "
            f"beside a report, .clude/reports/<run>/verdict.json), not the output of --json", param_hint="--compare")
    return base


def _print(report: str, status: Status, comparison: Comparison | None) -> None:
    lines = report.splitlines()
    out = [(lines[0], _STYLE.get(status, "bold yellow"))] + [(line, None) for line in lines[1:]]
    if comparison is not None:
        out.append((f"{len(comparison.regressions)} regressions, {len(comparison.fixes)} fixes "
                    f"against the base ({comparison.base_total} tests)",
                    "bold red" if comparison.regressions else "bold green"))
        out += [(f"REGRESSION {test_id} — passed before, {outcome} now", None)
                for test_id, outcome in list(comparison.regressions.items())[:10]]
        out += [(f"RENAMED {old} -> {new} (compared as one test)", None)
                for old, new in list(comparison.renamed.items())[:10]]
    if not (sys.stdout.isatty() or os.environ.get("FORCE_COLOR")):
        # Not a terminal (an agent, a pipe): plain lines, without importing rich (~40 ms of start-up).
        click.echo("\n".join(text for text, _ in out))
        return
    from rich.console import Console
    console = Console(highlight=False, soft_wrap=True)
    for text, style in out:
        console.print(text, style=style, markup=False, emoji=False)
