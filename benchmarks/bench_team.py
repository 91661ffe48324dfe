"""Team throughput: `clude team run` with 1, 4 and 8 agents against the floor — the same tasks done by
hand with the least git possible (per task: a claim push, the acceptance test, the whole suite once, a
landing push).

The project: a one-second suite (40 tests of 25 ms) plus one acceptance test per task, which passes once
the task's file exists; the agent (a `command` backend) writes that file at once. Measured: wall time,
whole-suite runs per task (from the workers' reports) and git processes per task (a counting `git` first
on PATH; the agents' own git is not counted). The same with agents that take 2 s a task (a model's time:
the machine idle meanwhile). Targets (issue 12): 1 agent <= 1.3x the floor, 4 agents <= 0.35x one agent,
whole-suite runs per task <= 1.2. `--tasks 200` adds 1 and 8 agents on 200 tasks, instant and slow
(<= 0.2x), which takes about twelve minutes. The CPU time is the machine's across each run (/proc/stat), so
the machine must be idle; the least time its CPUs allow a run is shown beside each ratio. With
$CLUDE_BENCH_KEEP set to a folder, each run's .clude (events, worker logs, reports; not the clones) is
copied there, named with its time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import CLUDE, PYTHON, Figure, bench_env, machine_cpu_s, report

SUITE_TESTS, TEST_S = 40, 0.025
AGENT_S = 2.0  # the slow agents' time per task (a model thinking, not the machine working)
REAL_GIT = shutil.which("git") or "/usr/bin/git"
KEEP_VAR = "CLUDE_BENCH_KEEP"  # a folder: each run's .clude (events, worker logs, reports) is copied there


def make_project(root: Path, tasks: int) -> None:
    tests = root / "tests"
    tests.mkdir(parents=True)
    (tests / "test_suite.py").write_text("import time\n\n" + "".join(
        f"def test_{i:02d}():\n    time.sleep({TEST_S})\n\n\n" for i in range(SUITE_TESTS)))
    (tests / "test_tasks.py").write_text("import pathlib\n\n" + "".join(
        f"def test_task_{n:03d}():\n    assert pathlib.Path('done/TASK-{n:03d}.txt').exists()\n\n\n"
        for n in range(1, tasks + 1)))
    command = json.dumps([PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider"])
    (root / "clude.toml").write_text(f"[test]\ncommand = {command}\n[team]\npoll_s = 0.5\n")
    for name, delay in (("agent.py", 0), ("slow_agent.py", AGENT_S)):
        (root / name).write_text(f"import pathlib, sys, time\ntime.sleep({delay})\n"
                                 "pathlib.Path('done').mkdir(exist_ok=True)\n"
                                 "pathlib.Path('done', sys.argv[1] + '.txt').write_text('ok')\n")
    git = [REAL_GIT, "-c", "user.name=b", "-c", "user.email=b@b"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "start"]):
        subprocess.run(git + args, cwd=root, check=True, capture_output=True)


def counting_git(folder: Path) -> tuple[Path, Path]:
    """A `git` that counts its calls (a line each in the counter) and runs the real one."""
    folder.mkdir()
    counter = folder / "calls"
    shim = folder / "git"
    shim.write_text(f"#!/bin/sh\necho >> {counter} 2>/dev/null\nexec {REAL_GIT} \"$@\"\n")
    shim.chmod(0o755)
    return folder, counter


def floor(base: Path, tasks: int) -> float:
    """The least git: a clone; per task a claim commit pushed, the agent, the acceptance test, the whole
    suite once, a landing commit pushed."""
    root = base / "floor"
    make_project(root, tasks)
    upstream = base / "floor.git"
    subprocess.run([REAL_GIT, "clone", "-q", "--bare", str(root), str(upstream)], check=True)
    work = base / "floor-work"
    subprocess.run([REAL_GIT, "clone", "-q", str(upstream), str(work)], check=True)
    git = [REAL_GIT, "-C", str(work), "-c", "user.name=b", "-c", "user.email=b@b"]
    pytest = [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    env = bench_env()
    start = time.perf_counter()
    for n in range(1, tasks + 1):
        task = f"TASK-{n:03d}"
        lock = work / "current_tasks" / f"{task}.lock"
        lock.parent.mkdir(exist_ok=True)
        lock.write_text("me")
        subprocess.run(git + ["add", "-A"], check=True)
        subprocess.run(git + ["commit", "-qm", f"claim {task}"], check=True)
        subprocess.run(git + ["push", "-q", "origin", "HEAD:main"], check=True)
        subprocess.run([PYTHON, str(work / "agent.py"), task], cwd=work, check=True)
        subprocess.run(pytest + [f"tests/test_tasks.py::test_task_{n:03d}"], cwd=work, env=env,
                       capture_output=True, check=True)
        subprocess.run(pytest, cwd=work, env=env, capture_output=True)
        lock.unlink()
        subprocess.run(git + ["add", "-A"], check=True)
        subprocess.run(git + ["commit", "-qm", f"done {task}"], check=True)
        subprocess.run(git + ["push", "-q", "origin", "HEAD:main"], check=True)
    return time.perf_counter() - start


def team(base: Path, tasks: int, agents: int, agent: str = "agent.py") -> dict:
    """One `clude team run` of `agents` workers over `tasks` tasks: wall time, CPU time (the machine's,
    across the run: every process it started), suite runs and git calls."""
    root = base / f"team-{agents}-{tasks}-{agent[:-3]}"
    make_project(root, tasks)
    env = {**bench_env(), "XDG_CACHE_HOME": str(base / f"cache-{agents}-{tasks}-{agent[:-3]}")}  # shared by none
    subprocess.run([CLUDE, "team", "init", "-C", str(root)], env=env, check=True, capture_output=True)
    for n in range(1, tasks + 1):
        subprocess.run([CLUDE, "team", "task", "add", f"task {n}", "--tests",
                        f"tests/test_tasks.py::test_task_{n:03d}", "-C", str(root)], env=env, check=True,
                       capture_output=True)
    shims, counter = counting_git(base / f"git-{agents}-{tasks}-{agent[:-3]}")
    env["PATH"] = f"{shims}{os.pathsep}{env['PATH']}"
    start, cpu = time.perf_counter(), machine_cpu_s()
    done = subprocess.run([CLUDE, "team", "run", "--agents", str(agents), "--backend", "command", "--command",
                           f"{PYTHON} {root / agent} {{task_id}}", "--no-doctor", "--json", "-C", str(root)],
                          env=env, capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - start
    cpu_s = machine_cpu_s() - cpu
    result = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
    if os.environ.get(KEEP_VAR):  # the run's logs kept past the temp folder, to look into an odd run
        shutil.copytree(root / ".clude", Path(os.environ[KEEP_VAR]) / f"{root.name}-{seconds:.1f}s",
                        ignore=shutil.ignore_patterns("work", "land", "control", "lander", "*.git"),
                        dirs_exist_ok=True)
    whole = 0
    for verdict in root.glob(".clude/agents/*/harness*/reports/*/verdict.json"):
        command = json.loads(verdict.read_text()).get("command") or []
        whole += not any("::" in word for word in command)
    calls = counter.read_text().count("\n") if counter.exists() else 0
    return {"seconds": seconds, "done": result.get("counts", {}).get("done", 0), "suite_runs": whole / tasks,
            "git_per_task": calls / tasks, "cpu_s": cpu_s}


def scaling(name: str, runs: dict[int, dict], tasks: int) -> list[Figure]:
    """N agents against one, on the same tasks. Beside each, the CPU the run kept busy, and the least
    time this machine's CPUs allow it: its CPU time spread over every core without a moment lost."""
    one, cores = runs[1], os.cpu_count() or 1
    busy = one["cpu_s"] / one["seconds"]
    out = [Figure("team", f"{name}: 1 agent, {tasks} tasks", f"{one['seconds']:.1f} s, CPU {one['cpu_s']:.1f} s "
                  f"({busy:.2f} of {cores} cores busy)", "(reported)", one["done"] == tasks)]
    for n, target in ((4, 0.35), (8, None)):
        ratio = runs[n]["seconds"] / one["seconds"]
        least = runs[n]["cpu_s"] / cores
        out.append(Figure("team", f"{name}: {n} agents vs 1 agent, {tasks} tasks",
                          f"{runs[n]['seconds']:.1f} s = {ratio:.2f}x ({runs[n]['done']} done; CPU "
                          f"{runs[n]['cpu_s']:.1f} s: on {cores} cores no less than {least:.1f} s = "
                          f"{least / one['seconds']:.2f}x)", f"<= {target}x" if target else "(reported)",
                          (target is None or ratio <= target) and runs[n]["done"] == tasks))
    return out


