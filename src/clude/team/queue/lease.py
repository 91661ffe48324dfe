"""The landing lease: at most one lander at a time. The lease is a chain of empty commits on the upstream
ref LEASE_REF, each naming its holder and when its hold ends; taking, renewing and releasing push a child
of the tip the taker saw, so git's fast-forward check is the compare-and-swap: of two takers one wins.
A lease that ran out, or whose holder's process is gone on this host, may be taken by anyone."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from clude.team.protocol.git import Repo
from clude.team.protocol.sync import UpstreamRejected

# The lease's ref on the upstream (under LEASE_REFS, fetched by a glob: a missing ref is no error).
LEASE_REFS = "refs/clude/lease"
LEASE_REF = f"{LEASE_REFS}/lander"


@dataclass(frozen=True)
class Holder:
    agent: str
    host: str
    pid: int
    until: datetime


def parse_holder(message: str) -> Holder | None:
    """The holder a lease commit's message names; None for anything else."""
    try:
        data = json.loads(message)
        return Holder(str(data["agent"]), str(data["host"]), int(data["pid"]),
                      datetime.fromisoformat(str(data["until"]).replace("Z", "+00:00")))
    except (ValueError, KeyError, TypeError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holds(holder: Holder | None, *, now: datetime, host: str,
          alive: Callable[[int], bool] = pid_alive) -> bool:
    """Whether `holder` still holds the lease at `now`: its time has not run out, and when it is on this
    host, its process still runs (a lander killed here frees the lease at once, not a lease later)."""
    if holder is None or holder.until <= now:
        return False
    return holder.host != host or alive(holder.pid)


class LandingLease:
    """This lander's side of the lease, through its own clone. Safe to renew from a keeper thread while
    the lander tests (keeping())."""

    def __init__(self, repo: Repo, *, agent: str, host: str, pid: int, lease_s: float,
                 clock: Callable[[], datetime]):
        self.repo, self.agent, self.host, self.pid = repo, agent, host, pid
        self.lease_s, self.clock = lease_s, clock
        self.tip: str | None = None        # our last lease commit, while we hold it
        self.last_tip: str | None = None   # our last lease commit, held or not
        self.until: datetime | None = None
        self.first_seen: dict[str, datetime] = {}  # another holder's tip -> when this lander first saw it
        self._guard = threading.RLock()    # take / renew / release, from the lander and its keeper

    @property
    def held(self) -> bool:
        return self.tip is not None and self.until is not None and self.until > self.clock()

    def current(self) -> tuple[str | None, Holder | None]:
        """The tip of the lease (as last fetched, or our own newer one) and who it names."""
        tip = self.repo.rev(f"{LEASE_REF}^{{commit}}")
        if self.last_tip is not None and tip != self.last_tip and (
                tip is None or self.repo.is_ancestor(tip, self.last_tip)):
            tip = self.last_tip  # what was fetched is older than our own last push
        if tip is None:
            return None, None
        return tip, parse_holder(self.repo.message(tip))

    def take(self) -> bool:
        """Hold the lease (renewed when ours and half spent). False when someone else holds it or wins
        the race for it. Another holder's lease counts at most lease_s from when this lander first saw
        its last renewal, whatever its own clock wrote (a dead lander whose clock ran ahead)."""
        with self._guard:
            now = self.clock()
            if self.held and self.until - now > timedelta(seconds=self.lease_s / 2):
                return True
            if self.held:
                return self._push(self.tip, now + timedelta(seconds=self.lease_s))
            tip, holder = self.current()
            mine = holder is not None and (holder.agent, holder.host, holder.pid) == (self.agent, self.host, self.pid)
            if not mine and holds(holder, now=now, host=self.host):
                seen = self.first_seen.setdefault(tip, now)
                if now - seen < timedelta(seconds=self.lease_s):
                    return False
            return self._push(tip, now + timedelta(seconds=self.lease_s))

    def release(self) -> None:
        """Give the lease up (a hold that ended at once), when held; best effort."""
        with self._guard:
            try:
                if self.tip is not None:
                    self._push(self.tip, self.clock())
            except Exception:  # out of reach, refused, this clone broken: the hold runs out by itself
                pass
            finally:
                self.tip = self.until = None

    @contextmanager
    def keeping(self) -> Iterator[threading.Event]:
        """Renew the lease every lease_s / 4 while the block runs (a long test run); the event is set
        when it was lost."""
        lost, stop = threading.Event(), threading.Event()

        def keep() -> None:
            while not stop.wait(self.lease_s / 4):
                try:
                    if not self.take():
                        lost.set()
                        return
                except Exception:  # a network blip: the next renewal tries again
                    continue

        keeper = threading.Thread(target=keep, name="lease-keeper", daemon=True)
        keeper.start()
        try:
            yield lost
        finally:
            stop.set()
            keeper.join()

    def _push(self, parent: str | None, until: datetime) -> bool:
        message = json.dumps({"agent": self.agent, "host": self.host, "pid": self.pid,
                              "until": until.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")})
        commit = self.repo.new_commit(self.repo.empty_tree(), [parent] if parent else [], message)
        pushed = self.repo.push_refs(f"{commit}:{LEASE_REF}")
        if pushed.status == "rejected":
            raise UpstreamRejected(f"the upstream refused the landing lease: {pushed.message}",
                                   stderr=pushed.message)
        if pushed.status == "race":
            self.tip = self.until = None
            return False
        self.tip, self.until, self.last_tip = commit, until, commit
        return True
