"""The agent's state machine: the states of a run, the legal transitions between them, and their log."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Callable


class State(str, enum.Enum):
    INTAKE = "INTAKE"          # the goal is read and the workspace checked
    PLANNING = "PLANNING"      # the model writes (or rewrites) the plan
    EXECUTING = "EXECUTING"    # ready steps run, each in its own tool loop
    VERIFYING = "VERIFYING"    # the harness judges the work
    RECOVERING = "RECOVERING"  # after a failed step or verification: retry, replan or give up
    BLOCKED = "BLOCKED"        # cannot go on; the reason says why (terminal)
    DONE = "DONE"              # every step done and verified (terminal)


S = State
# Every legal transition. Anything else is a bug in the loop and raises IllegalTransition.
TRANSITIONS: dict[State, frozenset[State]] = {
    S.INTAKE: frozenset({S.PLANNING, S.BLOCKED}),
    S.PLANNING: frozenset({S.EXECUTING, S.BLOCKED}),
    S.EXECUTING: frozenset({S.VERIFYING, S.RECOVERING, S.BLOCKED, S.DONE}),
    S.VERIFYING: frozenset({S.DONE, S.RECOVERING, S.EXECUTING, S.BLOCKED}),
    S.RECOVERING: frozenset({S.EXECUTING, S.PLANNING, S.BLOCKED}),
    S.BLOCKED: frozenset(),
    S.DONE: frozenset(),
}
TERMINAL = frozenset(s for s, targets in TRANSITIONS.items() if not targets)


class IllegalTransition(RuntimeError):
    """A transition the table does not allow."""


@dataclass
class Transition:
    source: State
    target: State
    reason: str
    at: float  # time.time()

    def as_dict(self) -> dict:
        return {"from": self.source.value, "to": self.target.value, "reason": self.reason, "at": self.at}

    @classmethod
    def from_dict(cls, data: dict) -> "Transition":
        return cls(State(data["from"]), State(data["to"]), data["reason"], data["at"])


@dataclass
class StateMachine:
    """The current state and every transition so far; `on_change` hears each one (logging, saving)."""

    state: State = State.INTAKE
    history: list[Transition] = field(default_factory=list)
    on_change: Callable[[Transition], None] | None = None

    def can(self, target: State) -> bool:
        return target in TRANSITIONS[self.state]

    def go(self, target: State, reason: str) -> Transition:
        if not self.can(target):
            allowed = ", ".join(sorted(s.value for s in TRANSITIONS[self.state])) or "none: it is final"
            raise IllegalTransition(f"illegal transition {self.state.value} -> {target.value} "
                                    f"({reason}); allowed from {self.state.value}: {allowed}")
        if not reason.strip():
            raise ValueError("every transition needs a reason")
        step = Transition(self.state, target, reason, time.time())
        self.state = target
        self.history.append(step)
        if self.on_change is not None:
            self.on_change(step)
        return step

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL
