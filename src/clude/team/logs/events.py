"""What workers report: structured events appended to .clude/events.jsonl, and a log per agent."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from clude.secrets import Redactor


class EventLog:
    """Appends one JSON object per line (one write each, O_APPEND: lines of several processes never mix)
    and mirrors each event to the agent's log with its level."""

    def __init__(self, state_dir: Path, agent: str, env: dict[str, str] | None = None):
        self.path = state_dir / "events.jsonl"
        self.agent = agent
        self.redactor = Redactor(dict(env if env is not None else os.environ))
        (state_dir / "logs").mkdir(parents=True, exist_ok=True)
        # one logger per log file (in one process, agents of the same name may log to different state dirs)
        self.logger = logging.getLogger(f"clude.team.{agent}@{(state_dir / 'logs').resolve()}")
        if not self.logger.handlers:
            handler = logging.FileHandler(state_dir / "logs" / f"{agent}.log", encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            self.logger.addHandler(handler)
            self.logger.setLevel(logging.INFO)
            self.logger.propagate = False

    def emit(self, kind: str, level: str = "INFO", **details: Any) -> None:
        event = self.redactor.data({"at": time.time(), "agent": self.agent, "kind": kind,
                                    "level": level, **details})
        line = json.dumps(event, ensure_ascii=False, default=str) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)
        text = " ".join(f"{k}={v}" for k, v in event.items() if k not in ("at", "agent", "kind", "level"))
        self.logger.log(getattr(logging, level, logging.INFO), f"{kind} {text}")


def read_events(state_dir: Path) -> list[dict]:
    """Every readable event (a torn or foreign line is skipped)."""
    path = state_dir / "events.jsonl"
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return parse_events(lines)


def parse_events(lines) -> list[dict]:
    """The events among lines of events.jsonl (str or bytes); a torn or foreign line is skipped."""
    events = []
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            events.append(value)
    return events
