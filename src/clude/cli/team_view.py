"""How the team's board and workers look: rich tables, and the JSON of `--json`."""

from __future__ import annotations

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from clude.team.board.board import QUEUED, UNVERIFIED, Board, attempts_used, counts, merge_queue, shown_state

_STYLE = {"done": "green", UNVERIFIED: "yellow", "failed": "red", "blocked": "red", "claimed": "cyan",
          QUEUED: "blue", "open": ""}


def board_json(board: Board) -> dict:
    """The board as `--json` prints it; "state" is the shown state (board.shown_state), "verified" false
    for a task done without verification; "attempts" the failed attempts, "attempts_used" those and the
    one that landed the task or is under way (board.attempts_used), of "max_attempts"."""
    return {"counts": counts(board), "problems": board.problems,
            "merge_queue": [item.task.id for item in merge_queue(board)], "tasks": [{
        "id": item.task.id, "title": item.task.title, "state": shown_state(item), "reason": item.reason,
        "verified": item.task.verified,
        "attempts": item.attempts, "attempts_used": attempts_used(item), "max_attempts": item.task.max_attempts,
        "priority": item.task.priority,
        "role": item.task.role, "deps": item.task.deps, "tests": item.task.tests, "files": item.task.files,
        "made_by": item.task.made_by,
        "holder": item.lock.agent if item.lock and item.state == "claimed" else None,
    } for item in board.tasks.values()]}


def board_table(board: Board) -> Table:
    table = Table(title="tasks", title_justify="left", show_edge=False)
    for column in ("task", "state", "attempts", "holder", "title"):
        table.add_column(column)
    for item in board.tasks.values():
        shown = shown_state(item)
        style = _STYLE.get(shown, "")
        state = Text(shown, style=style)
        holder = item.lock.agent if item.lock and item.state == "claimed" else ""
        title = Text(item.task.title)  # never read as markup: a title or reason may hold [brackets]
        if item.reason:
            title.append(f" ({item.reason})", style="dim")
        table.add_row(item.task.id, state, attempts_cell(item), holder, title)
    return table


def attempts_cell(item) -> str:
    """used/max where an attempt was used ("1/3": done at the first attempt, or the first under way; "3/3":
    all used), blank where none was."""
    used = attempts_used(item)
    return f"{used}/{item.task.max_attempts}" if used else ""


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


def workers_table(workers: list[dict]) -> Group:
    """The workers table, and under it each worker's last error, whole (rich wraps it; `--json` carries it
    as it is): in a column of the table it would be cut or folded to a few characters a line."""
    table = Table(title="workers", title_justify="left", show_edge=False)
    for column in ("worker", "state", "task", "attempt", "since", "uptime", "restarts"):
        table.add_column(column)
    errors = Table.grid(padding=(0, 1))
    errors.add_column(no_wrap=True)
    errors.add_column(overflow="fold")
    for w in workers:
        style = {"blocked": "red", "working": "cyan", "exited": "dim",
                 "finished": "green"}.get(w.get("state") or "", "")
        state = Text(str(w.get("state")), style=style)
        uptime = f"{w['uptime_s'] // 60}m{w['uptime_s'] % 60:02d}s" if w.get("uptime_s") is not None else ""
        table.add_row(w["agent"], state, w.get("task") or "", str(w.get("attempt") or ""), w.get("since") or "",
                      uptime, str(w.get("restarts") or 0))
        if w.get("error"):
            errors.add_row(Text(f"{w['agent']}:", style=style or "red"), Text(str(w["error"])))
    if not errors.row_count:
        return Group(table)
    return Group(table, Text("last errors", style="bold"), errors)
