"""clude's retry policy for model requests: bounded, deterministic backoff honouring Retry-After."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Callable, Mapping, TypeVar

from clude.backoff import backoff
from clude.llm.base import ModelError, ModelUnavailable, Usage

T = TypeVar("T")

FIRST_DELAY = 1.0  # seconds before the first retry; doubled for each one after
MAX_DELAY = 30.0  # cap of the computed backoff
MAX_RETRY_AFTER = 120.0  # cap of a server's Retry-After: beyond it, waiting in a request is wrong
# the most one chat() call may take, retries included: no retry starts (or is waited for) past it, so a
# flaky server with long Retry-Afters cannot hold the agent for max_retries * MAX_RETRY_AFTER and more
DEADLINE = 600.0


class Transient(Exception):
    """A request that may succeed when repeated: 429, 5xx, timeout, connection error, broken reply."""

    def __init__(self, status: str, retry_after: float | None = None, usage: Usage | None = None,
                 broken: bool = False):
        super().__init__(status)
        self.status = status  # what happened, for the final error: "HTTP 429 (...)", "timeout", ...
        self.retry_after = retry_after
        self.usage = usage or Usage()  # what the failed request cost (a broken reply may report tokens)
        self.broken = broken  # a reply came but was unusable (cut off, no choices)


def backoff_delay(retry: int) -> float:
    """Seconds before retry number `retry` (0-based): 1, 2, 4, 8, 16, 30, 30, ..."""
    return backoff(retry + 1, first=FIRST_DELAY, cap=MAX_DELAY)


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds a response asks to wait (retry-after-ms, or Retry-After as seconds or an HTTP date)."""
    if not headers:
        return None
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis:
        try:
            return _clamp(float(millis) / 1000.0)
        except ValueError:
            pass
    value = (lowered.get("retry-after") or "").strip()
    if not value:
        return None
    try:
        return _clamp(float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = datetime.fromtimestamp(time.time() if now is None else now, timezone.utc)
    return _clamp((when - current).total_seconds())


def _clamp(seconds: float) -> float | None:
    if seconds != seconds:  # NaN
        return None
    return max(0.0, min(MAX_RETRY_AFTER, seconds))


def connection_failure(error: BaseException, scrub: Callable[[str], str] = str) -> Transient:
    """A Transient for an SDK connection error; a reply that broke off midway counts as broken."""
    cause = error.__cause__ or error.__context__
    kind = type(cause).__name__ if cause is not None else ""
    broken = bool(kind) and "Connect" not in kind  # read/protocol errors: the reply was cut off
    detail = f"{kind}: {scrub(str(cause))}" if cause is not None else scrub(str(error))
    what = "reply cut off" if broken else "connection error"
    return Transient(f"{what} ({detail})", broken=broken)


def transient_status(status: int) -> bool:
    """Whether an HTTP status is worth repeating: 408, 409, 429 and every 5xx (Anthropic's 529 too)."""
    return status in (408, 409, 429) or status >= 500


class Attempts:
    """Runs a request up to 1 + max_retries times, sleeping between tries; sums what they cost."""

    def __init__(self, max_retries: int, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, deadline: float = DEADLINE):
        self.max_retries = max(0, int(max_retries))
        self.sleep = sleep
        self.clock = clock
        self.deadline = deadline
        self.usage = Usage()  # every attempt of the last run, failed ones included
        self.delays: list[float] = []

    def run(self, request: Callable[[], T], describe: str) -> T:
        """request() or, after the last retry, ModelUnavailable naming `describe` and the last status."""
        self.usage = Usage()
        self.delays = []
        started = self.clock()
        retry = 0
        while True:
            try:
                return request()
            except ModelError:  # refused for good (bad key, unknown model): still a request made
                self.usage = self.usage + Usage(requests=1)
                raise
            except Transient as failure:
                self.usage = self.usage + failure.usage + Usage(
                    requests=0 if failure.usage.requests else 1,
                    broken_replies=1 if failure.broken else 0)
                elapsed = self.clock() - started
                tries = retry + 1
                gave_up = (f"{describe}: gave up after {tries} attempt{'s' if tries != 1 else ''} "
                           f"over {elapsed:.1f} s")
                if retry >= self.max_retries:
                    raise ModelUnavailable(f"{gave_up}; last: {failure.status}") from None
                delay = failure.retry_after if failure.retry_after is not None else backoff_delay(retry)
                if elapsed + delay > self.deadline:
                    asked = (f"the server asked to wait {delay:g} s (Retry-After)"
                             if failure.retry_after is not None else f"the next retry is due in {delay:g} s")
                    raise ModelUnavailable(
                        f"{gave_up}: {asked}, past the {self.deadline:g} s limit of one request; "
                        f"last: {failure.status}") from None
                self.delays.append(delay)
                self.usage = self.usage + Usage(retries=1)
                retry += 1
                self.sleep(delay)
