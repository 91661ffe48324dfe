"""The concise report an agent reads: at most ~25 lines and ~2 KB, one `FAILED file:line id — reason` per
failure (ERROR for an error: a test's setup or teardown, a file that could not be collected or built, a
process that died), the labels pytest uses."""

from __future__ import annotations

from clude.harness.verdict import Failure, Status, Verdict

MAX_FAILURES = 20
MAX_LINE = 300  # characters; a longer line is cut
MAX_BYTES = 2000  # the whole report; failure lines stop before it is passed


def concise(verdict: Verdict, max_failures: int = MAX_FAILURES, max_bytes: int = MAX_BYTES) -> str:
    head = [_header(verdict)]
    if verdict.reason and verdict.status is not Status.PASSED:
        head.append(f"reason: {verdict.reason}")
    tail = [verdict.counts.summary() + ("" if verdict.counts_complete else " (incomplete: the run stopped before "
                                                                         "every test ran)")]
    if verdict.report_path:
        tail.append(f"report: {verdict.report_path}")
    head, tail = [_cut(line) for line in head], [_cut(line) for line in tail]
    more = "... and {} more failures (all of them in the report)"
    budget = max_bytes - _size(head + tail) - len(more) - 8
    shown: list[str] = []
    for failure in verdict.failures[:max_failures]:
        where = failure.file or "?"
        if failure.line:
            where += f":{failure.line}"
        line = _cut(f"{label(failure)} {where} {failure.id} — {failure.reason or failure.kind}")
        budget -= _size([line])
        if budget < 0:
            break
        shown.append(line)
    hidden = len(verdict.failures) - len(shown)
    if hidden > 0:
        shown.append(more.format(hidden))
    return "\n".join(head + shown + tail)


def label(failure: Failure) -> str:
    """FAILED for a test whose own check failed (an assertion, an expectation, a panic in the test), ERROR
    for everything else that went wrong (setup, teardown, collection, a build, a crashed process): what
    pytest prints, whichever framework ran."""
    return "FAILED" if failure.kind == "failure" else "ERROR"


def _cut(line: str) -> str:
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 3] + "..."


def _size(lines: list[str]) -> int:
    return sum(len(line.encode("utf-8")) + 1 for line in lines)


def _header(v: Verdict) -> str:
    parts = [v.status.value.upper(), v.framework, f"{v.duration_s:.2f} s"]
    if v.cached:
        parts.append("cached: tree unchanged")
    if v.sample:
        parts.append(f"sample {v.sample.selected} of {v.sample.of} tests "
                     f"(rate {v.sample.rate:g}, seed {v.sample.seed})")
    extra = [f"{n} {k}" for k, n in (("xfailed", v.counts.xfailed), ("xpassed", v.counts.xpassed)) if n]
    if extra:
        parts.append(", ".join(extra))
    return " · ".join(parts)
