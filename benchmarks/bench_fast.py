"""Fast: `clude test --fast 0.1 --no-cache` against the full `clude test --no-cache` of one suite.

The suite has 2,000 tests in 40 files, each doing ~1.5 ms of real computation (a sha256 chain), so that,
as on a real suite, running fewer tests saves time; collection and start-up are paid in full either way.
Target: the 10 % sample takes <= 0.2x the wall time of the full run.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from common import CLUDE, PYTHON, SEED, Figure, medians, report, run, write_suite

REPS = 5
WORK_MS = 1.5


def main() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="clude-bench-fast-") as tmp:
        root = Path(tmp)
        total = write_suite(root, files=40, tests_per_file=50, failing=5, work_ms=WORK_MS)
        fast = [CLUDE, "test", "--fast", "0.1", "--seed", SEED, "--no-cache"]
        t = medians({"full": [CLUDE, "test", "--no-cache"], "fast": fast,
                     "startup": [CLUDE, "--version"],
                     "collect": [PYTHON, "-m", "pytest", "--collect-only", "-q"]}, root, REPS)
        header = run(fast, root)[1].stdout.decode().splitlines()[0]
    fixed = t["startup"].wall + t["collect"].wall
    print(f"  ({header})\n  (for scale: clude start-up {t['startup'].wall:.2f} s + pytest start-up "
          f"and a full collection of {total} tests {t['collect'].wall:.2f} s = {fixed:.2f} s, "
          f"{fixed / t['full'].wall:.2f}x of the full run; a sampled run builds only the sampled tests)")
    fast_t, full_t = t["fast"], t["full"]
    ratio = fast_t.wall / full_t.wall
    return [Figure("fast", f"clude test --fast 0.1 vs full run, {total} tests of ~{WORK_MS} ms (wall)",
                   f"{fast_t.wall:.2f} s vs {full_t.wall:.2f} s = {ratio:.2f}x "
                   f"(CPU {fast_t.cpu:.2f} s vs {full_t.cpu:.2f} s)", "<= 0.20x", ratio <= 0.20)]


if __name__ == "__main__":
    sys.exit(report("fast", main()))
