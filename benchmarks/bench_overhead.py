"""Overhead: `clude test --no-cache` against bare `python -m pytest -q` on a 2,000-test suite.

Target: clude <= 1.10 x bare + 0.3 s (the fixed part is clude's own start-up and bookkeeping).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from common import CLUDE, PYTHON, Figure, medians, report, write_suite

REPS = 5


def main() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="clude-bench-overhead-") as tmp:
        root = Path(tmp)
        total = write_suite(root, files=40, tests_per_file=50, failing=5)
        t = medians({"bare": [PYTHON, "-m", "pytest", "-q"],
                     "clude": [CLUDE, "test", "--no-cache"]}, root, REPS)
    clude, bare = t["clude"], t["bare"]
    limit = 1.10 * bare.wall + 0.3
    return [Figure("overhead", f"clude test --no-cache vs pytest -q, {total} tests (wall)",
                   f"{clude.wall:.2f} s vs {bare.wall:.2f} s = {clude.wall / bare.wall:.2f}x "
                   f"(+{clude.wall - bare.wall:.2f} s; CPU {clude.cpu:.2f} s vs {bare.cpu:.2f} s)",
                   f"<= 1.10x bare + 0.3 s = {limit:.2f} s", clude.wall <= limit)]


if __name__ == "__main__":
    sys.exit(report("overhead", main()))
