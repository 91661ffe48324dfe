"""How the team's board and workers look: rich tables, and the JSON of `--json`."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from clude.team.board.board import QUEUED, UNVERIFIED, Board, counts, merge_queue, shown_state

_STYLE = {"done": "green", UNVERIFIED: "yellow", "failed": "red", "blocked": "red", "claimed": "cyan",
          QUEUED: "blue", "open": ""}


def board_json(board: Board) -> dict:
    """The board as `--json` prints it; "state" is the shown state (board.shown_state), "verified" false
    for a task done without verification."""
    return {"counts": counts(board), "problems": board.problems,
            "merge_queue": [item.task.id for item in merge_queue(board)], "tasks": [{
        "id": item.task.id, "title": item.task.title, "state": shown_state(item), "reason": item.reason,
        "verified": item.task.verified,
        "attempts": item.attempts, "max_attempts": item.task.max_attempts, "priority": item.task.priority,
        "role": item.task.role, "deps": item.task.deps, "tests": item.task.tests,
        "holder": item.lock.agent if item.lock and item.state == "claimed" else None,
    } for item in board.tasks.values()]}


def board_table(board: Board) -> Table:
    table = Table(title="tasks", title_justify="left", show_edge=False)
    for column in ("task", "state", "attempts", "holder", "title"):
        table.add_column(column)
    for item in board.tasks.values():
        shown = shown_state(item)
        style = _STYLE.get(shown, "")
        state = f"[{style}]{shown}[/]" if style else shown
        holder = item.lock.agent if item.lock and item.state == "claimed" else ""
        title = item.task.title + (f" [dim]({item.reason})[/]" if item.reason else "")
        table.add_row(item.task.id, state, f"{item.attempts}/{item.task.max_attempts}", holder, title)
    return table


def print_board(board: Board, console: Console | None = None) -> None:
    console = console or Console(highlight=False, soft_wrap=True)
    if not board.tasks:
        console.print("no tasks yet: clude team task add \"TITLE\"")
    else:
        console.print(board_table(board))
        summary = ", ".join(f"{n} {state}" for state, n in counts(board).items() if n)
        console.print(summary)
        waiting = merge_queue(board)
        if waiting:
            console.print(f"merge queue (lands in this order): {', '.join(i.task.id for i in waiting)}")
    for problem in board.problems:
        console.print(f"[yellow]problem:[/] {problem}", markup=True)


def workers_table(workers: list[dict]) -> Table:
    table = Table(title="workers", title_justify="left", show_edge=False)
    for column in ("worker", "state", "task", "attempt", "since", "uptime", "restarts", "last error"):
        table.add_column(column)
    for w in workers:
        style = {"blocked": "red", "working": "cyan", "exited": "dim",
                 "finished": "green"}.get(w.get("state") or "", "")
        state = f"[{style}]{w.get('state')}[/]" if style else str(w.get("state"))
        uptime = f"{w['uptime_s'] // 60}m{w['uptime_s'] % 60:02d}s" if w.get("uptime_s") is not None else ""
        table.add_row(w["agent"], state, w.get("task") or "", str(w.get("attempt") or ""), w.get("since") or "",
                      uptime, str(w.get("restarts") or 0), (w.get("error") or "")[:80])
    return table
