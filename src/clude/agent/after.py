"""The run's VERIFYING and RECOVERING states: the tests judge the work (unless the agent changed them),
and a failure becomes a retry, a fix step, a new plan or the end. The other half of AgentRun (loop.py)."""

from __future__ import annotations

from clude.agent.plan import Plan
from clude.agent.prompts import render
from clude.agent.protect import changes
from clude.agent.session import Recovery, StepRecord
from clude.agent.states import State


class AfterSteps:
    """What AgentRun does once steps are done: verify, and recover from a failure."""

    # VERIFYING -------------------------------------------------------------------------------
    def _verifying(self) -> None:
        from clude.harness.report import concise
        from clude.harness.runner import run_tests

        remaining = [s for s, r in self.state.steps.items() if r.status != "done"]
        unverified = self.state.options.get("unverified")
        if unverified:
            if remaining:
                return self._go(State.EXECUTING, f"not verified ({unverified}); {len(remaining)} steps to go")
            return self._go(State.DONE, f"all steps done; not verified: {unverified}")
        refused = self._test_changes()
        if refused:
            self.state.recovery = Recovery(kind="verify_failed", reason=refused)
            return self._go(State.RECOVERING, "verification refused: the tests or their configuration changed")
        verdict = run_tests(self.root, self.settings.test, env=self.test_env, sandbox=self.sandbox)
        if verdict.status.value == "interrupted":  # Ctrl-C or SIGTERM reached the test run
            raise KeyboardInterrupt()
        self.state.verdict = verdict.public()
        report = concise(verdict)
        self.listener("verdict", {"verdict": self.state.verdict, "report": report})
        self.session.log("verification: " + report.replace("\n", " | "))
        if verdict.status.value == "passed":
            if remaining:
                return self._go(State.EXECUTING, f"tests pass ({verdict.counts.summary()}); "
                                                 f"{len(remaining)} steps to go")
            return self._go(State.DONE, f"all steps done and the tests pass ({verdict.counts.summary()})")
        just_done = [s for s in self.state.just_done if s in self.state.steps] if remaining else []
        for step_id in just_done:  # each_step: the steps just done are what broke the tests
            self.state.steps[step_id].status = "failed"
            self.state.steps[step_id].reason = render("verify_failed", report=report)
        if just_done:
            self.state.recovery = Recovery(kind="step_failed", step=just_done[0], reason=report)
        else:
            self.state.recovery = Recovery(kind="verify_failed", reason=report)
        self._go(State.RECOVERING, f"verification {verdict.status.value}: {verdict.counts.summary()}")

    def _test_changes(self) -> str | None:
        """Why the tests cannot judge this work: the agent changed them (or what configures them) and
        the run does not allow it. With [agent] allow_tests the changed tests are said, not refused."""
        if self.state.protected is None:
            return None
        from clude.harness.runner import tests_python

        touched = changes(self.root, self.state.protected,
                          python=tests_python(self.root, self.settings.test, self.test_env))
        if not touched:
            return None
        listed = "; ".join(f"{p.path} ({p.why})" for p in touched[:12])
        if self.config.allow_tests:
            self.session.log(f"verification: the agent changed tests: {listed}")
            self.listener("note", {"text": f"the agent changed tests: {listed}"})
            return None
        return render("tests_changed", files=listed)

    # RECOVERING ------------------------------------------------------------------------------
    def _recovering(self) -> None:
        from clude.agent.recovery import decide_recovery

        decision = decide_recovery(self.state, self.config)
        self.session.log(f"recovery: {decision.action}: {decision.reason}")
        if decision.action == "retry":
            for step_id in decision.steps:
                self.state.steps[step_id].status = "pending"
            return self._go(State.EXECUTING, decision.reason)
        if decision.action == "fix":
            self._add_fix_step(self.state.recovery.reason)
            return self._go(State.EXECUTING, decision.reason)
        if decision.action == "replan":
            self.state.replans += 1
            self.state.recovery.reason = decision.reason  # what the planner is told
            return self._go(State.PLANNING, decision.reason)
        if decision.action == "continue":  # the failed steps stay failed; the rest goes on
            for step_id in decision.fail:
                self.state.steps[step_id].status = "failed"
            self.state.recovery = None
            return self._go(State.EXECUTING, decision.reason)
        self._block("failed", decision.reason)

    def _add_fix_step(self, report: str) -> None:
        self.state.verify_fixes += 1
        plan = self.plan
        fix_id = f"fix-{self.state.verify_fixes}"
        while fix_id in self.state.steps:
            fix_id += "x"
        data = plan.model_dump()
        data["steps"].append({"id": fix_id, "title": render("fix_step_title"),
                              "description": render("fix_step_description", report=report),
                              "dependencies": [s.id for s in plan.steps
                                               if self.state.steps[s.id].status == "done"]})
        self.state.plan = Plan.model_validate(data).model_dump()
        self.state.steps[fix_id] = StepRecord()
        self.state.recovery = None
