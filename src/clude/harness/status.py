"""The statuses of a Verdict and the exit code of each (standard library only: read before pydantic)."""

from enum import Enum

from clude import exits


class Status(str, Enum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    NO_TESTS = "no_tests"
    TIMEOUT = "timeout"
    CRASHED = "crashed"
    INTERRUPTED = "interrupted"


# `clude test` exit codes, one per status (clude.exits, docs/exit-codes.md).
EXIT_CODES: dict[Status, int] = {
    Status.PASSED: 0,
    Status.FAILED: exits.TEST_FAILED,
    Status.ERROR: exits.TEST_ERROR,
    Status.NO_TESTS: exits.TEST_NO_TESTS,
    Status.TIMEOUT: exits.TEST_TIMEOUT,
    Status.CRASHED: exits.TEST_CRASHED,
    Status.INTERRUPTED: exits.INTERRUPTED,
}
