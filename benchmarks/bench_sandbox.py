"""Sandbox: what bubblewrap costs per agent start and per test run.

- agent start: the command a worker starts for an agent (`python -c pass`, the shortest agent there is)
  through run_group, with the worker's whole sandbox (a work tree writable, the project, the upstream and
  the worker's folder hidden, credentials hidden, the program bound back) against the same start without
  it; interleaved, median of 30. Target <= 50 ms added per start.
- test run: run_tests on a 200-test pytest project (no cache), sandboxed (the tree writable, its .git
  read-only, the state folder hidden) against bare; interleaved, median of 7. Reported as the ratio and
  the time added. The same on 2,000 tests in 40 modules, and a sandboxed run whose test modules pytest
  rewrites itself: what every run paid before clude rewrote them once a machine (harness/rewrites.py).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Figure, bench_env, report, write_suite

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from clude.config.settings import SandboxConfig, TestConfig  # noqa: E402
from clude.harness.process import run_group  # noqa: E402
from clude.harness.runner import run_tests  # noqa: E402
from clude.sandbox import Sandbox, allowed_env  # noqa: E402

STARTS, RUNS = 30, 7


def _starts(sandbox: Sandbox, base: Path) -> dict[str, float]:
    project, work = base / "project", base / "project" / ".clude" / "agents" / "a1" / "work"
    work.mkdir(parents=True)
    upstream = base / "upstream.git"
    upstream.mkdir()
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    argv = [sys.executable, "-c", "pass"]
    times: dict[str, list[float]] = {"bare": [], "sandbox": []}
    for i in range(STARTS + 2):
        for name in times:
            command, run_env = (sandbox.command(argv, cwd=work, env=env, writable=[work], as_pid_1=True,
                                                hidden=[project, upstream, work.parent])
                                if name == "sandbox" else (argv, env))
            start = time.perf_counter()
            done = run_group(command, work, run_env, base / "out.log", 60)
            elapsed = time.perf_counter() - start
            assert done.exit_code == 0, (base / "out.log").read_text()
            if i >= 2:
                times[name].append(elapsed)
    return {name: statistics.median(values) for name, values in times.items()}


def _runs(sandbox: Sandbox, base: Path, files: int, tests_per_file: int, runs: int) -> dict[str, float]:
    """Median seconds of run_tests on one suite: bare, sandboxed, and sandboxed "rewriting": on a
    project that turns on pytest's assertion pass hook, whose test modules clude leaves pytest to rewrite
    at every run, as every sandboxed run did before (no test run writes bytecode). Each on a copy of its
    own."""
    sides = ("bare", "sandbox", "rewriting")
    for name in sides:
        write_suite(base / name, files=files, tests_per_file=tests_per_file)
        if name == "rewriting":
            (base / name / "pytest.ini").write_text("[pytest]\ntestpaths = tests\nenable_assertion_pass_hook = true\n")
        subprocess.run(["git", "init", "-q"], cwd=base / name, check=True)
    env = allowed_env(bench_env())
    config = TestConfig(command=[sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"])
    times: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(runs + 1):
        for name in sides:
            start = time.perf_counter()
            verdict = run_tests(base / name, config, use_cache=False, state_dir=base / "state",
                                env=env, sandbox=None if name == "bare" else sandbox)
            elapsed = time.perf_counter() - start
            assert verdict.status.value == "passed", verdict.reason
            if i >= 1:
                times[name].append(elapsed)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> list[Figure]:
    sandbox = Sandbox.from_config(SandboxConfig())
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="clude-bench-sandbox-") as folder:
        starts = _starts(sandbox, Path(folder))
        runs = _runs(sandbox, Path(folder) / "small", files=10, tests_per_file=20, runs=RUNS)
        big = _runs(sandbox, Path(folder) / "big", files=40, tests_per_file=50, runs=5)
    added = (starts["sandbox"] - starts["bare"]) * 1000
    figures = [
        Figure("sandbox", "added per agent start (python -c pass, median of 30)",
               f"{starts['sandbox'] * 1000:.1f} ms vs {starts['bare'] * 1000:.1f} ms = {added:+.1f} ms",
               "<= 50 ms", added <= 50),
        Figure("sandbox", "a 200-test pytest run, sandboxed vs bare (median of 7)",
               f"{runs['sandbox']:.3f} s vs {runs['bare']:.3f} s = {runs['sandbox'] / runs['bare']:.2f}x "
               f"({(runs['sandbox'] - runs['bare']) * 1000:+.0f} ms)", "(reported)", True),
        Figure("sandbox", "2,000 tests in 40 modules, sandboxed vs bare; sandboxed with pytest rewriting the "
               "modules at every run (median of 5)",
               f"{big['sandbox']:.2f} s vs {big['bare']:.2f} s = {big['sandbox'] / big['bare']:.2f}x; "
               f"rewriting {big['rewriting']:.2f} s", "(reported)", True),
    ]
    return figures


if __name__ == "__main__":
    sys.exit(report("sandbox", main()))
