"""One change to the team upstream that lands whole or not at all: fetch, reset, apply, commit, push; a
lost race is retried."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

from clude.backoff import backoff
from clude.team.protocol.git import Repo

# Backoff after a lost race: jittered, doubling from FIRST_DELAY up to MAX_DELAY seconds.
FIRST_DELAY = 0.05
MAX_DELAY = 2.0


class UpstreamRejected(Exception):
    """The upstream refused a push for another reason than a race (hook, permissions, disk, network),
    or the races never ended; the message has git's words and what to check."""

    def __init__(self, message: str, *, stderr: str = "") -> None:
        super().__init__(message)
        self.stderr = stderr


def race_backoff(race: int, rng: random.Random) -> float:
    """Seconds to wait after the race-th lost race (1, 2, ...), jittered so that racing workers spread
    out instead of colliding again."""
    return backoff(race, first=FIRST_DELAY, cap=MAX_DELAY, rng=rng)


def update_upstream(repo: Repo, change: Callable[[Path], str | None], *, attempts: int = 60,
                    sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None,
                    fetch: tuple[str, ...] = (), also: Callable[[], tuple[str, ...]] = tuple) -> str | None:
    """Apply one change to the upstream's main as one commit, whole or not at all.

    Each round: fetch, reset the clone to origin/main, call change(repo.path) — which edits the
    checkout and returns the commit message, or None when the change no longer applies (say, the
    task was claimed meanwhile) — commit, push. A lost race backs off and starts over from the fetch,
    so change() always sees the newest upstream. Returns the pushed commit, the unchanged head when
    change() changed nothing, or None when change() declined. Raises UpstreamRejected when the push
    is refused for another reason, or after `attempts` lost races; GitError when git itself fails
    (the upstream cannot be fetched, say). `fetch`: more refspecs fetched each round; `also()`: more
    refspecs pushed with main, atomically, made after the commit of each round."""
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, not {attempts}")
    rng = rng or random.Random()
    last = ""
    for race in range(1, attempts + 1):
        repo.fetch(*fetch)
        repo.reset_to_upstream()
        message = change(repo.path)
        if message is None:
            return None
        if not repo.commit_all(message):
            return repo.head()
        result = repo.push(*also())
        if result.status == "ok":
            return repo.head()
        if result.status == "rejected":
            raise UpstreamRejected(
                f"the upstream refused the push ({_first_line(message)!r}) for another reason than a race:"
                f"\n{result.message}\nCheck the upstream's hooks, write permissions, free disk space and "
                f"that it is reachable; nothing was retried.", stderr=result.message)
        last = result.message
        if race < attempts:
            sleep(race_backoff(race, rng))
    raise UpstreamRejected(f"gave up after {attempts} lost races pushing to the upstream; the last "
                           f"one said:\n{last}\nToo many agents are pushing at once, or something "
                           f"keeps moving the upstream's main.", stderr=last)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
