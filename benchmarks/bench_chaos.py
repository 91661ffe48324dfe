"""Unattended under faults: `clude team run` of 200 tasks with 8 agents against a `git daemon` upstream,
with the seeded fault mix of chaos/chaos.py (crashes mid-task, hangs past the timeout, 429 bursts on
one worker, a keyless worker, a worker SIGKILLed every minute, two impossible tasks, a task whose agent
always dies at start, a change that breaks a passing test, a flaky test, the upstream unreachable for
20 s), then the same seed without faults. Prints every task's end and whether the invariants hold;
targets (issue 13): every invariant, wall time <= 1.5x the fault-free run. `make chaos` runs it;
`--tasks 40 --agents 4` is the smaller run the test suite makes (tests/test_chaos.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from common import CLUDE, PYTHON, Figure, bench_env, report

sys.path.insert(0, str(Path(__file__).resolve().parent / "chaos"))
from chaos import run_chaos  # noqa: E402  (a folder of its own, beside this script)


def main(tasks: int = 200, agents: int = 8, seed: int = 13) -> list[Figure]:
    runs = {}
    for faults in (True, False):
        with tempfile.TemporaryDirectory(prefix="clude-chaos-") as folder:
            runs[faults] = run_chaos(Path(folder), tasks=tasks, agents=agents, seed=seed, faults=faults,
                                     kill_every_s=60, outage_at_s=30, outage_s=20, python=PYTHON,
                                     clude=[CLUDE], env=bench_env())
    chaos, calm = runs[True], runs[False]
    print(chaos.table())
    for agent, worker in sorted(chaos.workers.items()):
        print(f"worker {agent}: {worker.get('state')} ({worker.get('restarts', 0)} restarts) "
              f"{worker.get('reason', '')}")
    ratio = chaos.seconds / calm.seconds
    broken = chaos.broken()
    charged = sum(len(v) for v in chaos.charged.values())
    return [
        Figure("chaos", f"{tasks} tasks, {agents} agents, seed {seed}: end of every task",
               f"{chaos.counts.get('done', 0)} done, {chaos.counts.get('failed', 0)} failed (impossible: "
               f"{len(chaos.plan.impossible)}), {chaos.counts.get('blocked', 0)} blocked; {len(chaos.done_twice)} "
               f"done twice; {chaos.kills} workers killed; upstream down {chaos.outage_s:g} s",
               "every task settled, for its reason", not broken),
        Figure("chaos", "attempts charged", f"{charged} ({len(chaos.unexplained)} with no task fault behind "
               f"them; {len(chaos.double_flakes)} the flaky test failing twice in a row)",
               "only task faults", not chaos.unexplained),
        Figure("chaos", "wall time under faults vs the same seed without",
               f"{chaos.seconds:.0f} s vs {calm.seconds:.0f} s = {ratio:.2f}x", "<= 1.5x", ratio <= 1.5),
        *([Figure("chaos", "broken invariants", "; ".join(broken)[:300], "none", False)] if broken else []),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    sys.exit(report("chaos", main(args.tasks, args.agents, args.seed)))
