"""Sessions of `clude run` on disk: the state saved atomically after every change, its log, its messages."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clude.agent.plan import StepStatus
from clude.agent.states import State
from clude.llm.base import Usage
from clude.store import atomic_write_text

Outcome = Literal["running", "done", "failed", "blocked", "error", "interrupted"]

# Serializes writes of one session's files: parallel steps save their turns from their threads.
SAVE_LOCK = threading.Lock()


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class StepRecord(_Model):
    """What the run knows about one step of the plan besides the plan itself."""

    status: StepStatus = "pending"
    attempts: int = 0            # runs started (the first one included)
    reason: str = ""             # why it failed or is blocked
    summary: str = ""            # what the model said it did
    iterations: int = 0          # model turns in its last attempt
    worktree: str | None = None  # set while it runs in its own worktree (parallel)


class Recovery(_Model):
    """Why the run is RECOVERING: what failed and how."""

    kind: Literal["step_failed", "replan", "verify_failed"]
    step: str | None = None
    reason: str


class SessionState(_Model):
    id: str
    goal: str
    root: str
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)
    state: State = State.INTAKE
    outcome: Outcome = "running"
    reason: str = ""                                   # of the last transition / the outcome
    plan: dict | None = None                           # Plan.model_dump()
    steps: dict[str, StepRecord] = Field(default_factory=dict)
    plan_attempts: int = 0
    replans: int = 0
    verify_fixes: int = 0                              # fix steps added after failed verifications
    just_done: list[str] = Field(default_factory=list)  # the steps the last batch finished
    recovery: Recovery | None = None
    verdict: dict | None = None                        # the last verification's Verdict (public)
    usage: Usage = Field(default_factory=Usage)
    elapsed_s: float = 0.0                             # running time over every resume
    transitions: list[dict] = Field(default_factory=list)
    options: dict[str, Any] = Field(default_factory=dict)  # parallel, verify: as the run started
    # the test files and test configuration as the run found them (agent/protect.py); None: not taken
    protected: dict[str, str] | None = None
    pid: int | None = None


class SessionBusy(RuntimeError):
    """Another live process is running this session."""


class SessionFinished(RuntimeError):
    """The session has ended (done, failed or blocked): there is nothing to resume."""


class SessionNotFound(LookupError):
    """No session with that id (or no session at all)."""


class Session:
    """One session folder: state.json, run.log, messages/<name>.json, tool-output/."""

    def __init__(self, path: Path, state: SessionState):
        self.path = path
        self.state = state
        self._lock_file: Any = None

    # files ---------------------------------------------------------------------------------
    @property
    def output_dir(self) -> Path:
        return self.path / "tool-output"

    def save(self) -> None:
        with SAVE_LOCK:
            self.state.updated_at = time.time()
            atomic_write_text(self.path / "state.json", self.state.model_dump_json(indent=1))

    def log(self, line: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with SAVE_LOCK, open(self.path / "run.log", "a", encoding="utf-8") as f:
            f.write(f"{stamp} {line}\n")

    def save_messages(self, name: str, messages: list[dict]) -> None:
        with SAVE_LOCK:
            atomic_write_text(self.path / "messages" / f"{_safe(name)}.json",
                              json.dumps(messages, ensure_ascii=False))

    def load_messages(self, name: str) -> list[dict]:
        path = self.path / "messages" / f"{_safe(name)}.json"
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        return value if isinstance(value, list) else []

    def keep_messages(self, name: str, label: str) -> None:
        """Set the conversation `name` aside as `name.label.json` (then .2, .3, ... when that is taken), so
        that the next one under `name` starts empty and the earlier one stays readable."""
        folder = self.path / "messages"
        current = folder / f"{_safe(name)}.json"
        with SAVE_LOCK:
            if not current.exists():
                return
            kept, n = folder / f"{_safe(name)}.{_safe(label)}.json", 1
            while kept.exists():
                n += 1
                kept = folder / f"{_safe(name)}.{_safe(label)}.{n}.json"
            current.rename(kept)

    # the single live runner ----------------------------------------------------------------
    def acquire(self) -> None:
        """Hold this session's lock for as long as this process runs it (released on exit, even
        a kill -9, by the kernel)."""
        handle = open(self.path / "lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise SessionBusy(f"session {self.state.id} is being run by another process "
                              f"(pid {self.state.pid}); wait for it or stop it first") from None
        self._lock_file = handle
        self.state.pid = os.getpid()

    def release(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:100] or "_"


class SessionStore:
    """Every session of one project, under <root>/.clude/sessions/."""

    def __init__(self, root: Path):
        from clude.harness.runner import clude_dir

        self.root = root
        self.folder = clude_dir(root) / "sessions"

    def create(self, goal: str, options: dict[str, Any]) -> Session:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        session_id = f"{stamp}-{secrets.token_hex(3)}"
        path = self.folder / session_id
        path.mkdir(parents=True)
        session = Session(path, SessionState(id=session_id, goal=goal, root=str(self.root),
                                             options=options))
        session.save()
        return session

    def load(self, session_id: str) -> Session:
        path = self.folder / session_id
        state_file = path / "state.json"
        if not state_file.is_file():
            known = ", ".join(s.id for s in self.list()[-5:]) or "none yet"
            raise SessionNotFound(f"no session {session_id!r} in {self.folder} (latest: {known})")
        try:
            state = SessionState.model_validate_json(state_file.read_text(encoding="utf-8"))
        except (ValidationError, ValueError) as error:
            raise SessionNotFound(f"{state_file}: unreadable session state: "
                                  f"{str(error).splitlines()[0]}") from None
        return Session(path, state)

    def list(self) -> list[SessionState]:
        """Every readable session, oldest first (an unreadable one is skipped)."""
        found = []
        if self.folder.is_dir():
            for path in sorted(self.folder.iterdir()):
                try:
                    found.append(SessionState.model_validate_json(
                        (path / "state.json").read_text(encoding="utf-8")))
                except (OSError, ValidationError, ValueError):
                    continue
        return found

    def latest_unfinished(self) -> Session:
        for state in reversed(self.list()):
            if state.outcome in ("running", "interrupted", "error"):
                return self.load(state.id)
        raise SessionNotFound(f"no unfinished session in {self.folder}: start one with clude run")
