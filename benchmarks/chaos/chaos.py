"""A team run under injected faults, and what must hold after it.

`run_chaos()` makes a project of N tasks (each done when its agent writes done/TASK.txt) over a small
suite with a flaky test (fails 10% of runs) and a test one planned change breaks; serves its upstream
with `git daemon`; runs `clude team run` with `command` agents (agent.py) driven by a seeded fault
plan; meanwhile SIGKILLs a worker every `kill_every_s` and stops the git daemon for `outage_s`. Then
it reads the upstream and the events and checks the invariants (`Outcome.broken()`):

- every task is done, failed or blocked (none open or held), and none was done twice;
- the failed tasks are exactly the impossible ones; the blocked one is the task whose agent always
  dies at start;
- every charged attempt (a failure record) has a task fault behind it: a planned crash, hang or
  breaking change, an impossible task, or the flaky test failing twice in a row (told apart);
- the keyless worker is blocked with its reason; no worker else is.

The fault plan: the agent of worker `keyless` always says its key is missing; that of worker `limited`
answers 429 with a retry-after during a burst of `burst_s` every `burst_every_s`; of the others, on
attempts 1 and 2 only (attempt 3 is always clean, so only the impossible tasks can fail), 5% crash
mid-task (a file written, then SIGKILL) and 3% hang past the agent timeout; one task's first attempt
also breaks a passing test; two tasks can never pass; one task's agent always dies at start.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
AGENT = HERE / "agent.py"
FLAKY_RATE = 0.1
SUITE_TESTS = 12


@dataclass
class Plan:
    tasks: list[str]
    agents: list[str]
    impossible: list[str]
    poisoned: str
    breaker: str
    faults: dict[str, str]          # "TASK/attempt" -> crash | hang | break
    keyless: str
    limited: str
    timeout_s: float
    burst_every_s: float = 20.0
    burst_s: float = 4.0
    retry_after_s: float = 2.0

    def data(self) -> dict:
        return {"keyless": self.keyless, "limited": self.limited, "poisoned": self.poisoned,
                "faults": self.faults, "timeout_s": self.timeout_s, "burst_every_s": self.burst_every_s,
                "burst_s": self.burst_s, "retry_after_s": self.retry_after_s}


def make_plan(tasks: int, agents: int, seed: int, *, faults: bool, timeout_s: float) -> Plan:
    """The seeded fault plan (faults=False: the same tasks and workers, nothing goes wrong)."""
    rng = random.Random(seed)
    ids = [f"TASK-{n:03d}" for n in range(1, tasks + 1)]
    workers = [f"a{n}" for n in range(1, agents + 1)]
    if not faults:
        return Plan(ids, workers, [], "", "", {}, "", "", timeout_s)
    special = rng.sample(ids, 4)
    impossible, poisoned, breaker = special[:2], special[2], special[3]
    planned: dict[str, str] = {f"{breaker}/1": "break"}
    for task in ids:
        if task in special:
            continue
        for attempt in (1, 2):
            draw = rng.random()
            if draw < 0.05:
                planned[f"{task}/{attempt}"] = "crash"
            elif draw < 0.08:
                planned[f"{task}/{attempt}"] = "hang"
    return Plan(ids, workers, impossible, poisoned, breaker, planned, keyless=workers[1],
                limited=workers[2], timeout_s=timeout_s)


def make_project(root: Path, plan: Plan, python: str) -> None:
    tests = root / "tests"
    tests.mkdir(parents=True)
    (root / "base.txt").write_text("ok\n")
    (tests / "test_suite.py").write_text(
        "import os\nimport pathlib\n\n\n"
        "def test_base():\n    assert pathlib.Path('base.txt').read_text() == 'ok\\n'\n\n\n"
        f"def test_flaky():\n    assert int.from_bytes(os.urandom(2), 'big') >= {int(FLAKY_RATE * 65536)}\n\n\n"
        + "".join(f"def test_{i:02d}():\n    assert {i} + 1 == {i + 1}\n\n\n" for i in range(SUITE_TESTS)))
    body = "import pathlib\n\n\n"
    for task in plan.tasks:
        name = task.replace("-", "_").lower()
        if task in plan.impossible:
            body += f"def test_{name}():\n    assert pathlib.Path('done/{task}.txt').read_text() == 'never'\n\n\n"
        else:
            body += f"def test_{name}():\n    assert pathlib.Path('done/{task}.txt').exists()\n\n\n"
    (tests / "test_tasks.py").write_text(body)
    command = json.dumps([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"])
    (root / "clude.toml").write_text(
        f"[test]\ncommand = {command}\n[team]\npoll_s = 0.5\nlease_s = 8\nheartbeat_s = 1\nrestart_s = 0.5\n"
        f"restart_cap_s = 4\nagent_timeout_s = {plan.timeout_s}\n")
    git = ["git", "-c", "user.name=chaos", "-c", "user.email=chaos@localhost"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "start"]):
        subprocess.run(git + args, cwd=root, check=True, capture_output=True)


class Daemon:
    """`git daemon` serving `base` on one port, stopped and started again on the same port."""

    def __init__(self, base: Path):
        self.base = base
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"git://127.0.0.1:{self.port}/"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["git", "daemon", "--export-all", "--enable=receive-pack", "--informative-errors", "--reuseaddr",
             f"--base-path={self.base}", "--listen=127.0.0.1", f"--port={self.port}", str(self.base)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            done = subprocess.run(["git", "ls-remote", self.url + "up.git"], capture_output=True, timeout=5)
            if done.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("git daemon did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@dataclass
class Outcome:
    plan: Plan
    seconds: float
    states: dict[str, str]                  # task -> status
    reasons: dict[str, str]                 # task -> blocked reason
    done_twice: list[str]
    charged: dict[str, list[str]]           # task -> the reasons of its failure records
    unexplained: list[str]                  # charged attempts with no task fault behind them
    double_flakes: list[str]                # charged attempts where only the flaky test failed (twice)
    workers: dict[str, dict]
    kills: int
    outage_s: float
    counts: dict[str, int] = field(default_factory=dict)
    stopped: str = ""                       # why `team run` ended, as it said
    said: str = ""                          # the end of what `team run` printed on stderr

    def broken(self) -> list[str]:
        """The invariants that do not hold (empty: all hold)."""
        out = []
        left = sorted(t for t, s in self.states.items() if s not in ("done", "failed", "blocked"))
        if left:
            out.append(f"tasks not settled: {left}")
        if self.done_twice:
            out.append(f"done twice: {self.done_twice}")
        failed = sorted(t for t, s in self.states.items() if s == "failed")
        if failed != sorted(self.plan.impossible):
            out.append(f"failed {failed}, expected the impossible ones {sorted(self.plan.impossible)}")
        blocked = sorted(t for t, s in self.states.items() if s == "blocked")
        if blocked != sorted([self.plan.poisoned] if self.plan.poisoned else []):
            out.append(f"blocked {blocked}, expected {self.plan.poisoned or 'none'}")
        if self.unexplained:
            out.append(f"attempts charged with no task fault behind them: {self.unexplained}")
        stuck = sorted(a for a, w in self.workers.items() if w.get("state") == "blocked" and a != self.plan.keyless)
        if stuck:
            out.append(f"workers blocked that should work: {stuck}")
        if self.plan.keyless and self.workers.get(self.plan.keyless, {}).get("state") != "blocked":
            out.append(f"the keyless worker {self.plan.keyless} is not blocked")
        return out

    def table(self) -> str:
        rows = [f"{'task':10} {'state':8} attempts charged (why)"]
        for task in self.plan.tasks:
            why = "; ".join(self.charged.get(task, []))[:110]
            extra = self.reasons.get(task, "")[:110]
            rows.append(f"{task:10} {self.states.get(task, '?'):8} {len(self.charged.get(task, []))} "
                        f"{why or extra}")
        return "\n".join(rows)


def explained(plan: Plan, task: str, attempt: int) -> str | None:
    """The task fault behind a charged attempt, or None."""
    if task in plan.impossible:
        return "impossible"
    fault = plan.faults.get(f"{task}/{attempt}")
    if fault:
        return fault
    return None


def run_chaos(base: Path, *, tasks: int, agents: int, seed: int, faults: bool = True, kill_every_s: float = 60,
              outage_at_s: float = 30, outage_s: float = 20, timeout_s: float = 6, python: str = sys.executable,
              clude: list[str] | None = None, env: dict[str, str] | None = None, limit_s: float = 3600) -> Outcome:
    """One run: the project, the daemon, `clude team run`, the kills and the outage; what came of it."""
    clude = clude or [python, "-m", "clude"]
    env = dict(env or os.environ)
    plan = make_plan(tasks, agents, seed, faults=faults, timeout_s=timeout_s)
    root = base / "project"
    make_project(root, plan, python)
    served = base / "served"
    served.mkdir()
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(served / "up.git")], check=True)
    daemon = Daemon(served)
    daemon.start()
    url = daemon.url + "up.git"
    plan_file = base / "plan.json"
    plan_file.write_text(json.dumps(plan.data()))

    def cli(*args: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([*clude, *args, "-C", str(root)], env=env, capture_output=True, text=True,
                              timeout=600, **kw)

    try:
        done = cli("team", "init", "--upstream", url)
        if done.returncode != 0:
            raise RuntimeError(f"team init failed: {done.stderr}")
        for task in plan.tasks:
            name = task.replace("-", "_").lower()
            done = cli("team", "task", "add", f"chaos {task}", "--tests", f"tests/test_tasks.py::test_{name}")
            if done.returncode != 0:
                raise RuntimeError(f"task add failed: {done.stderr}")
        command = f"{python} {AGENT} {plan_file} {{task_id}} {{prompt_file}}"
        start = time.monotonic()
        team = subprocess.Popen([*clude, "team", "run", "--agents", str(agents), "--backend", "command",
                                 "--command", command, "--no-doctor", "--json", "-C", str(root)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        kills, outage_done, down_since = 0, not faults, None
        next_kill = start + kill_every_s
        victims = [a for a in plan.agents if a not in (plan.keyless,)]
        while team.poll() is None:
            now = time.monotonic()
            if now - start > limit_s:
                os.killpg(team.pid, signal.SIGTERM)
                break
            if faults and now >= next_kill:
                kills += _kill_one(root, victims[kills % len(victims)])
                next_kill = now + kill_every_s
            if not outage_done and down_since is None and now - start >= outage_at_s:
                daemon.stop()
                down_since = now
            if down_since is not None and now - down_since >= outage_s:
                daemon.start()
                down_since, outage_done = None, True
            time.sleep(0.2)
        if down_since is not None:
            daemon.start()
        out, err = team.communicate()
        seconds = time.monotonic() - start
        result = json.loads(out) if out.strip().startswith("{") else {}
        return _outcome(plan, root, url, seconds, result, kills, outage_s if faults else 0.0, err)
    finally:
        daemon.stop()


def _kill_one(root: Path, agent: str) -> int:
    """SIGKILL the worker `agent` (as read from its heartbeat): 1 when one was killed."""
    try:
        pid = int(json.loads((root / ".clude" / "heartbeats" / f"{agent}.json").read_text())["pid"])
        os.kill(pid, signal.SIGKILL)
        return 1
    except (OSError, ValueError, KeyError):
        return 0


def _git(url_or_dir: str, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", url_or_dir, *args], capture_output=True, text=True,
                          check=True).stdout


def _outcome(plan: Plan, root: Path, url: str, seconds: float, result: dict, kills: int, outage_s: float,
             err: str) -> Outcome:
    mirror = root.parent / "final.git"
    subprocess.run(["git", "clone", "-q", "--bare", url, str(mirror)], check=True, capture_output=True)
    git = str(mirror)
    states, reasons = {}, {}
    for task in plan.tasks:
        text = _git(git, "show", f"main:tasks/{task}.md")
        found = re.search(r"^status: (\w+)", text, re.M)
        states[task] = found.group(1) if found else "?"
        if states[task] == "open" and _git(git, "ls-tree", "main", f"current_tasks/{task}.lock").strip():
            states[task] = "held"
        blocked = re.search(r"^blocked_reason: (.+)$", text, re.M)
        if blocked:
            reasons[task] = blocked.group(1)
    subjects = _git(git, "log", "--format=%s%n%b", "main").splitlines()
    dones = [m.group(1) for s in subjects if (m := re.match(r"done (\S+?):", s))]
    done_twice = sorted({t for t in dones if dones.count(t) > 1})
    charged: dict[str, list[str]] = {}
    unexplained, double_flakes = [], []
    for name in _git(git, "ls-tree", "--name-only", "main", "tasks/failures/").split():
        found = re.match(r"tasks/failures/(\S+)_attempt_(\d+)\.md$", name)
        if not found:
            continue
        task, attempt = found.group(1), int(found.group(2))
        record = _git(git, "show", f"main:{name}")
        why = explained(plan, task, attempt)
        first = next((line for line in record.splitlines() if line.startswith(("the ", "1 ", "2 ", "3 "))), "")
        charged.setdefault(task, []).append(f"{attempt}: {why or first[:80]}")
        if why is None:
            blamed = re.search(r"do not pass with this change: (.*)", record)  # the verdict's reason, not its report
            failing = set(re.findall(r"tests/test_\w+\.py::(\w+)", blamed.group(1) if blamed else record))
            (double_flakes if failing == {"test_flaky"} else unexplained).append(f"{task}/{attempt}")
    counts = {s: sum(1 for v in states.values() if v == s) for s in ("done", "failed", "blocked", "open", "held")}
    return Outcome(plan, seconds, states, reasons, done_twice, charged, unexplained, double_flakes,
                   result.get("workers", {}), kills, outage_s, counts, str(result.get("stopped", "")), err[-3000:])
