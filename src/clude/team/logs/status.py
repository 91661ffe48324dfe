"""What the events and heartbeats say each worker is doing (pure): `team status` and `team run`."""

from __future__ import annotations

import time

# what a worker is doing after each kind of its own events (a lander's events about the tasks it lands,
# which carry `queued_by`, say nothing of what its worker is doing)
_STATE_AFTER = {"worker_restarted": "restarting", "worker_started": "idle", "claimed": "working",
                "agent_started": "working", "agent_finished": "verifying", "queued": "idle",
                "done": "idle", "failed_attempt": "idle", "infra": "idle", "lost": "idle",
                "worker_blocked": "blocked", "worker_done": "finished", "worker_stopped": "exited"}


# what a worker does only when its environment works: an agent's result judged, or a landing
_WORKED = frozenset({"queued", "done", "failed_attempt", "landed"})
_ENDED = frozenset({"blocked", "exited", "finished"})  # its lander's last words do not bring it back


def worker_states(events: list[dict], beats: dict[str, dict] | None = None, now: float | None = None) -> list[dict]:
    """Each worker's state from its events (and heartbeats): the last state-changing event, its task
    and attempt, uptime, restarts and last error."""
    now = time.time() if now is None else now
    workers: dict[str, dict] = {}
    for event in events:
        agent = str(event.get("agent", "?"))
        w = workers.setdefault(agent, {"agent": agent, "state": "idle", "task": None, "attempt": None,
                                       "since": None, "uptime_s": None, "restarts": 0, "error": None})
        kind = event.get("kind")
        at = float(event.get("at", 0))
        if kind == "worker_started":
            w["started"] = at
            w["sandbox"] = event.get("sandbox", "on")
        if kind == "worker_restarted":
            w["restarts"] = int(event.get("restarts") or w["restarts"] + 1)
        if kind in _STATE_AFTER and "queued_by" not in event:
            w["state"] = _STATE_AFTER[kind]
            w["since"] = time.strftime("%H:%M:%S", time.localtime(at))
            working = w["state"] in ("working", "verifying")
            w["task"] = event.get("task") if working else None
            w["attempt"] = event.get("attempt") if working else None
        if event.get("level") == "ERROR":
            w["error"] = event.get("reason") or event.get("message")
        elif kind in _WORKED and w["state"] not in _ENDED:  # it works again: an error it had is behind it
            w["error"] = None
    for agent, beat in (beats or {}).items():
        w = workers.setdefault(agent, {"agent": agent, "restarts": 0, "error": None})
        if w.get("state") not in _ENDED:
            w.update(state=beat.get("state"), task=beat.get("task"), attempt=beat.get("attempt"),
                     since=time.strftime("%H:%M:%S", time.localtime(float(beat.get("since") or 0))))
        w["started"] = float(beat.get("started") or w.get("started") or now)
        w["heartbeat_age_s"] = round(now - float(beat.get("at") or 0), 1)
    for w in workers.values():
        started = w.pop("started", None)
        ended = w.get("state") in _ENDED
        w["uptime_s"] = round(now - started) if started and not ended else None
    return list(workers.values())
