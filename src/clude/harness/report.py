"""The concise report an agent reads: at most ~25 lines, one `ERROR file:line id — reason` per failure."""

from __future__ import annotations

from clude.harness.verdict import Status, Verdict

MAX_FAILURES = 20
MAX_LINE = 400


def concise(verdict: Verdict, max_failures: int = MAX_FAILURES) -> str:
    lines = [_header(verdict)]
    if verdict.reason and verdict.status is not Status.PASSED:
        lines.append(f"reason: {verdict.reason}")
    for failure in verdict.failures[:max_failures]:
        where = failure.file or "?"
        if failure.line:
            where += f":{failure.line}"
        lines.append(f"ERROR {where} {failure.id} — {failure.reason or failure.kind}")
    hidden = len(verdict.failures) - max_failures
    if hidden > 0:
        lines.append(f"... and {hidden} more failures (all of them in the report)")
    lines.append(verdict.counts.summary())
    if verdict.report_path:
        lines.append(f"report: {verdict.report_path}")
    return "\n".join(line if len(line) <= MAX_LINE else line[: MAX_LINE - 3] + "..."
                     for line in lines)


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
