"""The test harness: runs a project's tests and returns a Verdict every agent can trust (DESIGN.md)."""

from clude.harness.compare import Comparison, compare
from clude.harness.report import concise
from clude.harness.runner import run_tests
from clude.harness.verdict import EXIT_CODES, Counts, Failure, Status, Verdict

__all__ = ["EXIT_CODES", "Comparison", "Counts", "Failure", "Status", "Verdict", "compare",
           "concise", "run_tests"]
