"""How a run looks on the console: transitions, the plan table, steps, the verdict, the final summary."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from clude.agent.plan import Plan, PlanError, validate_plan
from clude.agent.result import RunResult

_MARK = {"done": "[green]✓[/]", "failed": "[red]✗[/]", "replan": "[yellow]↺[/]",
         "started": "[cyan]▶[/]", "blocked": "[red]⊘[/]", "pending": "·", "in_progress": "[cyan]▶[/]"}
_STATUS_STYLE = {"done": "bold green", "failed": "bold red", "blocked": "bold red", "error": "bold red",
                 "interrupted": "bold yellow"}


def plan_table(plan: dict, statuses: dict[str, str] | None = None) -> Table:
    table = Table(title=f"Plan: {plan['title']}", title_justify="left", show_lines=False)
    table.add_column("step", style="bold")
    if statuses is not None:
        table.add_column("status")
    table.add_column("what")
    table.add_column("after", style="dim")
    for step in plan["steps"]:
        row = [step["id"]]
        if statuses is not None:
            status = statuses.get(step["id"], "pending")
            row.append(f"{_MARK.get(status, '')} {status}")
        row += [step["title"], ", ".join(step.get("dependencies") or [])]
        table.add_row(*row)
    return table


class ConsoleView:
    """A run's listener that prints to a rich console (stderr when stdout is kept for JSON)."""

    def __init__(self, console: Console):
        self.console = console

    def __call__(self, kind: str, details: dict) -> None:
        out = self.console
        if kind == "transition":
            out.print(f"[dim]{details['from']} → [/][bold]{details['to']}[/][dim]: {details['reason']}[/]",
                      markup=True, highlight=False)
        elif kind == "plan":
            out.print(plan_table(details["plan"]))
        elif kind == "step":
            mark = _MARK.get(details["status"], "·")
            attempt = f" (attempt {details['attempt']})" if details.get("attempt", 1) > 1 else ""
            out.print(f"{mark} step [bold]{details['id']}[/]{attempt}: {details.get('text', '')}",
                      highlight=False)
        elif kind == "verdict":
            out.print(details["report"], highlight=False, markup=False)
        elif kind == "note":
            out.print(f"[yellow]note:[/] {details['text']}", highlight=False)


def summary(console: Console, result: RunResult) -> None:
    style = _STATUS_STYLE.get(result.status, "bold")
    console.print(f"[{style}]{result.status.upper()}[/] · {result.reason}", highlight=False)
    if result.steps:
        statuses = {s.id: s.status for s in result.steps}
        done = sum(1 for s in result.steps if s.status == "done")
        console.print(f"steps: {done} of {len(result.steps)} done  ·  "
                      + "  ".join(f"{_MARK.get(st, '')} {sid}" for sid, st in statuses.items()),
                      highlight=False)
    usage = result.usage
    cost = f" · ${result.cost_usd:.4f}" if result.cost_usd is not None else ""
    console.print(f"model: {usage.get('requests', 0)} requests, {usage.get('input_tokens', 0):,} tokens in, "
                  f"{usage.get('output_tokens', 0):,} out{cost} · {result.duration_s:.1f} s", highlight=False)
    console.print(f"session: {result.session_id} ({result.session_path})", highlight=False)
    if result.status in ("interrupted", "error"):
        console.print(f"continue with: clude resume {result.session_id}", highlight=False)


def confirm_plan(console: Console, *, question: str = "Run this plan?", dump=None, table=None, validate=None):
    """The --confirm question: approve, edit (in $EDITOR, validated again) or reject the plan. `dump`
    (plan -> JSON-able), `table` (that -> a renderable) and `validate` (edited JSON -> plan, or
    PlanError) for plans of another shape (a team's tasks)."""
    dump = dump or (lambda plan: plan.model_dump())
    table = table or plan_table
    validate = validate or validate_plan

    def ask(plan: Plan) -> Plan | None:
        draft = json.dumps(dump(plan), indent=2)  # an invalid edit is edited again, not lost
        while True:
            console.print(table(dump(plan)))
            choice = click.prompt(f"{question} [a]pprove, [e]dit, [r]eject",
                                  type=click.Choice(["a", "e", "r"]), default="a", show_choices=False)
            if choice == "a":
                return plan
            if choice == "r":
                return None
            text = click.edit(draft, extension=".json")
            if text is None:  # the editor closed without saving
                continue
            draft = text
            try:
                plan = validate(json.loads(text))
            except (ValueError, PlanError) as error:
                errors = error.errors if isinstance(error, PlanError) else [f"not valid JSON: {error}"]
                console.print("[red]the edited plan is invalid:[/]\n" + "\n".join(f"  - {e}" for e in errors),
                              highlight=False)
    return ask
