"""Shared helpers for the harness benchmarks: paths, timing, generated suites, and how results print."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
PYTHON = str(VENV / "bin" / "python")
CLUDE = str(VENV / "bin" / "clude")
SEED = "bench"


def bench_env() -> dict[str, str]:
    """The environment both sides run in: the venv active, so clude picks the same interpreter, and
    bytecode caching on as in a normal install (no PYTHONDONTWRITEBYTECODE: clude's own modules and the
    suite's rewritten test modules are compiled once, not at every start). The generated suites are
    projects with pytest alone: the pytest plugins of clude's own dev venv (hypothesis's, which
    imports hypothesis at every session's end) are not loaded, on either side."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTEST_ADDOPTS", "CLUDE_AGENT_ID", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env["VIRTUAL_ENV"] = str(VENV)
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', os.defpath)}"
    return env


def run(argv: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    """Run a command to completion; (wall seconds, the finished process with stdout as bytes)."""
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=bench_env(), capture_output=True, timeout=600)
    return time.perf_counter() - start, done


@dataclass
class Timing:
    wall: float  # median wall seconds
    cpu: float  # median user + system CPU seconds of the command and its children

    def __str__(self) -> str:
        return f"{self.wall:.3f} s"


def medians(commands: dict[str, list[str]], cwd: Path, reps: int, warmup: int = 1) -> dict[str, Timing]:
    """Median wall (and CPU) time of each command over `reps` rounds, the commands interleaved in every
    round so that drift of the machine touches all sides alike. Warm-up rounds (pyc files, disk cache)
    are not counted."""
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for i in range(warmup + reps):
        for name, argv in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            seconds, _ = run(argv, cwd)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if i >= warmup:
                wall[name].append(seconds)
                cpu[name].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return {name: Timing(statistics.median(wall[name]), statistics.median(cpu[name]))
            for name in commands}


def machine_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy since it started (/proc/stat: every state but idle
    and iowait, summed over the CPUs). A run's share is the difference across it, on an idle machine:
    unlike RUSAGE_CHILDREN it counts every process the run starts, waited for or not."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def work_body(work_ms: float) -> str:
    """Test body lines that do roughly `work_ms` of real computation (a small hash chain)."""
    if work_ms <= 0:
        return ""
    rounds = max(1, int(work_ms * ROUNDS_PER_MS))
    return (f"    h = str(n).encode()\n"
            f"    for _ in range({rounds}):\n"
            f"        h = hashlib.sha256(h).digest()\n")


def _calibrate() -> float:
    """sha256 rounds per millisecond on this machine, so `work_ms` means milliseconds here."""
    import hashlib
    n = 20000
    start = time.perf_counter()
    h = b"x"
    for _ in range(n):
        h = hashlib.sha256(h).digest()
    return n / ((time.perf_counter() - start) * 1000)


ROUNDS_PER_MS = _calibrate()


def write_suite(root: Path, files: int, tests_per_file: int, failing: int = 0,
                work_ms: float = 0.0) -> int:
    """A plain pytest suite under root/tests: `files` modules of small plain test functions, with
    `failing` of them (spread over the files) failing an assert. Returns the number of tests."""
    tests = root / "tests"
    tests.mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text("[pytest]\ntestpaths = tests\n")
    total = files * tests_per_file
    fail_every = total // failing if failing else 0
    body = work_body(work_ms)
    n = 0
    for f in range(files):
        out = ["import hashlib\n\n"]
        for t in range(tests_per_file):
            n += 1
            fails = fail_every and n % fail_every == 0 and n // fail_every <= failing
            check = f"    assert n * 2 == {n * 2 + (1 if fails else 0)}\n"
            out.append(f"def test_item_{t:03d}():\n    n = {n}\n{body}{check}\n\n")
        (tests / f"test_module_{f:02d}.py").write_text("".join(out))
    return total


@dataclass
class Figure:
    """One measured figure: what, the value, and the target it is held to."""

    benchmark: str
    measure: str
    value: str
    target: str
    met: bool

    def line(self) -> str:
        return f"  {'ok  ' if self.met else 'MISS'}  {self.measure}: {self.value}  (target {self.target})"


def report(name: str, figures: list[Figure]) -> int:
    """Print the figures of one benchmark; the exit code is 1 when any target was missed."""
    print(f"[{name}]")
    for fig in figures:
        print(fig.line())
    missed = [f for f in figures if not f.met]
    print(f"  {'all targets met' if not missed else f'{len(missed)} target(s) MISSED'}")
    return 1 if missed else 0
