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

import statistics
from dataclasses import asdict, dataclass, field

from clude.team.supervision.crashloop import Policy, in_a_loop
from clude.team.logs.logread import (KINDS, EventList, Line, agent_of, classify_reason, default_inputs,
                                mirrored_event, normalize_error, parse_lines, read_inputs, source_header)

# read_inputs and its helpers live in logread.py; the command line and the tests take them from here
__all__ = ["Report", "analyze", "read_inputs", "default_inputs", "source_header", "normalize_error",
           "classify_reason", "EventList", "KINDS"]

TOP_ERRORS = 10
SLOWEST = 5
HEALTHY_S = Policy().healthy_s  # a worker life this long without an error counts as healthy
EXAMPLE_CHARS = 300

# what the agent did work on: an infrastructure failure streak ends here (as in Worker.attempt)
_WORK = frozenset({"done", "failed_attempt", "lost", "conflict", "queued"})
_LIFE_END = frozenset({"worker_blocked", "worker_stopped", "worker_done", "worker_silent"})
_ACCOUNTED = frozenset({"failed_attempt", "done", "infra", "lost"})
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
    seconds: float                # first claim to done (or to the failed attempt that was its last, or
                                  # to its blocking); a task still open has no time
    outcome: str                  # "done", "failed" or "blocked"
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


class _Streak:
    def __init__(self) -> None:
        self.times: list[float] = []
        self.reasons: list[str] = []

    def add(self, at: float, reason: str) -> None:
        self.times.append(at)
        self.reasons.append(reason)

    def close(self, agent: str, k: int, window_s: float, found: list[CrashLoop]) -> None:
        if in_a_loop(self.times, k, window_s):
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


def _crash_loops_from_lines(lines: list[Line], k: int, window_s: float) -> list[CrashLoop]:
    """The same normalized ERROR line K times in a row (other levels between do not break it) in one source."""
    found: list[CrashLoop] = []
    current: dict[str, list] = {}  # source -> [signature, times, first raw message]

    def close(source: str) -> None:
        run = current.pop(source, None)
        if run and in_a_loop(run[1], k, window_s):
            times = [t for t in run[1] if t is not None]
            found.append(CrashLoop(agent_of(source), len(run[1]), times[0] if times else None,
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


def _repeated_errors(events: list[dict], lines: list[Line]) -> list[RepeatedError]:
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
            count(line.level, _signature(line.message), line.at, line.raw.strip(), agent_of(line.source))
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
        elif kind == "task_blocked":
            outcomes.setdefault(task, {}).setdefault("blocked", []).append(at)
        elif kind in _ACCOUNTED:
            if kind == "failed_attempt" and event.get("final"):
                outcomes.setdefault(task, {}).setdefault("failed", []).append(at)
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
        end, outcome = None, None  # a task with failed attempts but attempts left is still open
        if done.get("done"):
            end, outcome = min(done["done"]), "done"
        elif done.get("failed"):
            end, outcome = max(done["failed"]), "failed"
        elif done.get("blocked"):
            end, outcome = max(done["blocked"]), "blocked"
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
    parsed = parse_lines(lines)
    plain: list[Line] = []
    mirrored: list[dict] = []
    for line in parsed:
        event = mirrored_event(line) if line.source else None
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
