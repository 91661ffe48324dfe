"""The test harness: runs a project's tests and returns a Verdict every agent can trust (docs/harness.md)."""

from clude.lazy import lazy_attributes

_WHERE = {"run_tests": "runner", "concise": "report", "compare": "compare",
          "Comparison": "compare", "Counts": "verdict", "Failure": "verdict", "Verdict": "verdict",
          "Status": "status", "EXIT_CODES": "status"}
__all__ = list(_WHERE)
__getattr__ = lazy_attributes(__name__, _WHERE)
