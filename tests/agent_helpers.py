"""Shared pieces of the agent tests: a whole-run script for the scripted model, and a sample project."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from conftest import write_files

STEP_RE = re.compile(r"Your step now: (\S+) —")

CALC = '''def add(a, b):
    return a + b


def mean(values):
    return sum(values) / (len(values) + 1)
'''
CALC_FIXED = CALC.replace("(len(values) + 1)", "len(values)")
TESTS = '''from calc import add, mean


def test_add():
    assert add(2, 3) == 5


def test_mean():
    assert mean([2, 4, 6]) == 4
'''


def sample_project(root: Path, *, git: bool = True, **extra: str) -> Path:
    """A small Python project whose one failing test (mean) the scripted agent fixes."""
    command = json.dumps([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"])
    write_files(root, {"calc.py": CALC, "test_calc.py": TESTS,
                       "clude.toml": f"[test]\ncommand = {command}\n", **extra})
    if git:
        for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                     ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "start"]):
            subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    return root


def plan(title: str, *steps: tuple) -> dict:
    """A planner reply: steps as (id, title) or (id, title, [dependencies])."""
    body = {"title": title, "steps": [
        {"id": s[0], "title": s[1], "dependencies": list(s[2]) if len(s) > 2 else []} for s in steps]}
    return {"text": "Here is the plan:\n```json\n" + json.dumps(body) + "\n```"}


def call(name: str, **arguments) -> dict:
    """A reply making one tool call."""
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


def done(summary: str = "done") -> dict:
    return call("step_done", summary=summary)


class AgentScript:
    """A function script for whole runs: planner requests get `plans` in order, each step gets the
    replies listed under its id in order (across its attempts). Safe for parallel steps."""

    def __init__(self, plans: list, steps: dict[str, list]):
        self.plans = list(plans)
        self.steps = {key: list(value) for key, value in steps.items()}
        self.calls: Counter = Counter()
        self.requests: dict[str, list] = {}
        self.lock = threading.Lock()
        self.hooks: dict[tuple[str, int], callable] = {}  # (key, nth request) -> called first

    @staticmethod
    def key_of(messages: list) -> str:
        if str(messages[0].get("content", "")).startswith("You are the planner"):
            return "plan"
        first = next(m for m in messages if m["role"] == "user")["content"]
        found = STEP_RE.search(first)
        assert found, f"not a step prompt: {first[:200]}"
        return found.group(1)

    def __call__(self, messages, tools):
        key = self.key_of(messages)
        with self.lock:
            self.calls[key] += 1
            self.requests.setdefault(key, []).append(messages)
            hook = self.hooks.get((key, self.calls[key]))
            queue = self.plans if key == "plan" else self.steps.get(key)
            if not queue:
                raise AssertionError(f"nothing scripted for request {self.calls[key]} of {key!r}")
            reply = queue.pop(0)
        if hook is not None:
            hook()
        return reply
