"""The run: INTAKE -> PLANNING -> EXECUTING -> VERIFYING -> DONE, with RECOVERING and BLOCKED, saved
after every transition so `clude resume` goes on from where a run stopped."""

from __future__ import annotations

import os
import threading
import time
import traceback
from pathlib import Path
from typing import Callable, Mapping

from clude.agent.after import AfterSteps
from clude.agent.budget import over_budget
from clude.agent.plan import Plan, PlanError
from clude.agent.schedule import deadlock, merge_replan, propagate_blocked, ready_steps
from clude.agent.planner import PlanningFailed, ask_for_plan, plan_request, replan_request
from clude.agent.prompts import render
from clude.agent.result import RunResult, result_of
from clude.agent.session import Recovery, Session, StepRecord
from clude.agent.states import State, StateMachine, Transition
from clude.agent.step import BudgetExceeded, StepOutcome, run_step
from clude.agent.tools import Toolbox
from clude.sandbox import Sandbox, agent_sandbox, allowed_env
from clude.config.settings import Settings
from clude.llm.base import ChatModel, ModelError, Reply

# Asked after a valid plan, before anything runs: the plan to carry out (maybe edited), or None.
Confirm = Callable[[Plan], "Plan | None"]
# Hears what happens: ("transition" | "plan" | "step" | "verdict" | "note", details).
Listener = Callable[[str, dict], None]


class Stopped(Exception):
    """The run was asked to stop (Ctrl-C, SIGTERM) while steps ran in other threads."""


class Halted(Exception):
    """The environment, not the work, stops the run (the model cannot be reached, the tests cannot
    start). The state stays where it was, so `clude resume` goes on once it is fixed."""


