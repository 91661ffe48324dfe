"""Reading a team's logs for analysis: the inputs (events and plain lines), plain-line parsing, error
signatures and classified reasons. Used by analyze.py; every pass is linear in the input."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

EVENT_FILES = (".jsonl",)
TEXT_SUFFIXES = (".log", ".out", ".txt", ".jsonl")  # what a folder given as input is searched for
SIGNATURE_CHARS = 200
# what workers and the monitor emit (worker.py, monitor.py): log lines of these kinds mirror events
KINDS = frozenset({"worker_started", "claimed", "agent_started", "agent_finished", "done", "failed_attempt",
                   "infra", "backoff", "lost", "conflict", "lease_error", "worker_blocked", "worker_done",
                   "worker_stopped", "worker_restarted", "worker_silent", "queued", "landed", "lander_error",
                   "lander_blocked", "task_blocked", "release_failed"})

class EventList(list):
    """The events read_inputs found, with the number of unreadable lines it skipped."""

    skipped: int = 0


# -- inputs ---------------------------------------------------------------------------------------------
def default_inputs(root: Path) -> list[Path]:
    state = root / ".clude"
    logs = state / "logs"
    found = [state / "events.jsonl"] if (state / "events.jsonl").is_file() else []
    if logs.is_dir():
        found += sorted(p for p in logs.iterdir() if p.is_file())
    return found


def source_header(path: Path | str) -> str:
    return f"==> {path} <=="


def read_inputs(paths: list[Path], *, root: Path = Path(".")) -> tuple[list[dict], list[str]]:
    """(events of the *.jsonl files, lines of the other files, each file's lines after a `==> PATH <==`).

    No paths: .clude/events.jsonl and .clude/logs/* under root. A folder: its *.jsonl, *.log, *.out and
    *.txt files. A missing file is left out. Unreadable event lines are skipped and counted in the
    events list's `skipped`."""
    files: list[Path] = []
    for path in paths or default_inputs(root):
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES)
        elif path.is_file():
            files.append(path)
    events = EventList()
    lines: list[str] = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if path.suffix in EVENT_FILES:
            for line in text.splitlines():
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except ValueError:
                    value = None
                if isinstance(value, dict) and isinstance(value.get("kind"), str):
                    events.append(value)
                else:
                    events.skipped += 1
        else:
            lines.append(source_header(path))
            lines.extend(text.splitlines())
    return events, lines


# -- normalization --------------------------------------------------------------------------------------
_NORMAL = re.compile(
    r"(?P<env>\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b)"                                   # OPENAI_API_KEY stays
    r"|(?P<uuid>\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b)"
    r"|(?P<time>\b\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?(?:Z|[+-]\d\d:?\d\d)?)?"
    r"|\b\d\d:\d\d:\d\d(?:[.,]\d+)?)"
    r"|(?P<tmp>(?:/private)?/(?:tmp|var/folders|var/tmp)/[^\s'\"`:,;)\]}>]*)"
    r"|(?P<quoted>(?<!\w)(?:'[^'\n]*'|\"[^\"\n]*\")(?!\w))"
    r"|(?P<hex>\b0x[0-9a-fA-F]+\b|\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,}\b)"
    r"|(?P<number>(?<![A-Za-z])\d+(?:\.\d+)*)")
_NAME = re.compile(r"[A-Za-z_][\w.-]{0,63}")  # a quoted name (variable, module, command) stays
_SPACES = re.compile(r"\s+")


def _normal_piece(match: re.Match) -> str:
    kind = match.lastgroup
    text = match.group()
    if kind == "env":
        return text
    if kind == "quoted":
        inner = text[1:-1]
        return text if _NAME.fullmatch(inner) and not inner.startswith("tmp") else f"{text[0]}…{text[0]}"
    return {"uuid": "<uuid>", "time": "<time>", "tmp": "<tmp>", "hex": "<hex>", "number": "<n>"}[kind]


def normalize_error(text: str) -> str:
    """One signature for the same error: numbers, hex ids, uuids, timestamps, paths under /tmp and
    quoted values are replaced; names of environment variables and commands (OPENAI_API_KEY, codex) and
    quoted names stay."""
    text = _SPACES.sub(" ", text).strip()
    return _NORMAL.sub(_normal_piece, text)[:SIGNATURE_CHARS]


# -- plain lines ----------------------------------------------------------------------------------------
_HEADER = re.compile(r"^==> (.+) <==$")
_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:[.,](\d{1,6}))?(Z|[+-]\d\d:?\d\d)?\s+"
                       r"(?:\[?(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL)\]?:?\s+)?(.*)$")
_MIRROR = re.compile(r"^([a-z][a-z0-9_]*)(?: (?=[a-z_]+=)(.*))?$")
_KEY = re.compile(r"(?:^| )([a-z_][a-z0-9_]*)=")
_BARE_ERROR = re.compile(r"^\s*(?:(?:ERROR|Error|error|FATAL|Fatal|fatal|CRITICAL)\b[:\s]"
                         r"|(?:[\w.]+\.)?\w*(?:Error|Exception)(?::\s|$))")
_BARE_WARNING = re.compile(r"^\s*(?:WARNING|Warning|warning|WARN)\b[:\s]")
_LEVELS = {"WARN": "WARNING", "CRITICAL": "ERROR", "FATAL": "ERROR"}


@dataclass(slots=True)
class Line:
    source: str
    at: float | None
    level: str | None
    message: str
    raw: str


def parse_lines(lines: list[str]) -> list[Line]:
    parsed: list[Line] = []
    source = ""
    seconds: dict[tuple[str, str, str], float] = {}
    for raw in lines:
        if raw.startswith("==> "):
            header = _HEADER.match(raw)
            if header:
                source = header.group(1)
                continue
        match = _LOG_LINE.match(raw)
        if match:
            day, clock, fraction, zone, level, message = match.groups()
            key = (day, clock, zone or "")
            base = seconds.get(key)
            if base is None:
                try:
                    base = datetime.fromisoformat(f"{day}T{clock}{(zone or '').replace('Z', '+00:00')}").timestamp()
                except ValueError:
                    base = 0.0
                seconds[key] = base
            at = base + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)
            level = _LEVELS.get(level, level) if level else _bare_level(message)
            parsed.append(Line(source, at, level, message, raw))
        else:
            parsed.append(Line(source, None, _bare_level(raw), raw.strip(), raw))
    return parsed


def _bare_level(text: str) -> str | None:
    if _BARE_ERROR.match(text):
        return "ERROR"
    if _BARE_WARNING.match(text):
        return "WARNING"
    return None


@lru_cache(maxsize=1024)
def agent_of(source: str) -> str:
    return Path(source).stem if source else ""


def mirrored_event(line: Line) -> dict | None:
    """The event a `TIME LEVEL kind k=v ...` line of EventLog mirrors, or None."""
    if line.at is None or line.level is None:
        return None
    match = _MIRROR.match(line.message)
    if not match or (match.group(2) is None and match.group(1) not in KINDS):
        return None
    event: dict = {"at": line.at, "agent": agent_of(line.source), "kind": match.group(1), "level": line.level}
    rest = match.group(2) or ""
    keys = list(_KEY.finditer(rest))
    for i, key in enumerate(keys):
        end = keys[i + 1].start() if i + 1 < len(keys) else len(rest)
        event[key.group(1)] = rest[key.end():end]
    return event


# -- classification -------------------------------------------------------------------------------------
_ENV_NAME = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")
_SECRETISH = re.compile(r"_(?:API_KEY|KEY|TOKEN|SECRET)$")
_PROGRAM = re.compile(r"^(\S+) (?:was not found|does not exist)|(?:^|\s)([^\s:]+): (?:command )?not found")
_MONITOR_PREFIX = re.compile(r"^crash loop: \d+ starts failed before doing any work: ")
_LABELS = {"auth": "authentication failed", "rate_limited": "rate limited", "network": "network unreachable"}


def classify_reason(cause: str | None, reason: str) -> str:
    """One short reason: missing environment variable NAME, command not found: NAME, authentication
    failed, rate limited, network unreachable, interpreter missing: NAME, else the error line itself."""
    from clude.team.backends import classify

    reason = _MONITOR_PREFIX.sub("", " ".join(str(reason or "").split()))
    found = classify(reason, 1) if reason else None
    kind = cause or (found.kind if found else None)
    name = found.name if found is not None and found.kind == kind else None
    if kind == "missing_env":
        if not name:
            names = _ENV_NAME.findall(reason)
            name = next((n for n in names if _SECRETISH.search(n)), names[0] if names else None)
        return f"missing environment variable {name}" if name else "missing environment variable"
    if kind == "command_not_found":
        if not name:
            match = _PROGRAM.search(reason)
            name = (match.group(1) or match.group(2)) if match else None
        return f"command not found: {name}" if name else "command not found"
    if kind == "interpreter_missing":
        return f"interpreter missing: {name}" if name else "interpreter missing"
    if kind in _LABELS:
        return _LABELS[kind]
    return reason[:160] or "no reason given"
