"""`clude team logs analyze`: what went wrong, from the team's events and logs; and `watch`, the live
refresh of `clude team status --watch`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import click

SHOW_LOOPS = 5
SHOW_ERRORS = 10
EXAMPLES = 3        # the top errors shown with a raw example line
SHOW_OVER = 5
LINE_CHARS = 110


@click.group("logs")
def logs_group() -> None:
    """The team's events (.clude/events.jsonl) and logs (.clude/logs/)."""


@logs_group.command("analyze")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--threshold", "loop_threshold", type=click.IntRange(min=2), default=3, show_default=True,
              help="Failures before any work, in a row, that make a crash loop.")
@click.option("--window", "window_s", type=click.FloatRange(min=0), default=600.0, show_default=True,
              help="... within this many seconds.")
@click.option("-C", "--project", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=Path("."), help="The project directory [default: .]; FILES are relative to it.")
def analyze_command(files, as_json, loop_threshold, window_s, project) -> None:
    """Crash loops, the most repeated errors, tasks claimed more often than their attempts explain, and
    time per task — from FILES (*.jsonl: events; anything else: log lines), by default
    .clude/events.jsonl and .clude/logs/*."""
    from clude.team.logs.analyze import analyze, default_inputs, read_inputs

    paths = [path if path.is_absolute() else project / path for path in files]
    for path in paths:
        if not path.exists():
            click.echo(f"clude: no such file: {path}", err=True)
    if not files and not default_inputs(project):
        _nothing(f"no .clude/events.jsonl or .clude/logs/ in {project.resolve()} "
                 "(clude team run writes them)", as_json)
        return
    events, lines = read_inputs(paths, root=project)
    report = analyze(events, lines, loop_threshold=loop_threshold, window_s=window_s)
    if report.empty():
        where = ", ".join(str(p) for p in paths) if paths else f"{project.resolve() / '.clude'}"
        _nothing(f"no events or log lines in {where}", as_json, report.skipped)
        return
    if as_json:
        click.echo(json.dumps(report.to_json(), ensure_ascii=False))
        return
    for line in report_lines(report):
        click.echo(line)


def _nothing(message: str, as_json: bool, skipped: int = 0) -> None:
    if as_json:
        from clude.team.logs.analyze import Report

        click.echo(json.dumps({**Report([], [], [], [], 0, 0, skipped).to_json(), "message": message}))
    else:
        click.echo(f"nothing to analyze: {message}")


def _when(at: float | None, *, day: bool = True) -> str:
    if at is None:
        return "?"
    return time.strftime("%Y-%m-%d %H:%M:%S" if day else "%H:%M:%S", time.localtime(at))


def _span(first: float | None, last: float | None) -> str:
    if first is None and last is None:
        return "time unknown"
    if first == last:
        return _when(first)
    same_day = first is not None and last is not None and time.localtime(first)[:3] == time.localtime(last)[:3]
    return f"{_when(first)} – {_when(last, day=not same_day)}"


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _cut(text: str, size: int = LINE_CHARS) -> str:
    return text if len(text) <= size else text[:size - 1] + "…"


def _more(shown: int, total: int, what: str) -> list[str]:
    return [f"  … and {total - shown} more {what} (--json shows all)"] if total > shown else []


