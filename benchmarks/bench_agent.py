"""Agent: what clude's own loop costs per model turn, and what --parallel buys when the model is slow.

- turn overhead: a 10-step plan, 10 tool calls per step (read_file), an instant scripted model, no
  verification: wall time / model turns = clude's cost per turn (tool call, atomic state and message
  saves with fsync). Target <= 50 ms per turn, under 1% of a typical 5 s model turn.
- parallel: 4 independent steps of 3 turns on a model that takes 0.3 s a turn, in a 300-file git
  project: --parallel 4 (worktrees, snapshot, merge back) vs one after another. Target <= 0.5x.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import Figure, report

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

STEPS, TURNS = 10, 10
LATENCY_S = 0.3


def project(root: Path, files: int) -> Path:
    for i in range(files):
        path = root / f"pkg{i % 10}" / f"mod_{i:03d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"def f{j}(x):\n    return x + {j}\n\n" for j in range(20)))
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@b"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "start"]):
        subprocess.run(git + args, cwd=root, check=True, capture_output=True)
    return root


def script(steps: int, turns: int, latency: float, write: bool):
    step_re = __import__("re").compile(r"Your step now: (\S+) —")
    plan = {"title": "bench", "steps": [{"id": f"s{i}", "title": f"step {i}", "dependencies": []}
                                        for i in range(steps)]}
    counts: dict[str, int] = {}
    lock = threading.Lock()

    def reply(messages, tools):
        if str(messages[0]["content"]).startswith("You are the planner"):
            return {"text": json.dumps(plan)}
        step = step_re.search(next(m for m in messages if m["role"] == "user")["content"]).group(1)
        with lock:
            n = counts[step] = counts.get(step, 0) + 1
        if latency:
            time.sleep(latency)  # the model thinking
        if n > turns:
            return {"tool_calls": [{"name": "step_done", "arguments": {"summary": "ok"}}]}
        if write and n == 1:
            return {"tool_calls": [{"name": "write_file", "arguments": {
                "path": f"out/{step}.txt", "content": f"{step}\n"}}]}
        return {"tool_calls": [{"name": "read_file", "arguments": {
            "path": f"pkg{n % 10}/mod_{n:03d}.py", "start_line": n, "end_line": n + 5}}]}
    return reply


def timed_run(root: Path, replies, parallel: int) -> tuple[float, object]:
    from clude.agent import start_run
    from clude.config.settings import AgentConfig, Settings
    from clude.llm.scripted import ScriptedModel

    settings = Settings(agent=AgentConfig(parallel=parallel, verify="never", max_iterations=50))
    start = time.perf_counter()
    result = start_run(root, "bench", settings, ScriptedModel(replies))
    return time.perf_counter() - start, result


def main() -> list[Figure]:
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        root = project(Path(tmp) / "turns", 100)
        seconds, result = timed_run(root, script(STEPS, TURNS, 0.0, False), 1)
        assert result.status == "done", result.reason
        turns = result.usage["requests"]
        per_turn = seconds / turns * 1000
        figures.append(Figure("agent", f"clude's cost per model turn ({turns} turns, instant model)",
                              f"{per_turn:.1f} ms ({seconds:.2f} s in all)", "<= 50 ms", per_turn <= 50))
        times = {}
        for parallel in (1, 4):
            root = project(Path(tmp) / f"par{parallel}", 300)
            times[parallel], result = timed_run(root, script(4, 3, LATENCY_S, True), parallel)
            assert result.status == "done", result.reason
            assert sorted(p.name for p in (root / "out").iterdir()) == [f"s{i}.txt" for i in range(4)]
        ratio = times[4] / times[1]
        figures.append(Figure("agent", f"--parallel 4 vs 1: 4 steps x 4 turns of {LATENCY_S} s, 300-file repo",
                              f"{times[4]:.2f} s vs {times[1]:.2f} s = {ratio:.2f}x", "<= 0.5x", ratio <= 0.5))
    return figures


if __name__ == "__main__":
    sys.exit(report("agent", main()))
