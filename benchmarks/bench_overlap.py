"""Overlap-aware scheduling (issue 17): 40 tasks over a small project, 4 agents, with overlapping tasks kept
apart (`[team] overlap = "apart"`, the default) and without (`"ignore"`).

The project: 10 modules of 4 settings each (`m3.py`: `A = 0` ... `D = 0`, one line each); a task sets one
setting to 1 and names its module as the file it touches (`--files m3.py`); its acceptance test checks it.
Two tasks on one module edit neighbouring lines, so done at once they conflict when the second lands (git
merges no adjacent changes): its agent works again on the new main. The agent (a `command` backend) takes
1 s a task, a model's time. Measured: merge conflicts, agent runs and wall time per 40 tasks.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import CLUDE, PYTHON, Figure, bench_env, report

MODULES, SETTINGS, AGENTS = 10, "ABCD", 4
AGENT_S = 1.0
REAL_GIT = "git"


def task_of(n: int) -> tuple[str, str]:
    """Task n (1-based): its module and setting. Tasks 1-4 are m0's A-D, 5-8 m1's, and so on."""
    return f"m{(n - 1) // len(SETTINGS)}", SETTINGS[(n - 1) % len(SETTINGS)]


def make_project(root: Path, tasks: int, overlap: str) -> None:
    root.mkdir(parents=True)
    for m in range(MODULES):
        (root / f"m{m}.py").write_text("".join(f"{s} = 0\n" for s in SETTINGS))
    tests = root / "tests"
    tests.mkdir()
    (tests / "test_tasks.py").write_text("import importlib\n\n" + "".join(
        f"def test_task_{n:03d}():\n    assert importlib.import_module('{task_of(n)[0]}').{task_of(n)[1]} == 1\n\n\n"
        for n in range(1, tasks + 1)))
    command = json.dumps([PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider"])
    (root / "clude.toml").write_text(f"[test]\ncommand = {command}\n[team]\npoll_s = 0.5\noverlap = \"{overlap}\"\n")
    plan = {f"TASK-{n:03d}": task_of(n) for n in range(1, tasks + 1)}
    (root / "agent.py").write_text(f"import json, pathlib, re, sys, time\ntime.sleep({AGENT_S})\n"
                                   f"module, setting = {json.dumps(plan)}[sys.argv[1]]\n"
                                   "p = pathlib.Path(module + '.py')\n"
                                   "p.write_text(re.sub(rf'^{setting} = .*$', f'{setting} = 1', p.read_text(), "
                                   "flags=re.M))\n")
    git = [REAL_GIT, "-c", "user.name=b", "-c", "user.email=b@b"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "start"]):
        subprocess.run(git + args, cwd=root, check=True, capture_output=True)


def team(base: Path, tasks: int, overlap: str) -> dict:
    root = base / f"team-{overlap}"
    make_project(root, tasks, overlap)
    env = {**bench_env(), "XDG_CACHE_HOME": str(base / f"cache-{overlap}")}
    subprocess.run([CLUDE, "team", "init", "-C", str(root)], env=env, check=True, capture_output=True)
    for n in range(1, tasks + 1):
        module, setting = task_of(n)
        subprocess.run([CLUDE, "team", "task", "add", f"set {module}.{setting}", "--tests",
                        f"tests/test_tasks.py::test_task_{n:03d}", "--files", f"{module}.py", "-C", str(root)],
                       env=env, check=True, capture_output=True)
    start = time.perf_counter()
    done = subprocess.run([CLUDE, "team", "run", "--agents", str(AGENTS), "--backend", "command", "--command",
                           f"{PYTHON} {root / 'agent.py'} {{task_id}}", "--no-doctor", "--json", "-C", str(root)],
                          env=env, capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - start
    result = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
    events = [json.loads(line) for line in (root / ".clude" / "events.jsonl").read_text().splitlines() if line]
    return {"seconds": seconds, "done": result.get("counts", {}).get("done", 0),
            "conflicts": sum(e["kind"] == "conflict" for e in events),
            "runs": sum(e["kind"] == "agent_started" for e in events)}


def main(tasks: int = MODULES * len(SETTINGS)) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="clude-bench-overlap-") as folder:
        base = Path(folder)
        apart = team(base, tasks, "apart")
        ignore = team(base, tasks, "ignore")
    shown = {name: f"{r['conflicts']} conflicts, {r['runs']} agent runs, {r['seconds']:.1f} s ({r['done']} done)"
             for name, r in (("apart", apart), ("ignore", ignore))}
    return [
        Figure("overlap", f"{AGENTS} agents, {tasks} tasks on {MODULES} modules, overlap kept apart", shown["apart"],
               "fewer conflicts than without", apart["conflicts"] < ignore["conflicts"] and apart["done"] == tasks),
        Figure("overlap", f"{AGENTS} agents, {tasks} tasks on {MODULES} modules, overlap ignored", shown["ignore"],
               "(reported)", ignore["done"] == tasks),
        Figure("overlap", "wall time, apart vs ignored", f"{apart['seconds'] / ignore['seconds']:.2f}x",
               "<= 1.0x", apart["seconds"] <= ignore["seconds"]),
    ]


if __name__ == "__main__":
    sys.exit(report("overlap", main()))
