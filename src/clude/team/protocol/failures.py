"""What a failed push, fetch or clone says: a lost race (fetch and redo), a refusal (retrying will not
fix it), or the upstream out of reach just now (waited out by `reaching`). Pure but for the waiting."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from clude.backoff import backoff
from clude.gitcli import GitError

T = TypeVar("T")

# A push refused for a reason that retrying will not fix. Checked first: a disk-full or permission
# error can also surface as "failed to update ref", which alone would look like a race.
_REJECTED = re.compile("|".join([
    r"hook declined", r"permission denied", r"read-only", r"read only", r"no space left",
    r"disk quota", r"unable to write", r"insufficient permission", r"unpack(er)? (error|failed)",
    r"authentication", r"could not read (from remote|username|password)", r"access denied",
    r"does not appear to be a git repository", r"repository not found", r"could not resolve host",
    r"connection (refused|reset|timed out)", r"network is unreachable", r"did not finish within",
]), re.IGNORECASE)
# The upstream cannot be reached just now (a server restarting, a network blip): waited out, up to
# UNREACHABLE_WAIT_S, by every fetch, clone and push (`reaching`), before it counts as a failure.
_UNREACHABLE = re.compile("|".join([
    r"connection (refused|reset|timed out)", r"unable to connect", r"could not resolve host",
    r"network is unreachable", r"temporary failure in name resolution", r"no route to host",
    r"the remote end hung up unexpectedly", r"early eof", r"did not finish within",
    r"unexpected disconnect", r"bad pack header", r"protocol error: bad", r"broken pipe",
    # the connection cut in the middle of the refs' advertisement (a daemon going down as it answered)
    r"expected flush after ref listing", r"protocol error: expected",
]), re.IGNORECASE)
UNREACHABLE_WAIT_S = 300.0
# ... unless the upstream answered: a hook or the server refused (never waited for).
_ANSWERED = re.compile(r"\[(?:remote )?rejected\]|atomic push failed|hook declined|pre-receive hook"
                       r"|The requested URL returned error: 4\d\d|\bHTTP 4\d\d\b", re.IGNORECASE)
# The remote moved under us (compare-and-swap lost): fetch, redo the change, push again.
_RACE = re.compile("|".join([
    r"\(fetch first\)", r"non-fast-forward", r"failed to update ref", r"cannot lock ref",
    r"reference already exists", r"incorrect old value provided", r"stale info",
    r"unable to create '[^']*\.lock': file exists",
]), re.IGNORECASE)


@dataclass(frozen=True)
class PushResult:
    """How a push ended: "ok" (landed), "race" (the upstream moved first: fetch and retry) or
    "rejected" (refused for another reason: hooks, permissions, disk, network); message = git's words."""

    status: Literal["ok", "race", "rejected"]
    message: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def unreachable(error: BaseException) -> bool:
    """Whether a git failure says the upstream could not be reached (not what was asked of it); a git
    killed by SIGPIPE (the connection dropped under a push) says so without a word."""
    if not isinstance(error, GitError):
        return False
    said = f"{error.stderr or ''}\n{str(error)}"
    if _ANSWERED.search(said) or _RACE.search(said):  # the upstream was reached, and it said no
        return False
    # what the upstream's hooks print ("remote: ...") is theirs, not the connection's
    own = "\n".join(line for line in said.splitlines() if not line.lstrip().startswith("remote:"))
    return error.returncode == -signal.SIGPIPE or bool(_UNREACHABLE.search(own))


def reaching(call: Callable[[], T], *, wait_s: float = UNREACHABLE_WAIT_S,
             sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> T:
    """call(), again after a growing pause while it fails because the upstream cannot be reached, for up
    to `wait_s`; then (or on any other failure) its GitError."""
    start, tries = clock(), 0
    while True:
        try:
            return call()
        except GitError as error:
            tries += 1
            if not unreachable(error) or clock() - start > wait_s:
                raise
            sleep(backoff(tries, first=0.5, cap=10.0))


def classify_push(stderr: str) -> Literal["race", "rejected"]:
    """Why a push failed, from git's error output: "race" when only the remote moving under us
    explains it, "rejected" for everything else (including output we do not recognise)."""
    if _REJECTED.search(stderr):
        return "rejected"
    return "race" if _RACE.search(stderr) else "rejected"
