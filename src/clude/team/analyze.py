"""`clude team logs analyze`: what a team's events and logs say went wrong, as data (no printing).

Crash loops (a worker failing before doing any work K times in a row), the most repeated errors
(normalized so that one error differing only in numbers, ids, temp paths or quoted values counts once),
tasks claimed more often than their attempts explain (locks lost, workers killed), and time per task.

Inputs: events (dicts of .clude/events.jsonl) and plain text lines (.clude/logs/<agent>.log and .out, or
any log). A line `==> PATH <==` (as `tail` prints between files; read_inputs adds them) names the source
of the lines after it. A log line mirroring an event (`TIME LEVEL kind k=v ...`, as EventLog writes them)
is read as that event when the events of its agent were not given, and skipped when they were (it would
count twice). Every pass is linear in the input.
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path

EVENT_FILES = (".jsonl",)
TEXT_SUFFIXES = (".log", ".out", ".txt", ".jsonl")  # what a folder given as input is searched for
TOP_ERRORS = 10
SLOWEST = 5
HEALTHY_S = 120.0  # a worker life this long without an error counts as healthy (crashloop.Policy)
SIGNATURE_CHARS = 200
EXAMPLE_CHARS = 300

# what the agent did work on: an infrastructure failure streak ends here (as in Worker.attempt)
_WORK = frozenset({"done", "failed_attempt", "lost", "conflict"})
_LIFE_END = frozenset({"worker_blocked", "worker_stopped", "worker_done", "worker_silent"})
_ACCOUNTED = frozenset({"failed_attempt", "done", "infra", "lost"})
# what workers and the monitor emit (worker.py, monitor.py): log lines of these kinds mirror events
KINDS = frozenset({"worker_started", "claimed", "agent_started", "agent_finished", "done", "failed_attempt",
                   "infra", "backoff", "lost", "conflict", "lease_error", "worker_blocked", "worker_done",
                   "worker_stopped", "worker_restarted", "worker_silent"})
_DETAIL_KEYS = ("reason", "message", "files", "error")


# -- the report ---------------------------------------------------------------------------------------
@dataclass
class CrashLoop:
    agent: str
    count: int                    # failures before any work, in a row
    first: float | None           # epoch seconds (None: the lines had no time)
    last: float | None
    reason: str                   # classified: "missing environment variable OPENAI_API_KEY", ...
    source: str = "events"        # "events" or the log file the lines came from


@dataclass
class RepeatedError:
    signature: str
    level: str
    count: int
    first: float | None
    last: float | None
    example: str
    agents: list[str] = field(default_factory=list)


@dataclass
class OverClaimed:
    task: str
    claims: int
    accounted: int                # failed_attempt + done + infra releases + lost
    agents: list[str]             # who claimed it, in order of their first claim
    in_progress: bool = False     # the last claim is still held (not counted as unexplained)


@dataclass
class TaskTime:
    task: str
    seconds: float                # first claim to done (or to the last failed attempt)
    outcome: str                  # "done" or "failed"
    attempts: int


@dataclass
class Report:
    crash_loops: list[CrashLoop]
    repeated_errors: list[RepeatedError]
    over_claimed: list[OverClaimed]
    task_times: list[TaskTime]    # slowest first
    events: int
    lines: int
    skipped: int

    def time_summary(self) -> dict[str, float] | None:
        """min, median and max seconds per task (None without any finished task)."""
        seconds = [t.seconds for t in self.task_times]
        if not seconds:
            return None
        return {"tasks": len(seconds), "min": min(seconds), "median": statistics.median(seconds),
                "max": max(seconds)}

    def empty(self) -> bool:
        return not self.events and not self.lines

    def to_json(self) -> dict:
        return {**asdict(self), "time_summary": self.time_summary()}


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
class _Line:
    source: str
    at: float | None
    level: str | None
    message: str
    raw: str


def _parse_lines(lines: list[str]) -> list[_Line]:
    parsed: list[_Line] = []
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
            parsed.append(_Line(source, at, level, message, raw))
        else:
            parsed.append(_Line(source, None, _bare_level(raw), raw.strip(), raw))
    return parsed


def _bare_level(text: str) -> str | None:
    if _BARE_ERROR.match(text):
        return "ERROR"
    if _BARE_WARNING.match(text):
        return "WARNING"
    return None


@lru_cache(maxsize=1024)
def _agent_of(source: str) -> str:
    return Path(source).stem if source else ""


def _mirrored_event(line: _Line) -> dict | None:
    """The event a `TIME LEVEL kind k=v ...` line of EventLog mirrors, or None."""
    if line.at is None or line.level is None:
        return None
    match = _MIRROR.match(line.message)
    if not match or (match.group(2) is None and match.group(1) not in KINDS):
        return None
    event: dict = {"at": line.at, "agent": _agent_of(line.source), "kind": match.group(1), "level": line.level}
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


# -- the analysis ---------------------------------------------------------------------------------------
def _at(event: dict) -> float:
    try:
        return float(event.get("at") or 0.0)
    except (TypeError, ValueError):
        return 0.0


def _detail(event: dict) -> str:
    for key in _DETAIL_KEYS:
        value = event.get(key)
        if value:
            return str(value)
    return ""


def _loop_in(times: list[float | None], k: int, window_s: float) -> bool:
    """K failures in a row within the window somewhere in this streak (times unknown: counted in)."""
    if len(times) < k:
        return False
    for i in range(len(times) - k + 1):
        first, last = times[i], times[i + k - 1]
        if first is None or last is None or last - first <= window_s:
            return True
    return False


class _Streak:
    def __init__(self) -> None:
        self.times: list[float] = []
        self.reasons: list[str] = []

    def add(self, at: float, reason: str) -> None:
        self.times.append(at)
        self.reasons.append(reason)

    def close(self, agent: str, k: int, window_s: float, found: list[CrashLoop]) -> None:
        if _loop_in(self.times, k, window_s):
            generic = classify_reason(None, "")
            reason = next((r for r in reversed(self.reasons) if r and r != generic
                           and not r.startswith("exited before")), self.reasons[-1])
            found.append(CrashLoop(agent, len(self.times), self.times[0], self.times[-1], reason))
        self.times, self.reasons = [], []


class _Life:
    def __init__(self, started: float | None):
        self.started = started
        self.claimed = False
        self.infra = False
        self.ended = False


def _crash_loops_from_events(events: list[dict], k: int, window_s: float) -> list[CrashLoop]:
    found: list[CrashLoop] = []
    streaks: dict[str, _Streak] = {}
    lives: dict[str, _Life | None] = {}

    def end_life(agent: str, life: _Life | None, at: float, *, failed: str | None) -> None:
        streak = streaks[agent]
        if life is not None and life.ended:
            return
        worked = life is not None and (life.claimed or life.infra)
        if failed is not None and not worked:
            streak.add(at, failed)
        elif failed is None and life is not None and life.started is not None and not life.infra \
                and at - life.started >= HEALTHY_S:
            streak.close(agent, k, window_s, found)  # a healthy life resets the count
        if life is not None:
            life.ended = True
        else:
            lives[agent] = _Life(None)
            lives[agent].ended = True

    for event in events:
        agent = str(event.get("agent", "?"))
        kind = event.get("kind")
        at = _at(event)
        streak = streaks.setdefault(agent, _Streak())
        life = lives.get(agent)
        if kind == "worker_started":
            if life is not None and not life.ended:
                # the previous process left no last words and did nothing: a failed start
                short = life.started is None or at - life.started < HEALTHY_S
                end_life(agent, life, at, failed="exited before doing any work" if short else None)
            lives[agent] = _Life(at)
        elif kind == "claimed":
            if life is None:
                life = lives[agent] = _Life(None)
            life.claimed = True
        elif kind == "infra":
            if life is None:
                life = lives[agent] = _Life(None)
            life.infra = True
            streak.add(at, classify_reason(event.get("cause"), _detail(event)))
        elif kind in _WORK:
            streak.close(agent, k, window_s, found)
        elif kind in _LIFE_END:
            failed = event.get("level") == "ERROR"
            end_life(agent, life, at,
                     failed=classify_reason(event.get("cause"), _detail(event)) if failed else None)
            if kind == "worker_done":
                streak.close(agent, k, window_s, found)
    for agent, streak in streaks.items():
        streak.close(agent, k, window_s, found)
    return found


def _crash_loops_from_lines(lines: list[_Line], k: int, window_s: float) -> list[CrashLoop]:
    """The same normalized ERROR line K times in a row (other levels between do not break it) in one source."""
    found: list[CrashLoop] = []
    current: dict[str, list] = {}  # source -> [signature, times, first raw message]

    def close(source: str) -> None:
        run = current.pop(source, None)
        if run and _loop_in(run[1], k, window_s):
            times = [t for t in run[1] if t is not None]
            found.append(CrashLoop(_agent_of(source), len(run[1]), times[0] if times else None,
                                   times[-1] if times else None, classify_reason(None, run[2]), source))

    for line in lines:
        if line.level != "ERROR":
            continue
        signature = _signature(line.message)
        run = current.get(line.source)
        if run is None or run[0] != signature:
            close(line.source)
            current[line.source] = [signature, [line.at], line.message]
        else:
            run[1].append(line.at)
    for source in list(current):
        close(source)
    return found


_SIGNATURES: dict[str, str] = {}


def _signature(text: str) -> str:
    signature = _SIGNATURES.get(text)
    if signature is None:
        if len(_SIGNATURES) > 100_000:
            _SIGNATURES.clear()
        signature = _SIGNATURES[text] = normalize_error(text)
    return signature


def _repeated_errors(events: list[dict], lines: list[_Line]) -> list[RepeatedError]:
    groups: dict[tuple[str, str], RepeatedError] = {}

    def count(level: str, signature: str, at: float | None, example: str, agent: str) -> None:
        group = groups.get((level, signature))
        if group is None:
            groups[(level, signature)] = RepeatedError(signature, level, 1, at, at, example[:EXAMPLE_CHARS],
                                                       [agent] if agent else [])
            return
        group.count += 1
        if at is not None:
            group.first = at if group.first is None else min(group.first, at)
            group.last = at if group.last is None else max(group.last, at)
        if agent and agent not in group.agents:
            group.agents.append(agent)

    for event in events:
        level = event.get("level")
        if level not in ("ERROR", "WARNING"):
            continue
        detail = _detail(event)
        kind = event.get("kind")
        count(level, f"{kind}: {_signature(detail)}" if detail else str(kind), _at(event),
              f"{kind}: {detail}" if detail else str(kind), str(event.get("agent", "")))
    for line in lines:
        if line.level in ("ERROR", "WARNING"):
            count(line.level, _signature(line.message), line.at, line.raw.strip(), _agent_of(line.source))
    ranked = sorted(groups.values(), key=lambda g: (-g.count, g.level != "ERROR",
                                                    g.first if g.first is not None else float("inf")))
    return ranked[:TOP_ERRORS]


def _tasks(events: list[dict]) -> tuple[list[OverClaimed], list[TaskTime]]:
    claims: dict[str, list[tuple[float, str]]] = {}
    outcomes: dict[str, dict[str, list[float]]] = {}
    life_marks: dict[str, float] = {}  # agent -> its last start or end
    last_outcome: dict[str, float] = {}
    for event in events:
        kind = event.get("kind")
        agent = str(event.get("agent", "?"))
        at = _at(event)
        if kind == "worker_started" or kind in _LIFE_END:
            life_marks[agent] = at
        task = event.get("task")
        if not task:
            continue
        task = str(task)
        if kind == "claimed":
            claims.setdefault(task, []).append((at, agent))
        elif kind in _ACCOUNTED:
            outcomes.setdefault(task, {}).setdefault(kind, []).append(at)
            last_outcome[task] = at
    over: list[OverClaimed] = []
    times: list[TaskTime] = []
    for task, claimed in claims.items():
        done = outcomes.get(task, {})
        accounted = sum(len(done.get(kind, ())) for kind in _ACCOUNTED)
        last_at, last_agent = claimed[-1]
        held = last_at >= last_outcome.get(task, float("-inf")) and life_marks.get(last_agent, float("-inf")) < last_at
        in_progress = held and len(claimed) > accounted
        if len(claimed) - accounted - (1 if in_progress else 0) > 0:
            agents = list(dict.fromkeys(agent for _, agent in claimed))
            over.append(OverClaimed(task, len(claimed), accounted, agents, in_progress))
        end, outcome = None, None
        if done.get("done"):
            end, outcome = min(done["done"]), "done"
        elif done.get("failed_attempt"):
            end, outcome = max(done["failed_attempt"]), "failed"
        if end is not None:
            times.append(TaskTime(task, max(0.0, end - claimed[0][0]), outcome,
                                  len(done.get("done", ())) + len(done.get("failed_attempt", ()))))
    over.sort(key=lambda o: (-(o.claims - o.accounted), o.task))
    times.sort(key=lambda t: (-t.seconds, t.task))
    return over, times


def analyze(events: list[dict], lines: list[str], *, loop_threshold: int = 3, window_s: float = 600) -> Report:
    """What the events and log lines say: crash loops, the most repeated errors, over-claimed tasks and
    time per task. Linear in the input (events are put in time order first)."""
    skipped = getattr(events, "skipped", 0)
    valid = []
    for event in events:
        if isinstance(event, dict) and isinstance(event.get("kind"), str):
            valid.append(event)
        else:
            skipped += 1
    with_events = {str(e.get("agent", "?")) for e in valid}
    parsed = _parse_lines(lines)
    plain: list[_Line] = []
    mirrored: list[dict] = []
    for line in parsed:
        event = _mirrored_event(line) if line.source else None
        if event is not None:
            if event["agent"] not in with_events:
                mirrored.append(event)
            continue  # the event itself counts (once)
        plain.append(line)
    all_events = sorted(valid + mirrored, key=_at) if mirrored else sorted(valid, key=_at)

    crash_loops = _crash_loops_from_events(all_events, loop_threshold, window_s)
    seen = {loop.agent: loop for loop in crash_loops}
    for loop in _crash_loops_from_lines(plain, loop_threshold, window_s):
        same = seen.get(loop.agent)
        if same is not None and (loop.first is None or same.first is None
                                 or (loop.first <= same.last + window_s and loop.last >= same.first - window_s)):
            continue  # the events already tell this loop
        crash_loops.append(loop)
    crash_loops.sort(key=lambda c: (-c.count, c.agent))
    over, times = _tasks(all_events)
    return Report(crash_loops=crash_loops, repeated_errors=_repeated_errors(all_events, plain),
                  over_claimed=over, task_times=times, events=len(valid), lines=len(parsed), skipped=skipped)
