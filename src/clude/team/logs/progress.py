"""What `clude team run` (and `team demo`) prints as the team works: one line per event worth telling a
person, read from the team's own events (events.jsonl), never a second record of what happened. Pure."""

from __future__ import annotations


class Progress:
    """The lines of a run's events, in order; a worker's restarts and a reason it gave already are told
    once (the monitor prints a crash loop's end itself)."""

    def __init__(self, since: float = 0.0):
        self.since = since  # events before it are an earlier run's
        self.told: set[tuple] = set()

    def line(self, event: dict) -> str | None:
        if float(event.get("at") or 0) < self.since:
            return None
        kind, agent = event.get("kind"), str(event.get("agent", "?"))
        if kind == "worker_blocked" and event.get("by") != "monitor":
            key: tuple = (agent, kind, str(event.get("reason")))
        elif kind == "worker_started":
            key = (agent, kind)
        else:
            return progress_line(event)
        if key in self.told:
            return None
        self.told.add(key)
        return progress_line(event)


def progress_line(event: dict) -> str | None:
    """The line to print for one event, or None for an event that says nothing new to a person watching
    (an agent started or finished: the claim and the verdict tell it; the queue's bookkeeping; a worker
    done, which the end of the run tells of every worker; the monitor's own restarts and blocks, which it
    prints itself)."""
    kind = event.get("kind")
    agent = str(event.get("agent", "?"))
    task = event.get("task")
    attempt = f" (attempt {event['attempt']})" if event.get("attempt") else ""
    reason = str(event.get("reason") or "").strip()
    by = event.get("queued_by")
    if kind == "worker_started":
        return f"worker {agent} started ({event.get('backend', '?')} backend)"
    if kind == "claimed":
        ahead = f", ahead, while {event['ahead_of']} is checked" if event.get("ahead_of") else ""
        return f"{agent} claimed {task}{attempt}{ahead}"
    if kind == "queued":
        return f"{agent} finished {task}{attempt}: checked, queued to land"
    if kind == "done":
        how = "" if event.get("verified", True) else " without verification"
        return f"done {task}{attempt}: {by or agent}'s change landed{how}"
    if kind == "failed_attempt":
        end = "; no attempts left: the task is failed" if event.get("final") else ""
        return f"{by or agent} failed {task}{attempt}: {reason or 'no reason given'}{end}"
    if kind == "conflict":
        return f"{task} conflicts with what landed meanwhile: back to {by or agent}"
    if kind == "lost":
        return f"{by or agent} lost {task}" + (f": {reason}" if reason else "")
    if kind == "infra":
        return f"{agent} could not run its agent on {task} (no attempt used): {reason}"
    if kind == "task_blocked":
        return f"blocked {task}: {reason}"
    if kind == "worker_blocked" and event.get("by") != "monitor":
        return f"worker {agent} cannot work: {reason}"
    if kind == "worker_stopped" and reason and reason != "interrupted":
        return f"worker {agent} stopped: {reason}"
    return None
