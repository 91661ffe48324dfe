"""The single coding agent of `clude run`: a plan of steps (a DAG), each carried out in a tool loop,
verified by the harness, with recovery, budgets, sessions that survive kill -9, and parallel steps.

    plan.py      the plan model and its validation;  schedule.py  ready steps, blocked, deadlock (pure)
    states.py    the state machine: states and the legal transitions
    loop.py      the run: one handler per state, saved after every transition
    step.py      one step's tool loop;  guard.py its end markers and loop detection
    planner.py   asks the model for a plan until it is valid;  recovery.py what to do after a failure
    session.py   sessions on disk;  result.py the headless result and exit codes
    tools/       what the model can do in the workspace;  worktrees.py + parallel.py parallel steps
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from clude.agent.loop import AgentRun, Confirm, Listener
from clude.agent.result import EXIT_CODES, RunResult
from clude.agent.session import SessionStore
from clude.config.settings import AgentConfig, Settings
from clude.llm.base import ChatModel

__all__ = ["AgentRun", "EXIT_CODES", "RunResult", "SessionStore", "resume_run", "start_run"]


def _model(settings: Settings, root: Path, env: Mapping[str, str] | None) -> ChatModel:
    from clude.llm.providers import make_model

    return make_model(settings.model, env=env, base_dir=root, prices=settings.prices)


def start_run(root: Path, goal: str, settings: Settings, model: ChatModel | None = None, *,
              parallel: int | None = None, verify: str | None = None, confirm: Confirm | None = None,
              listener: Listener | None = None, env: Mapping[str, str] | None = None,
              overrides: Mapping[str, object] | None = None) -> RunResult:
    """A new session for `goal` in the project at `root`, run until it ends or is interrupted.

    `overrides`: [agent] settings given on the command line; kept in the session so a resume runs
    with them too. Raises ModelError when the configured model cannot even be made (no key)."""
    root = root.resolve()
    overrides = {k: v for k, v in dict(overrides or {}, parallel=parallel, verify=verify).items()
                 if v is not None}
    settings = _with(settings, overrides)
    model = model or _model(settings, root, env)
    options = {"parallel": settings.agent.parallel, "verify": settings.agent.verify,
               "model": model.name, "overrides": overrides}
    session = SessionStore(root).create(goal, options)
    return AgentRun(root, settings, model, session, confirm=confirm, listener=listener,
                    env=env if env is not None else os.environ).run()


def resume_run(root: Path, settings: Settings, session_id: str | None = None,
               model: ChatModel | None = None, *, listener: Listener | None = None,
               env: Mapping[str, str] | None = None) -> RunResult:
    """Go on with a session (the latest unfinished one when no id is given) without redoing done steps.
    The command-line [agent] overrides of its start apply again; the rest comes from the config now.
    Raises SessionNotFound, SessionBusy, or SessionFinished for a session that has already ended."""
    from clude.agent.session import SessionFinished

    root = root.resolve()
    store = SessionStore(root)
    session = store.load(session_id) if session_id else store.latest_unfinished()
    if session.state.outcome in ("done", "failed", "blocked"):
        raise SessionFinished(f"session {session.state.id} has ended: {session.state.outcome}: "
                              f"{session.state.reason}")
    settings = _with(settings, session.state.options.get("overrides") or {})
    model = model or _model(settings, root, env)
    return AgentRun(root, settings, model, session, listener=listener,
                    env=env if env is not None else os.environ).run()


def _with(settings: Settings, overrides: Mapping[str, object]) -> Settings:
    if not overrides:
        return settings
    agent = AgentConfig.model_validate({**settings.agent.model_dump(), **overrides})
    return settings.model_copy(update={"agent": agent})