class AgentRun(AfterSteps):
    """One session's run. `run()` drives the state machine until DONE, BLOCKED or an interruption."""

    def __init__(self, root: Path, settings: Settings, model: ChatModel, session: Session, *,
                 confirm: Confirm | None = None, listener: Listener | None = None,
                 env: Mapping[str, str] | None = None, sandbox: Sandbox | None = None):
        self.root = root.resolve()
        self.settings = settings
        self.config = settings.agent
        self.model = model
        self.session = session
        self.state = session.state
        self.confirm = confirm
        self.listener = listener or (lambda kind, details: None)
        self.env = dict(os.environ if env is None else env)
        # what the agent's shell commands and tests run with: an allowlist, never the model's key (a
        # test the model writes could print one); a suite that needs more names them in [test] pass_env
        self.test_env = allowed_env(self.env, settings.test.pass_env)
        self.sandbox = sandbox if sandbox is not None else agent_sandbox(settings)
        self.parallel = int(self.state.options.get("parallel") or self.config.parallel)
        self.verify = str(self.state.options.get("verify") or self.config.verify)
        self.machine = StateMachine(self.state.state,
                                    [Transition.from_dict(t) for t in self.state.transitions],
                                    on_change=self._changed)
        self._started = time.monotonic()
        self._elapsed_before = self.state.elapsed_s
        self.stopping = False  # set on Ctrl-C: steps in other threads stop at their next turn
        self._usage_lock = threading.Lock()  # parallel steps add their replies' usage at once

    # driving ---------------------------------------------------------------------------------
    def run(self) -> RunResult:
        handlers = {State.INTAKE: self._intake, State.PLANNING: self._planning,
                    State.EXECUTING: self._executing, State.VERIFYING: self._verifying,
                    State.RECOVERING: self._recovering}
        self.session.acquire()
        self.state.outcome = "running"
        try:
            while not self.machine.finished:
                try:
                    handlers[self.machine.state]()
                except BudgetExceeded as over:
                    self._fail_running(str(over))
                    self._block("blocked", str(over))
        except (ModelError, Halted) as error:
            self.stopping = True
            self.state.outcome = "error"
            what = f"the model cannot be used: {error}" if isinstance(error, ModelError) else str(error)
            self.state.reason = f"{what}; once fixed, continue with: clude resume {self.state.id}"
            self.session.log(f"stopped in {self.machine.state.value}: {what}")
            self.listener("note", {"text": what})
        except (KeyboardInterrupt, Stopped):
            self.stopping = True
            self.state.outcome = "interrupted"
            self.state.reason = (f"interrupted in {self.machine.state.value}; continue with: "
                                 f"clude resume {self.state.id}")
            self.session.log(f"interrupted in {self.machine.state.value}")
        except Exception as error:  # a bug or an OS/git failure: an error to report, never "failed"
            self.stopping = True
            self.state.outcome = "error"
            what = f"{type(error).__name__}: {error}"
            self.state.reason = (f"clude stopped on an unexpected error in {self.machine.state.value}: "
                                 f"{what} (the traceback is in {self.session.path / 'run.log'}); "
                                 f"continue with: clude resume {self.state.id}")
            self.session.log("unexpected error:\n" + traceback.format_exc())
        finally:
            self._save()
            self.session.release()
        return result_of(self.state, str(self.session.path))

    def _changed(self, step: Transition) -> None:
        self.state.state = step.target
        self.state.reason = step.reason
        self.state.transitions.append(step.as_dict())
        self.session.log(f"{step.source.value} -> {step.target.value}: {step.reason}")
        self._save()
        self.listener("transition", step.as_dict())

    def _go(self, target: State, reason: str) -> None:
        if target is State.DONE:
            self.state.outcome = "done"
        self.machine.go(target, reason)

    def _block(self, outcome: str, reason: str) -> None:
        self.state.outcome = outcome  # type: ignore[assignment]
        self.machine.go(State.BLOCKED, reason)

    def _fail_running(self, reason: str) -> None:
        """Steps cut off by the end of the run are failed, never left in progress."""
        for record in self.state.steps.values():
            if record.status == "in_progress":
                record.status, record.reason, record.worktree = "failed", reason, None

    def _save(self) -> None:
        self.state.elapsed_s = self._elapsed_before + (time.monotonic() - self._started)
        self.session.save()

    def check_budget(self) -> str | None:
        if self.stopping:
            raise Stopped()
        return over_budget(self.config, self.state.usage,
                           self._elapsed_before + (time.monotonic() - self._started))

    def add_usage(self, reply: Reply) -> None:
        with self._usage_lock:
            self.state.usage = self.state.usage + reply.usage

    # INTAKE ----------------------------------------------------------------------------------
    def _intake(self) -> None:
        from clude.agent.checks import intake_problem

        problem = intake_problem(self.root, self.state.goal, self.settings, self.env,
                                 parallel=self.parallel, verify=self.verify)
        if problem is not None:
            outcome, reason = problem
            if outcome == "unverified":
                self.state.options["unverified"] = reason
                self.listener("note", {"text": f"the work will not be verified: {reason}"})
            elif outcome == "error":
                raise Halted(reason)
            else:
                return self._block(outcome, reason)
        if self.state.protected is None and not self.state.options.get("unverified") and self.verify != "never":
            from clude.agent.protect import snapshot
            self.state.protected = snapshot(self.root)
        self._go(State.PLANNING, f"goal read ({len(self.state.goal)} characters); asking for a plan")

    # PLANNING --------------------------------------------------------------------------------
    @property
    def plan(self) -> Plan:
        return Plan.model_validate(self.state.plan)

    def statuses(self) -> dict[str, str]:
        return {step_id: record.status for step_id, record in self.state.steps.items()}

    def _planning(self) -> None:
        replanning = self.state.plan is not None
        if replanning:
            done = [s for s, r in self.state.steps.items() if r.status == "done"]
            messages = replan_request(self.root, self.state.recovery.reason if self.state.recovery
                                      else "asked to replan", self.overview())
        else:
            done = []
            messages = plan_request(self.root, self.state.goal)

        def invalid(attempt: int, error: PlanError) -> None:
            self.state.plan_attempts += 1
            self.session.log(f"invalid plan (attempt {attempt}): {'; '.join(error.errors)}")
            self.listener("note", {"text": f"invalid plan, attempt {attempt}: {'; '.join(error.errors)}"})

        try:
            plan = ask_for_plan(self.model, messages, attempts=self.config.max_plan_attempts,
                                done_ids=done, check_budget=self.check_budget,
                                on_reply=self.add_usage, on_invalid=invalid)
        except PlanningFailed as failed:
            self.session.save_messages(f"plan-{self.state.replans}", messages)
            return self._block("blocked", str(failed))
        self.session.save_messages(f"plan-{self.state.replans}", messages)
        if replanning:
            plan, statuses = merge_replan(self.plan, self.statuses(), plan)
            self.state.steps = {s.id: self.state.steps.get(s.id) if statuses[s.id] == "done"
                                else StepRecord() for s in plan.steps}
        else:
            self.state.steps = {s.id: StepRecord() for s in plan.steps}
        if self.confirm is not None:
            chosen = self.confirm(plan)
            if chosen is None:
                return self._block("blocked", "the plan was rejected")
            if chosen is not plan:
                self.state.steps = {s.id: self.state.steps.get(s.id) or StepRecord()
                                    for s in chosen.steps}
                plan = chosen
        self.state.plan = plan.model_dump()
        self.state.recovery = None
        self.listener("plan", {"plan": self.state.plan, "replan": replanning})
        self.session.log("plan: " + self.overview().replace("\n", " | "))
        self._go(State.EXECUTING, f"{'new ' if replanning else ''}plan of {len(plan.steps)} steps: "
                                  f"{plan.title}")

    def overview(self) -> str:
        """The plan, one line per step with its status (for prompts and the log)."""
        lines = []
        for step in self.plan.steps:
            record = self.state.steps.get(step.id) or StepRecord()
            deps = f" (after {', '.join(step.dependencies)})" if step.dependencies else ""
            lines.append(f"[{record.status}] {step.id}: {step.title}{deps}")
        return "\n".join(lines)

    # EXECUTING -------------------------------------------------------------------------------
    def _executing(self) -> None:
        plan = self.plan
        for step_id, (status, reason) in propagate_blocked(plan, self.statuses(),
                                                           self._reasons()).items():
            self.state.steps[step_id].status, self.state.steps[step_id].reason = status, reason
        resumed = [s.id for s in plan.steps if self.state.steps[s.id].status == "in_progress"]
        for step_id in resumed:  # a step cut off by a kill: its conversation goes on in place,
            record = self.state.steps[step_id]  # a worktree's work is started again
            if record.worktree:
                record.status, record.worktree = "pending", None
                self.session.keep_messages(step_id, f"attempt-{record.attempts}-interrupted")
                record.attempts = max(0, record.attempts - 1)
        resumed = [s for s in resumed if self.state.steps[s].status == "in_progress"]
        ready = resumed or ready_steps(plan, self.statuses())
        if not ready:
            if all(r.status == "done" for r in self.state.steps.values()):
                if self.verify == "never":
                    return self._go(State.DONE, f"{_all_steps(len(plan.steps))} done; not verified: the "
                                                "setting [agent] verify is \"never\"")
                return self._go(State.VERIFYING, f"{_all_steps(len(plan.steps))} done")
            report = deadlock(plan, self.statuses(), self._reasons()) or "no step can run"
            return self._block("failed", report)
        if self.parallel > 1 and len(ready) > 1 and not resumed:
            from clude.agent.parallel import run_batch

            outcomes = run_batch(self, ready[: self.parallel])
        else:
            outcomes = [(ready[0], self.run_one(ready[0], self.root))]
        self._settle(outcomes)

    def _reasons(self) -> dict[str, str]:
        return {step_id: record.reason for step_id, record in self.state.steps.items()}

    def _settle(self, outcomes: list[tuple[str, StepOutcome]]) -> None:
        """Record what the steps did, then go where that leads."""
        trouble: Recovery | None = None
        for step_id, outcome in outcomes:
            record = self.state.steps[step_id]
            record.iterations = outcome.iterations
            record.worktree = None
            self.listener("step", {"id": step_id, "status": outcome.status, "text": outcome.reason})
            self.session.log(f"step {step_id} {outcome.status}: {outcome.reason}")
            if outcome.status == "done":
                record.status, record.summary, record.reason = "done", outcome.reason, ""
            elif outcome.status == "replan":
                record.status, record.reason = "pending", f"asked to replan: {outcome.reason}"
                trouble = trouble or Recovery(kind="replan", step=step_id, reason=outcome.reason)
            else:
                record.status, record.reason = "failed", outcome.reason
                trouble = trouble or Recovery(kind="step_failed", step=step_id, reason=outcome.reason)
        if trouble is not None:
            self.state.recovery = trouble
            return self._go(State.RECOVERING, f"step {trouble.step}: {trouble.kind.replace('_', ' ')}: "
                                              f"{trouble.reason}")
        done_now = ", ".join(step_id for step_id, _ in outcomes)
        self.state.just_done = [step_id for step_id, _ in outcomes]
        if self.verify == "each_step":
            return self._go(State.VERIFYING, f"step {done_now} done; verifying after each step")
        self._save()  # stays EXECUTING: the next handler call takes the next ready steps

    def run_one(self, step_id: str, workdir: Path) -> StepOutcome:
        """Run one step in `workdir` (the project, or the step's own worktree)."""
        step = next(s for s in self.plan.steps if s.id == step_id)
        record = self.state.steps[step_id]
        messages = self.session.load_messages(step_id) if record.status == "in_progress" else []
        if not messages:
            self.session.keep_messages(step_id, f"attempt-{record.attempts}")  # the last attempt's, if any
            record.attempts += 1
            record.status = "in_progress"
            done = [{"id": s.id, "summary": self.state.steps[s.id].summary}
                    for s in self.plan.steps if self.state.steps[s.id].status == "done"]
            prompt = render("step_user", goal=self.state.goal, plan_title=self.plan.title,
                            overview=self.overview(), step=step, done=done,
                            retry=record.reason if record.attempts > 1 else "",
                            attempt=record.attempts)
            messages = [{"role": "system", "content": render("system", root=str(workdir))},
                        {"role": "user", "content": prompt}]
            self.session.save_messages(step_id, messages)
            self._save()
        self.listener("step", {"id": step_id, "status": "started", "attempt": record.attempts,
                               "text": step.title})
        toolbox = self.toolbox(workdir)

        def turn(conversation: list) -> None:
            self.session.save_messages(step_id, conversation)
            self._save()

        return run_step(self.model, toolbox, messages, max_iterations=self.config.max_iterations,
                        repeat_limit=self.config.repeat_limit, check_budget=self.check_budget,
                        on_reply=self.add_usage, on_turn=turn)

    def toolbox(self, workdir: Path) -> Toolbox:
        def tests() -> str:
            from clude.harness.report import concise
            from clude.harness.runner import run_tests

            verdict = run_tests(workdir, self.settings.test, env=self.test_env, sandbox=self.sandbox)
            if verdict.status.value == "interrupted":  # Ctrl-C reached the test run: stop the run
                raise KeyboardInterrupt()
            return concise(verdict)

        return Toolbox(workdir, env=self.env, shell_timeout_s=self.config.shell_timeout,
                       output_budget=self.config.output_budget, output_dir=self.session.output_dir,
                       test_runner=tests, sandbox=self.sandbox, pass_env=tuple(self.settings.test.pass_env))


def _all_steps(n: int) -> str:
    return "the plan's one step" if n == 1 else f"all {n} steps"
