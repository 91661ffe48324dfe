"""Where the dashboard reads from: the board through a clone of its own (fetched only when the upstream's
main moved), the workers' events and heartbeats in the project's state dir, and per task its file,
failure records, the agent's log tail and the diff that landed."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from clude.gitcli import GitError
from clude.secrets import Redactor
from clude.team.board.board import Board
from clude.team.board.layout import FAILURES_DIR, TASKS_DIR, is_team_path, task_path
from clude.team.logs.events import parse_events, read_events
from clude.team.logs.status import worker_states
from clude.team.protocol.admin import board_of, clone_turn, view
from clude.team.protocol.git import Repo, is_local_url, upstream_head
from clude.team.supervision.control import paused
from clude.team.work.heartbeat import read_heartbeats
from clude.web.model import EVENTS_SHOWN, event_line, snapshot, task_row

SERVE_CLONE = "serve"  # .clude/team/serve: the dashboard's own clone of the upstream (admin.py's clones)
LOG_TAIL_BYTES = 16_000  # of an agent's log, on its task's page
DIFF_BYTES = 200_000  # of a landed diff, on its task's page
DIFF_FILE_BYTES = 1_000_000  # a file larger than this (before or after) is named in the diff, not shown
EVENTS_TAIL_BYTES = 256_000  # of events.jsonl read for a page's first events
EVENTS_STEP_BYTES = 1_000_000  # of events.jsonl read by one look of an event stream
HEAD_LOCAL_S, HEAD_REMOTE_S = 0.5, 5.0  # how often the upstream's main is looked at (all pages at once)


class Source:
    def __init__(self, root: Path, settings, url: str, state_dir: Path):
        self.root, self.settings, self.url, self.state_dir = root, settings, url, state_dir
        self.redactor = Redactor(dict(os.environ))  # a log's secrets, were any left in it
        # SERVE_GUARD: the serve clone, used by the page handlers' threads one at a time
        self.guard = threading.Lock()
        with clone_turn(root, SERVE_CLONE):
            self.repo: Repo = view(root, url, SERVE_CLONE)
        self._board: Board | None = None
        # HEAD_GUARD: the last look at the upstream's main, shared by every open page's event stream
        self.head_guard = threading.Lock()
        self._head: str | None = None
        self._head_at: float | None = None
        self.head_every_s = HEAD_LOCAL_S if is_local_url(url) else HEAD_REMOTE_S

    # the board ---------------------------------------------------------------------------------
    def head(self) -> str | None:
        """The upstream's main, as last looked at: one look for every open page at once, at most every
        HEAD_LOCAL_S for a local upstream (a file read) and HEAD_REMOTE_S for any other (an ls-remote)."""
        with self.head_guard:
            now = time.monotonic()
            if self._head_at is None or now - self._head_at >= self.head_every_s:
                self._head, self._head_at = upstream_head(self.url), now
            return self._head

    def board(self) -> Board:
        with self.guard, clone_turn(self.root, SERVE_CLONE):
            try:
                moved = self.repo.refresh()
            except GitError:
                if self._board is None:
                    raise
                moved = False  # a blip: the last board read is shown
            if moved or self._board is None:
                self._board = board_of(self.repo, self.settings.team.lease_s)
            return self._board

    def workers(self) -> list[dict]:
        return worker_states(read_events(self.state_dir), read_heartbeats(self.state_dir))

    def state(self) -> dict:
        return snapshot(self.board(), self.workers(), paused(self.state_dir))

    # events --------------------------------------------------------------------------------------
    def events_from(self, offset: int) -> tuple[list[dict], int]:
        """The events appended to events.jsonl since byte `offset` (whole lines, at most
        EVENTS_STEP_BYTES a call) and the new offset; offset -1: the newest few, to start a page with."""
        path = self.state_dir / "events.jsonl"
        try:
            size = path.stat().st_size
        except OSError:
            return [], 0
        if offset < 0:
            with path.open("rb") as f:
                f.seek(max(0, size - EVENTS_TAIL_BYTES))
                data = f.read(EVENTS_TAIL_BYTES)
            lines = data.splitlines()[1:] if size > EVENTS_TAIL_BYTES else data.splitlines()
            return [event_line(e) for e in parse_events(lines)][-EVENTS_SHOWN:], size
        if size < offset:  # the file was replaced: start again
            offset = 0
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read(min(size - offset, EVENTS_STEP_BYTES))
        end = data.rfind(b"\n") + 1
        if end == 0 and len(data) >= EVENTS_STEP_BYTES:  # one line longer than a step: skipped
            return [], offset + len(data)
        return [event_line(e) for e in parse_events(data[:end].splitlines())], offset + end

    # one task ----------------------------------------------------------------------------------
    def task(self, task_id: str) -> dict | None:
        """Everything its page shows, or None when there is no such task."""
        board = self.board()
        item = board.tasks.get(task_id)
        if item is None:
            return None
        with self.guard:
            checkout = self.repo.path
            records = []
            for path in sorted((checkout / FAILURES_DIR).glob(f"{task_id}_attempt_*.md"), key=_record_order):
                records.append({"name": path.name, "text": self.redactor.text(
                    path.read_text(encoding="utf-8", errors="replace")[:DIFF_BYTES])})
            text = self.redactor.text((checkout / task_path(task_id)).read_text(encoding="utf-8", errors="replace"))
        mine = [e for e in read_events(self.state_dir) if e.get("task") == task_id]
        return {"id": task_id, "row": task_row(item, time.time()), "file": f"{TASKS_DIR}/{task_id}.md", "text": text,
                "records": records, "events": [event_line(e) for e in mine][-100:],
                "log": self._log_tail(mine), "diff": self._landed_diff(mine)}

    def _log_tail(self, events: list[dict]) -> dict | None:
        """The end of the newest agent log of the task, when it is on this machine under the project's
        state dir (the workers' folders): never a file elsewhere an event might name."""
        for event in reversed(events):
            if event.get("kind") == "agent_started" and event.get("log"):
                path = Path(str(event["log"]))
                try:
                    resolved = path.resolve(strict=True)
                    resolved.relative_to(self.state_dir.resolve())
                    with resolved.open("rb") as f:
                        size = f.seek(0, 2)
                        f.seek(max(0, size - LOG_TAIL_BYTES))
                        tail = f.read().decode("utf-8", "replace")
                except (OSError, ValueError):
                    return {"path": str(path), "text": None}
                return {"path": str(path), "text": self.redactor.text(tail), "cut": size > LOG_TAIL_BYTES}
        return None

    def _landed_diff(self, events: list[dict]) -> dict | None:
        """The change that landed the task (its `done` event's commit against its parent, the team's
        bookkeeping left out), read from the serve clone or a local upstream."""
        commit = next((e.get("commit") for e in reversed(events) if e.get("kind") == "done" and e.get("commit")), None)
        if not commit:
            return None
        for place in [self.repo.path, *([Path(self.url).expanduser()] if is_local_url(self.url) else [])]:
            try:
                text = _diff(place, str(commit))
            except GitError:
                continue
            return {"commit": str(commit), "text": self.redactor.text(text[:DIFF_BYTES]), "cut": len(text) > DIFF_BYTES}
        return {"commit": str(commit), "text": None}


def _record_order(path: Path) -> tuple[int, str]:
    number = path.stem.rpartition("_")[2]
    return (int(number), "") if number.isdigit() else (1 << 30, path.name)


def _diff(place: Path, commit: str) -> str:
    """The commit's change against its first parent, the team's bookkeeping left out; a file larger than
    DIFF_FILE_BYTES is named, not shown, and no more than DIFF_BYTES (and one file) is built."""
    import pygit2

    try:
        repo = pygit2.Repository(str(place))
        new = repo.revparse_single(commit).peel(pygit2.Commit)
        old = new.parents[0].tree if new.parents else repo.get(repo.TreeBuilder().write())
        diff = repo.diff(old, new.tree)
    except (KeyError, ValueError, pygit2.GitError) as error:
        raise GitError(f"no commit {commit} in {place}: {error}") from None
    parts: list[str] = []
    size = 0
    for n, delta in enumerate(diff.deltas):
        path = delta.new_file.path
        if is_team_path(path):
            continue
        if size > DIFF_BYTES:
            parts.append(f"... ({len(diff.deltas) - n} more files)\n")
            break
        largest = max(_blob_size(repo, delta.old_file.id), _blob_size(repo, delta.new_file.id))
        if largest > DIFF_FILE_BYTES:
            parts.append(f"--- {delta.old_file.path}\n+++ {path}\n(not shown: {largest:,} bytes)\n")
        else:
            parts.append(diff[n].text or "")
        size += len(parts[-1])
    return "".join(parts)


def _blob_size(repo, oid) -> int:
    """A blob's size from its header (never read whole); 0 for none (a file added or removed)."""
    try:
        return repo.odb.read_header(oid)[1] if int(str(oid), 16) else 0
    except (KeyError, ValueError):
        return 0
