"""Cache: a re-verify of an unchanged 2,000-file git tree returns the cached Verdict; a one-byte change
to any file makes the next run a miss.

Targets: the whole cached `clude test` command <= 0.3 s wall; every one-byte change is a miss (the tests
really run). Also shown: the in-process `run_tests` call on a hit, and clude's start-up alone.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import CLUDE, PYTHON, Figure, bench_env, medians, report, run, write_suite

FILES = 2000
REPS = 10


def write_tree(root: Path) -> list[str]:
    """A committed git repository of FILES source files in 40 packages, plus a 20-test suite."""
    rng = random.Random(3)
    paths = []
    for i in range(FILES):
        rel = f"src/pkg{i % 40:02d}/mod_{i:04d}.py"
        body = "".join(f"def f{j}(x):\n    return x * {rng.randint(1, 999)} + {j}\n\n"
                       for j in range(rng.randint(5, 60)))
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f'"""Module {i}."""\n\n{body}')
        paths.append(rel)
    write_suite(root, files=2, tests_per_file=10)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "tree"]):
        subprocess.run(git + argv, cwd=root, check=True, env=bench_env())
    return paths


def cached(root: Path) -> bool:
    _, done = run([CLUDE, "test"], root)
    return "cached: tree unchanged" in done.stdout.decode().splitlines()[0]


def in_process_hit(root: Path) -> float:
    """Median seconds of run_tests on a cache hit, in this process (clude already imported)."""
    from clude.config import load_settings
    from clude.harness import run_tests
    settings, _ = load_settings(root)
    times = []
    for _ in range(REPS):
        start = time.perf_counter()
        verdict = run_tests(root, settings.test, env=bench_env())
        times.append(time.perf_counter() - start)
        assert verdict.cached, "in-process run_tests missed the cache"
    return statistics.median(times)


def one_byte_misses(root: Path, paths: list[str]) -> list[str]:
    """Flip one byte in a few files (sources, a test, the config); the run after each must be a miss."""
    wrong = []
    for rel in [paths[0], paths[len(paths) // 2], paths[-1], "tests/test_module_00.py", "pytest.ini"]:
        path = root / rel
        data = path.read_bytes()
        path.write_bytes(data[:-1] + (b" " if data[-1:] != b" " else b"\n"))
        if cached(root):
            wrong.append(rel)
        path.write_bytes(data)
    return wrong


def main() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="clude-bench-cache-") as tmp, \
            tempfile.TemporaryDirectory(prefix="clude-bench-verdicts-") as verdicts:
        os.environ["CLUDE_CACHE_DIR"] = verdicts  # a cache of its own: an earlier run's verdicts never answer
        root = Path(tmp)
        paths = write_tree(root)
        assert not cached(root), "the first run of a fresh tree was a hit"
        assert cached(root), "the second run of an unchanged tree was not a hit"
        t = medians({"hit": [CLUDE, "test"], "startup": [CLUDE, "--version"],
                     "python": [PYTHON, "-c", "pass"]}, root, REPS)
        inproc = in_process_hit(root)
        from clude.harness.cache import tree_digest
        start = time.perf_counter()
        tree_digest(root)
        digest_s = time.perf_counter() - start
        misses = one_byte_misses(root, paths)
    print(f"  (for scale: clude --version {t['startup'].wall:.3f} s, bare python {t['python'].wall:.3f} s, "
          f"in-process tree hash of {FILES + 3} files {digest_s:.3f} s)")
    hit = t["hit"]
    return [
        Figure("cache", f"cached clude test, {FILES}-file git tree (whole command, wall)",
               f"{hit.wall:.3f} s (CPU {hit.cpu:.3f} s; clude --version alone {t['startup'].wall:.3f} s)",
               "<= 0.300 s", hit.wall <= 0.3),
        Figure("cache", "in-process run_tests on a hit", f"{inproc:.3f} s", "(reported)", True),
        Figure("cache", "one-byte change to a file gives a miss",
               f"{5 - len(misses)} of 5 files" + (f" (hit after changing {misses})" if misses else ""),
               "5 of 5", not misses),
    ]


if __name__ == "__main__":
    sys.exit(report("cache", main()))