def report_lines(report) -> list[str]:
    """The report in at most about 40 lines: one heading per section."""
    out = [f"analyzed {report.events} events and {report.lines} log lines"
           + (f" ({report.skipped} unreadable event lines skipped)" if report.skipped else "")]

    out += ["", "crash loops (failures before any work, in a row)"]
    for loop in report.crash_loops[:SHOW_LOOPS]:
        what = (f"{loop.count} in a row" if loop.source == "events"
                else f"the same error {loop.count} times in a row in {Path(loop.source).name}")
        out.append(_cut(f"  {loop.agent}: {what}, {_span(loop.first, loop.last)} — {loop.reason}", LINE_CHARS + 40))
    out += _more(min(SHOW_LOOPS, len(report.crash_loops)), len(report.crash_loops), "crash loops")
    if not report.crash_loops:
        out.append("  none")

    out += ["", "most repeated errors and warnings"]
    for i, error in enumerate(report.repeated_errors[:SHOW_ERRORS]):
        level = "ERROR" if error.level == "ERROR" else "WARN "
        out.append(_cut(f"  {error.count:>5}× {level} {_span(error.first, error.last)}  {error.signature}"))
        if i < EXAMPLES and error.example != error.signature:
            out.append(_cut(f"         e.g. {error.example}"))
    if not report.repeated_errors:
        out.append("  none")

    out += ["", "tasks claimed more often than their attempts explain (locks lost, workers killed)"]
    for over in report.over_claimed[:SHOW_OVER]:
        held = ", one claim still held" if over.in_progress else ""
        out.append(_cut(f"  {over.task}: {over.claims} claims, {over.accounted} accounted for{held} — "
                        f"by {', '.join(over.agents)}"))
    out += _more(min(SHOW_OVER, len(report.over_claimed)), len(report.over_claimed), "tasks")
    if not report.over_claimed:
        out.append("  none")

    out += ["", "time per task (first claim to done, or to the last failed attempt)"]
    summary = report.time_summary()
    if summary is None:
        out.append("  no task finished")
    else:
        out.append(f"  {summary['tasks']} tasks: min {_duration(summary['min'])}, median "
                   f"{_duration(summary['median'])}, max {_duration(summary['max'])}; slowest:")
        for task in report.task_times[:5]:
            out.append(f"  {_duration(task.seconds):>8}  {task.task} ({task.outcome}, "
                       f"{task.attempts} attempt{'s' if task.attempts != 1 else ''})")
    return out


# -- clude team status --watch --------------------------------------------------------------------------
def sandbox_warning(workers: list[dict]) -> str | None:
    """The warning status shows while workers run with --sandbox off."""
    off = [w["agent"] for w in workers if w.get("sandbox") == "off"]
    if not off:
        return None
    return (f"WARNING: {', '.join(off)} run without a sandbox (--sandbox off): their agents can read your "
            "credentials and reach the upstream")


def status_view(board, workers: list[dict]):
    """The renderable of `clude team status`: the tasks table and its counts, and the workers table."""
    from rich.console import Group
    from rich.text import Text

    from clude.cli.team_view import board_table, workers_table
    from clude.team.board.board import counts

    parts: list = []
    if not board.tasks:
        parts.append(Text('no tasks yet: clude team task add "TITLE"'))
    else:
        parts.append(board_table(board))
        parts.append(Text(", ".join(f"{n} {state}" for state, n in counts(board).items() if n)))
    for problem in board.problems:
        parts.append(Text.from_markup("[yellow]problem:[/] ") + Text(problem))
    if workers:
        parts.append(workers_table(workers))
        if sandbox_warning(workers):
            parts.append(Text(sandbox_warning(workers), style="yellow"))
    parts.append(Text(f"updated {time.strftime('%H:%M:%S')} — Ctrl-C to stop", style="dim"))
    return Group(*parts)


def watch(render: Callable[[], object], interval_s: float = 1.0, *, stop: Callable[[], bool] | None = None,
          console=None, sleep: Callable[[float], None] = time.sleep) -> None:
    """Show render() and refresh it every interval_s seconds until stop() is true or Ctrl-C. A refresh
    that fails keeps the last view and says why under it."""
    from rich.console import Console, Group
    from rich.live import Live
    from rich.text import Text

    console = console or Console(highlight=False)
    try:
        last = render()
    except KeyboardInterrupt:
        return
    try:
        with Live(last, console=console, auto_refresh=False, redirect_stdout=False,
                  redirect_stderr=False) as live:
            while not (stop is not None and stop()):
                sleep(interval_s)
                try:
                    last = render()
                    live.update(last, refresh=True)
                except KeyboardInterrupt:
                    raise
                except Exception as error:  # a fetch that failed once: show it, try again next time
                    live.update(Group(last, Text(f"could not refresh: {error}", style="red")), refresh=True)
    except KeyboardInterrupt:
        pass