def main(big: bool = False) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="clude-bench-team-") as folder:
        base = Path(folder)
        tasks = 20
        bottom = floor(base, tasks)
        runs = {n: team(base, tasks, n) for n in (1, 4, 8)}
        slow = {n: team(base, tasks, n, "slow_agent.py") for n in (1, 4, 8)}
        large = {(n, agent): team(base, 200, n, agent) for agent in ("agent.py", "slow_agent.py") for n in (1, 8)
                 } if big else {}
    one = runs[1]["seconds"]
    every = [*runs.values(), *slow.values()]
    figures = [
        Figure("team", f"floor: {tasks} tasks by hand, least git, one-second suite", f"{bottom:.1f} s",
               "(reported)", True),
        Figure("team", f"1 agent, {tasks} tasks vs the floor", f"{one:.1f} s = {one / bottom:.2f}x "
               f"({runs[1]['done']} done)", "<= 1.3x", one / bottom <= 1.3 and runs[1]["done"] == tasks),
        *scaling("instant agents", runs, tasks),
        *scaling(f"agents of {AGENT_S:g} s", slow, tasks),
        Figure("team", "whole-suite runs per task (1 / 4 / 8 agents; instant, then slow)",
               " / ".join(f"{r['suite_runs']:.2f}" for r in every), "<= 1.2",
               all(r["suite_runs"] <= 1.2 for r in every)),
        Figure("team", "git processes per task (1 / 4 / 8 agents; instant, then slow)",
               " / ".join(f"{r['git_per_task']:.1f}" for r in every), "<= 12",
               all(r["git_per_task"] <= 12 for r in every)),
    ]
    cores = os.cpu_count() or 1
    kinds = (("agent.py", "instant agents"), ("slow_agent.py", f"agents of {AGENT_S:g} s")) if large else ()
    for agent, name in kinds:
        one_l, eight = large[(1, agent)], large[(8, agent)]
        ratio, least = eight["seconds"] / one_l["seconds"], eight["cpu_s"] / cores
        figures.append(Figure("team", f"{name}: 8 agents vs 1 agent, 200 tasks",
                              f"{eight['seconds']:.0f} s vs {one_l['seconds']:.0f} s = {ratio:.2f}x (CPU "
                              f"{eight['cpu_s']:.0f} s vs {one_l['cpu_s']:.0f} s: on {cores} cores no less than "
                              f"{least:.0f} s = {least / one_l['seconds']:.2f}x)", "<= 0.2x",
                              ratio <= 0.2 and eight["done"] == 200 and one_l["done"] == 200))
    if large:
        figures.append(Figure("team", "git processes per task, 200 tasks (1 / 8 agents; instant, then slow)",
                              " / ".join(f"{r['git_per_task']:.1f}" for r in large.values()), "<= 12",
                              all(r["git_per_task"] <= 12 for r in large.values())))
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, choices=(20, 200), default=20)
    sys.exit(report("team", main(big=parser.parse_args().tasks == 200)))
