"""Runs every harness benchmark and rewrites the figures table in docs/benchmarks.md (`make bench`).

Exits non-zero when any target is missed or a benchmark fails to run.
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_agent  # noqa: E402
import bench_cache  # noqa: E402
import bench_fast  # noqa: E402
import bench_feedback  # noqa: E402
import bench_overhead  # noqa: E402
import bench_overlap  # noqa: E402
import bench_sandbox  # noqa: E402
import bench_team  # noqa: E402
from common import ROOT, Figure, report  # noqa: E402

BENCHMARKS = {"overhead": bench_overhead, "feedback": bench_feedback, "fast": bench_fast,
              "cache": bench_cache, "agent": bench_agent, "sandbox": bench_sandbox, "team": bench_team,
              "overlap": bench_overlap}
DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- figures:start -->", "<!-- figures:end -->"


def machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} CPUs (nproc), Python {platform.python_version()}, "
            f"{platform.system()} {platform.machine()}, load average at start {load}, "
            f"{datetime.date.today().isoformat()}")


def table(figures: list[Figure], where: str) -> str:
    rows = ["| benchmark | measure | figure | target | met |", "|---|---|---|---|---|"]
    rows += [f"| {f.benchmark} | {f.measure} | {f.value} | {f.target} | {'yes' if f.met else '**no**'} |"
             for f in figures]
    return f"Machine: {where}\n\n" + "\n".join(rows)


def write_doc(text: str) -> None:
    doc = DOC.read_text(encoding="utf-8")
    head, rest = doc.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{START}\n{text}\n{END}{tail}", encoding="utf-8")


def main() -> int:
    where = machine()
    print(f"machine: {where}")
    figures: list[Figure] = []
    code = 0
    for name, module in BENCHMARKS.items():
        try:
            found = module.main()
        except Exception as exc:  # a broken benchmark is a missed target, not a crash of the rest
            traceback.print_exc()
            found = [Figure(name, "benchmark ran", f"failed: {type(exc).__name__}: {exc}", "runs", False)]
        code |= report(name, found)
        figures += found
    write_doc(table(figures, where))
    print(f"figures written to {DOC.relative_to(ROOT)}")
    return code


if __name__ == "__main__":
    sys.exit(main())
