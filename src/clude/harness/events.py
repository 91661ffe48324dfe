"""Reads the event stream that clude's pytest plugin and unittest runner write (see inject/clude_events.py)."""

from __future__ import annotations

from pathlib import Path

from clude.harness.inject.clude_events import json_object
from clude.harness.verdict import Failure, RunFacts, Sample

_OUTCOMES = {"passed", "failed", "error", "skipped", "xfailed", "xpassed"}
_WORST = ("error", "failed", "xpassed", "skipped", "xfailed", "passed")  # worst first


def read_events(path: Path) -> RunFacts:
    """The facts an event file holds. A missing file, a torn last line or junk lines are tolerated."""
    facts = RunFacts()
    try:
        raw = path.read_bytes()
    except OSError:
        return facts
    running: dict[str, None] = {}
    for line in raw.decode("utf-8", "replace").splitlines():
        ev = json_object(line)
        if ev is None:
            continue
        ev = {key: _text(value) if isinstance(value, str) else value for key, value in ev.items()}
        kind = ev.get("ev")
        if kind == "start":
            facts.started = True
        elif kind == "begin":
            running[str(ev.get("id"))] = None
        elif kind == "result":
            if facts.finished:  # the session had ended: something else wrote this
                facts.tampered = facts.tampered or ["results written after the test session finished"]
            _add_result(facts, ev)
            running.pop(str(ev.get("id")), None)
        elif kind == "collect_error":
            facts.collection_errors.append(_failure(ev, "error"))
        elif kind == "sample":
            facts.sample = Sample(rate=float(ev.get("rate", 1.0)), seed=str(ev.get("seed", "")),
                                  selected=int(ev.get("selected", 0)), of=int(ev.get("of", 0)))
        elif kind == "interrupted":
            facts.interrupted = True
        elif kind == "tampered":
            facts.tampered = [str(name) for name in ev.get("what") or []] or ["(unnamed)"]
        elif kind == "finish":
            facts.finished = True
            if ev.get("stopped"):
                facts.stopped_early = str(ev["stopped"])
    if running:
        facts.running = next(reversed(running))
    return facts


def _text(value: str) -> str:
    """The string as valid Unicode. A test's output, ids and messages may hold lone surrogates (bytes
    that were not UTF-8, decoded with surrogateescape), which no UTF-8 file or JSON output can hold;
    they become escapes such as \\xe9."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        pass
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = value.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "backslashreplace")


def _failure(ev: dict, kind: str) -> Failure:
    line = ev.get("line")
    return Failure(id=str(ev.get("id", "?")), file=ev.get("file") or None,
                   line=line if isinstance(line, int) and line > 0 else None,
                   kind=ev.get("kind") if ev.get("kind") in ("failure", "error") else kind,
                   reason=str(ev.get("reason") or ""))


def _add_result(facts: RunFacts, ev: dict) -> None:
    test_id = str(ev.get("id"))
    outcome = ev.get("outcome") if ev.get("outcome") in _OUTCOMES else "error"
    held = facts.outcomes.get(test_id)
    if held is not None and _WORST.index(held) < _WORST.index(outcome):
        return  # a test reported twice keeps its worst outcome: a pass written later cannot undo a failure
    facts.outcomes[test_id] = outcome
    if outcome in ("failed", "error"):
        facts.failures.append(_failure(ev, "failure" if outcome == "failed" else "error"))
