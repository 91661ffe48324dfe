"""What the dashboard shows, from the board, the workers' states and the events (pure: no I/O). The pages
(templates/) render these dicts; `/api/state` returns them as JSON."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from clude.team.board.board import (Board, BoardTask, attempts_used, counts, merge_queue, shown_state,
                                    task_sort_key)
from clude.team.protocol.admin import DEPENDENCY

# The graph's boxes: size and spacing in SVG units.
BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 150, 34, 40, 14, 8
EVENTS_SHOWN = 200  # the newest events the page starts with (more arrive live)


def age(seconds: float | None) -> str:
    """"42s", "3m05s", "2h07m"; "" for None."""
    if seconds is None:
        return ""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def task_row(item: BoardTask, now: float) -> dict:
    """One task as the board's table shows it."""
    held = item.lock if item.lock and item.state == "claimed" else None
    since = held.queued.at if held and held.queued else (held.claimed_at if held else None)
    return {"id": item.task.id, "title": item.task.title, "state": shown_state(item), "reason": item.reason,
            "attempts": item.attempts, "attempts_used": attempts_used(item), "max_attempts": item.task.max_attempts,
            "role": item.task.role or "",
            "priority": item.task.priority, "deps": list(item.task.deps), "tests": item.task.tests,
            "files": list(item.task.files), "made_by": item.task.made_by,
            "holder": held.agent if held else None,
            "age": age(now - since.timestamp()) if since is not None else "",
            "actions": actions(shown_state(item), item.reason)}


def actions(state: str, reason: str | None = None) -> list[str]:
    """What a person may do to a task in this shown state (steer.py refuses the others; a task blocked by
    its dependencies opens by itself)."""
    if state == "blocked" and (reason or "").startswith(DEPENDENCY):
        return []
    return {"failed": ["retry", "block"], "blocked": ["unblock"], "open": ["block"]}.get(state, [])


def worker_row(w: dict, paused: set[str]) -> dict:
    state = w.get("state") or "?"
    if w["agent"] in paused and state not in ("exited", "finished", "blocked"):
        state = "paused" if state in ("idle", "paused") else f"{state} (pausing)"
    return {"agent": w["agent"], "state": state, "task": w.get("task"), "attempt": w.get("attempt"),
            "uptime": age(w.get("uptime_s")), "restarts": w.get("restarts") or 0, "error": w.get("error") or "",
            "paused": w["agent"] in paused, "since": w.get("since") or ""}


@dataclass(frozen=True)
class Node:
    id: str
    state: str
    x: int
    y: int


def graph(board: Board) -> dict:
    """The tasks as a layered graph (a task to the right of what it depends on): boxes with positions,
    edges as pairs of ids, and the picture's size. A dependency that is not on the board, or a cycle,
    leaves the task in the first layer (the board names the problem)."""
    ids = sorted(board.tasks, key=task_sort_key)
    layer = layers({tid: board.tasks[tid].task.deps for tid in ids})
    rows: dict[int, int] = {}
    nodes = []
    for tid in ids:
        col = layer[tid]
        row = rows.get(col, 0)
        rows[col] = row + 1
        nodes.append(Node(tid, shown_state(board.tasks[tid]), MARGIN + col * (BOX_W + GAP_X),
                          MARGIN + row * (BOX_H + GAP_Y)))
    at = {n.id: n for n in nodes}
    edges = [{"from": d, "to": tid, "x1": at[d].x + BOX_W, "y1": at[d].y + BOX_H // 2, "x2": at[tid].x,
              "y2": at[tid].y + BOX_H // 2}
             for tid in ids for d in board.tasks[tid].task.deps if d in at]
    width = MARGIN * 2 + (max(layer.values(), default=0) + 1) * (BOX_W + GAP_X) - GAP_X
    height = MARGIN * 2 + max(rows.values(), default=1) * (BOX_H + GAP_Y) - GAP_Y
    return {"nodes": [n.__dict__ for n in nodes], "edges": edges, "width": width, "height": height,
            "box_w": BOX_W, "box_h": BOX_H, "has_edges": bool(edges)}


def layers(deps: dict[str, list[str]]) -> dict[str, int]:
    """Each task's column: one more than the furthest of its dependencies (0 without any), found without
    recursion, so a chain of any length lays out; a task in a cycle, or after one, goes to column 0."""
    needs = {t: {d for d in ds if d in deps and d != t} for t, ds in deps.items()}
    users: dict[str, list[str]] = {t: [] for t in deps}
    for t, ds in needs.items():
        for d in ds:
            users[d].append(t)
    waiting = {t: len(ds) for t, ds in needs.items()}
    layer = {t: 0 for t, n in waiting.items() if n == 0}
    ready = deque(layer)
    while ready:
        t = ready.popleft()
        for user in users[t]:
            layer[user] = max(layer.get(user, 0), layer[t] + 1)
            waiting[user] -= 1
            if waiting[user] == 0:
                ready.append(user)
    return {t: layer.get(t, 0) if waiting[t] == 0 else 0 for t in deps}


def event_line(event: dict) -> dict:
    """One event as the live stream shows it."""
    at = float(event.get("at") or 0)
    skip = {"at", "agent", "kind", "level", "by", "traceback", "log", "pid", "task"}
    details = ", ".join(f"{k}={_short(k, v)}" for k, v in event.items()
                        if k not in skip and v not in (None, "", [], {}))
    return {"at": time.strftime("%H:%M:%S", time.localtime(at)), "agent": str(event.get("agent", "?")),
            "kind": str(event.get("kind", "?")), "level": str(event.get("level", "INFO")),
            "task": event.get("task"), "text": details}


def _short(key: str, value) -> str:
    if key == "commit" and isinstance(value, str):
        return value[:12]
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def snapshot(board: Board, workers: list[dict], paused: set[str], *, now: float | None = None) -> dict:
    """The whole live part of the dashboard: counts, tasks, the dependency graph, the merge queue, the
    workers, the board's problems."""
    now = time.time() if now is None else now
    items = sorted(board.tasks.values(), key=lambda i: task_sort_key(i.task.id))
    return {"counts": {k: v for k, v in counts(board).items()}, "tasks": [task_row(i, now) for i in items],
            "graph": graph(board), "queue": [i.task.id for i in merge_queue(board)],
            "workers": [worker_row(w, paused) for w in workers], "problems": list(board.problems),
            "settled": bool(board.tasks) and all(i.state in ("done", "failed", "blocked") for i in items)}
