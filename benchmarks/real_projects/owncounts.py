"""What a project's own test runner says it ran, read from its summary lines: pytest, unittest, TAP
(node --test, tape, tap), mocha, jest and vitest. Counts are {passed, failing, skipped, total}:
`failing` is failures and errors together, since runners draw that line in different places."""

from __future__ import annotations

import re

from clude.harness.inject.clude_events import strip_ansi


def _number(pattern: str, text: str) -> int:
    found = re.findall(pattern, text, re.M)
    return int(found[-1]) if found else 0


def _counts(passed: int, failing: int, skipped: int, total: int | None = None) -> dict[str, int]:
    return {"passed": passed, "failing": failing, "skipped": skipped,
            "total": total if total is not None else passed + failing + skipped}


def pytest_counts(text: str) -> dict[str, int]:
    """pytest's last line: "1 failed, 198 passed, 1 skipped, 3 warnings in 0.47s" (subtests aside)."""
    summary = re.compile(r"\b(passed|failed|error|errors|no tests ran)\b.* in [\d.]+s")
    lines = [ln for ln in text.splitlines() if summary.search(ln)]
    last = re.sub(r"\d+ subtests? \w+", "", lines[-1]) if lines else ""
    word = {k: _number(rf"(\d+) {k}\b", last)
            for k in ("passed", "failed", "errors?", "skipped", "xfailed", "xpassed")}
    return _counts(word["passed"] + word["xpassed"], word["failed"] + word["errors?"],
                   word["skipped"] + word["xfailed"])


def unittest_counts(text: str) -> dict[str, int]:
    """unittest: "Ran 817 tests in 2.1s" and "OK (skipped=1)" or "FAILED (failures=1, errors=2)"."""
    total = _number(r"^Ran (\d+) tests?", text)
    verdict = (re.findall(r"^(?:OK|FAILED)\b.*$", text, re.M) or [""])[-1]
    failing = _number(r"failures=(\d+)", verdict) + _number(r"errors=(\d+)", verdict) \
        + _number(r"unexpected successes=(\d+)", verdict)
    skipped = _number(r"skipped=(\d+)", verdict) + _number(r"expected failures=(\d+)", verdict)
    return _counts(total - failing - skipped, failing, skipped, total)


def tap_counts(text: str) -> dict[str, int]:
    """TAP's closing comments: "# pass 40", "# fail 1", "# skip 2", "# todo 1" (node --test, tape)."""
    passed, failing = _number(r"^# pass\s+(\d+)", text), _number(r"^# fail\s+(\d+)", text)
    skipped = _number(r"^# skip\s+(\d+)", text) + _number(r"^# todo\s+(\d+)", text)
    return _counts(passed, failing, skipped)


def mocha_counts(text: str) -> dict[str, int]:
    """mocha's spec reporter: "40 passing (12ms)", "1 failing", "2 pending"."""
    return _counts(_number(r"^\s*(\d+) passing", text), _number(r"^\s*(\d+) failing", text),
                   _number(r"^\s*(\d+) pending", text))


def jest_counts(text: str) -> dict[str, int]:
    """jest: "Tests:       1 failed, 2 skipped, 40 passed, 43 total"."""
    line = (re.findall(r"^Tests:.*$", text, re.M) or [""])[-1]
    return _counts(_number(r"(\d+) passed", line), _number(r"(\d+) failed", line),
                   _number(r"(\d+) skipped", line) + _number(r"(\d+) todo", line), _number(r"(\d+) total", line))


def vitest_counts(text: str) -> dict[str, int]:
    """vitest: "Tests  1 failed | 40 passed | 2 skipped (43)"."""
    line = (re.findall(r"^\s*Tests\s+.*$", text, re.M) or [""])[-1]
    return _counts(_number(r"(\d+) passed", line), _number(r"(\d+) failed", line),
                   _number(r"(\d+) skipped", line) + _number(r"(\d+) todo", line), _number(r"\((\d+)\)", line))


READERS = {"pytest": pytest_counts, "unittest": unittest_counts, "tap": tap_counts, "mocha": mocha_counts,
           "jest": jest_counts, "vitest": vitest_counts}


def own_counts(reader: str, text: str) -> dict[str, int]:
    return READERS[reader](strip_ansi(text))


def clude_counts(counts: dict[str, int]) -> dict[str, int]:
    """A Verdict's counts in the same terms."""
    return _counts(counts["passed"] + counts.get("xpassed", 0), counts["failed"] + counts["errors"],
                   counts["skipped"] + counts.get("xfailed", 0), counts["total"])
