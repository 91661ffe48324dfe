"""Lock files: current_tasks/TASK-001.lock (JSON) <-> Lock, and the lease rules (pure)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, ValidationError, field_serializer

from clude.team.board.tasks import TaskId


class LockFileError(ValueError):
    """A lock file that cannot be read: not JSON, or not a lock."""


def _utc(value: datetime) -> datetime:
    # a time written without a zone is UTC: lock files are always written with "Z"
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


UtcTime = Annotated[datetime, AfterValidator(_utc)]


class Queued(BaseModel):
    """A held task whose change waits in the merge queue (team/queue): the change commit, pushed to the
    upstream in the queue's chain (team/queue/enqueue.py), and what the lander needs to land it or to
    send it back."""

    at: UtcTime                                     # when it was queued: the queue's order
    commit: str = Field(pattern=r"^[0-9a-f]{40}([0-9a-f]{24})?$")
    passes: list[str] = Field(default_factory=list)  # tests the worker saw pass: the batch must keep them
    text: str = ""                                  # the PROGRESS line's text once it lands
    summary: str = ""                               # what the agent said (a failure record quotes it)
    log: str = ""                                   # host:path of the agent's log
    unverified: bool = False                        # [team] verify = "none": landed without tests
    changed_tests: list[str] = Field(default_factory=list)

    @field_serializer("at")
    def _iso_z(self, value: datetime) -> str:
        return iso_z(value)


class Lock(BaseModel):
    """Who holds a task, on which attempt, and until when their lease runs; `queued` once its change
    waits in the merge queue (then the lander, not the lease, ends the hold)."""

    task: TaskId
    agent: str = Field(min_length=1)
    host: str
    pid: int
    attempt: int = Field(ge=1)
    claimed_at: UtcTime
    lease_until: UtcTime
    queued: Queued | None = None

    @field_serializer("claimed_at", "lease_until")
    def _iso_z(self, value: datetime) -> str:
        return iso_z(value)


def iso_z(value: datetime) -> str:
    """ISO 8601 in UTC with a "Z": 2026-11-23T18:00:00Z (fractions of a second only when there are some)."""
    return _aware(value, "time").astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def parse_lock(text: str) -> Lock:
    """The Lock in a lock file's text; raises LockFileError saying why it cannot be read."""
    try:
        data: Any = json.loads(text)
    except ValueError as err:
        raise LockFileError(f"not JSON: {err}") from None
    if not isinstance(data, dict):
        raise LockFileError(f"not a lock: expected a JSON object, got {type(data).__name__}")
    try:
        return Lock.model_validate(data)
    except ValidationError as err:
        problems = ["{}: {}".format(".".join(map(str, e["loc"])), e["msg"]) for e in err.errors()]
        raise LockFileError("not a lock: " + "; ".join(problems)) from None


def render_lock(lock: Lock) -> str:
    """The lock file's text: one JSON object, times in ISO 8601 with "Z", and a final newline."""
    return json.dumps(lock.model_dump(mode="json", exclude_none=True)) + "\n"


def new_lock(task: str, agent: str, host: str, pid: int, attempt: int, now: datetime, lease_s: float) -> Lock:
    """A lock claimed at `now` whose lease runs `lease_s` seconds."""
    now = _aware(now, "now")
    return Lock(task=task, agent=agent, host=host, pid=pid, attempt=attempt,
                claimed_at=now, lease_until=now + timedelta(seconds=lease_s))


def renewed(lock: Lock, now: datetime, lease_s: float) -> Lock:
    """The same lock with its lease running `lease_s` seconds from `now`."""
    return lock.model_copy(update={"lease_until": _utc(_aware(now, "now") + timedelta(seconds=lease_s))})


def is_live(lock: Lock | None, now: datetime) -> bool:
    """Whether the lock still holds its task: its lease ends after `now`."""
    return lock is not None and lock.lease_until > _aware(now, "now")


def lease_end(lock: Lock, now: datetime, lease_s: float, written_at: Callable[[], float | None]) -> datetime:
    """When the lease of `lock` ends as every reader judges it: its lease_until, but never later than
    `lease_s` after the lock file was last written (its last renewal; `written_at()`: epoch seconds, the
    time of the commit that wrote it, None when unknown). A lock claiming a lease far in the future (a
    clock far ahead, a hostile writer) so holds its task one lease after its last renewal, not forever.
    Cheap: `written_at` is asked only when lease_until lies more than `lease_s` after `now`."""
    if lock.lease_until <= _aware(now, "now") + timedelta(seconds=lease_s):
        return lock.lease_until
    written = written_at()
    if written is None:
        return lock.lease_until
    return min(lock.lease_until, datetime.fromtimestamp(written, timezone.utc) + timedelta(seconds=lease_s))


def unreadable_lock_live(written_at: float | None, now: datetime, lease_s: float) -> bool:
    """An unreadable lock file is held until its lease would have ended: `lease_s` seconds after it was
    written (`written_at`, seconds since the epoch: the time of the commit that wrote it). Unknown -> held."""
    if written_at is None:
        return True
    return _aware(now, "now").timestamp() < written_at + lease_s


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be a timezone-aware datetime (datetime.now(timezone.utc)), not {value!r}")
    return value
