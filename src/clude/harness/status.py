"""The statuses of a Verdict and the exit code of each (standard library only: read before pydantic)."""

from enum import Enum


class Status(str, Enum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    NO_TESTS = "no_tests"
    TIMEOUT = "timeout"
    CRASHED = "crashed"
    INTERRUPTED = "interrupted"


# `clude test` exit codes, one per status (docs/harness.md). 2 is left to click for usage errors.
EXIT_CODES: dict[Status, int] = {
    Status.PASSED: 0,
    Status.FAILED: 1,
    Status.ERROR: 3,
    Status.NO_TESTS: 4,
    Status.TIMEOUT: 5,
    Status.CRASHED: 6,
    Status.INTERRUPTED: 130,
}
