"""One account of what happened: `team status` (worker_states) and `team logs analyze` tell the same
story as the team's events, over any event log a team can write. A small model of a team plays out a
generated sequence of moves and writes the events its workers would; the readers must agree with the
model on every task's outcome and every worker's state and last error. (That each event is written once
is shown by real runs: test_team_monitor.py, test_team_flow.py.)"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from clude.team.logs.analyze import analyze
from clude.team.logs.status import worker_states

WORKERS = ("a1", "a2", "a3")
TASKS = ("T1", "T2", "T3", "T4")
MAX_ATTEMPTS = 2
MOVES = ("land", "fail", "infra", "poisoned", "env")


@dataclass
class Model:
    events: list[dict] = field(default_factory=list)
    tasks: dict[str, str] = field(default_factory=lambda: {t: "open" for t in TASKS})
    attempts: dict[str, int] = field(default_factory=lambda: {t: 0 for t in TASKS})
    starts: dict[str, int] = field(default_factory=lambda: {t: 0 for t in TASKS})
    blocked: set[str] = field(default_factory=set)
    error: dict[str, str | None] = field(default_factory=lambda: {w: None for w in WORKERS})
    clock: float = 1000.0

    def emit(self, agent: str, kind: str, level: str = "INFO", **details) -> None:
        self.clock += 1
        self.events.append({"at": self.clock, "agent": agent, "kind": kind, "level": level, **details})

    def play(self, worker: str, task: str, move: str) -> None:
        if worker in self.blocked or self.tasks[task] != "open":
            return
        n = self.attempts[task] + 1
        self.emit(worker, "claimed", task=task, attempt=n)
        self.emit(worker, "agent_started", task=task, attempt=n)
        if move == "land":
            self.emit(worker, "agent_finished", task=task, attempt=n, exit_code=0, changed=True)
            self.emit(worker, "queued", task=task, attempt=n)
            lander = next(w for w in WORKERS if w not in self.blocked)  # a running worker's lander thread
            self.emit(lander, "done", task=task, attempt=n, queued_by=worker)
            self.emit(lander, "landed", tasks=[task])
            self.tasks[task] = "done"
            self.error[worker] = self.error[lander] = None
        elif move == "fail":
            self.attempts[task] = n
            final = n >= MAX_ATTEMPTS
            self.emit(worker, "failed_attempt", "WARNING", task=task, attempt=n, reason="tests fail", final=final)
            self.tasks[task] = "failed" if final else "open"
            self.error[worker] = None
        elif move in ("infra", "poisoned"):
            self.emit(worker, "infra", "ERROR", task=task, cause="start_failed", reason=f"{task} died at start")
            self.error[worker] = f"{task} died at start"
            if move == "poisoned":
                self.starts[task] += 1
                if self.starts[task] >= 2:
                    self.emit(worker, "task_blocked", "WARNING", task=task, reason="dies at start")
                    self.tasks[task] = "blocked"
        elif move == "env":
            self.emit(worker, "infra", "ERROR", task=task, cause="missing_env", reason="OPENAI_API_KEY unset")
            self.emit(worker, "worker_blocked", "ERROR", cause="missing_env", reason="OPENAI_API_KEY unset")
            self.blocked.add(worker)
            self.error[worker] = "OPENAI_API_KEY unset"


moves = st.lists(st.tuples(st.sampled_from(WORKERS), st.sampled_from(TASKS), st.sampled_from(MOVES)),
                 max_size=40)


@settings(max_examples=300, deadline=None)
@given(moves)
def test_status_and_analyze_agree_with_what_happened(plays):
    model = Model()
    for worker in WORKERS:
        model.emit(worker, "worker_started")
    for worker, task, move in plays:
        model.play(worker, task, move)

    report = analyze(list(model.events), [])
    told = {t.task: t.outcome for t in report.task_times}
    for task, state in model.tasks.items():
        if state == "open":
            assert task not in told, (task, told[task])  # an open task is never called failed (nor done)
        else:
            assert told.get(task) == state, (task, state, told.get(task))

    states = {w["agent"]: w for w in worker_states(list(model.events), now=model.clock)}
    for worker in WORKERS:
        assert states[worker]["error"] == model.error[worker], (worker, states[worker], model.error[worker])
        assert (states[worker]["state"] == "blocked") == (worker in model.blocked)

