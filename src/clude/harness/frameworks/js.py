"""jest and vitest: results from their built-in JSON reporters (vitest's JSON mirrors jest's)."""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath

from clude.harness.diagnostics import explain
from clude.harness.frameworks.base import Framework, Plan, RunContext, find_files, program_name
from clude.harness.frameworks.npm import (PACKAGE_MANAGERS, locate, message_lines, rel,
                                          script_run, steps_of, test_script, test_step)
from clude.harness.inject.clude_events import one_line
from clude.harness.inject.clude_sample import sample
from clude.harness.verdict import Failure, RunFacts, Sample

_STATUS = {"passed": "passed", "failed": "failed", "pending": "skipped", "skipped": "skipped",
           "todo": "skipped", "disabled": "skipped", "focused": "passed"}
_RUNNERS = ("npx", "pnpx", "bunx")


class _JsonRunner(Framework):
    """What jest and vitest share: how they are started, how their JSON results read."""

    program = ""

    def runs(self, words: list[str]) -> bool:
        """True when a command (as words) starts this runner, directly or through npx/exec."""
        if not words:
            return False
        if program_name(words) == self.program:
            return True
        if program_name(words) in _RUNNERS or (program_name(words) in PACKAGE_MANAGERS
                                                and words[1:2] == ["exec"]):
            rest = [w for w in words[1:] if w != "exec" and not w.startswith("-")]
            return bool(rest) and PurePosixPath(rest[0]).name == self.program
        return False

    def recognizes(self, argv: list[str], root: Path) -> bool:
        if self.runs(argv):
            return True
        run = script_run(argv, root)
        return run is not None and any(map(self.runs, steps_of(run[0], root)))

    def evidence(self, root: Path, env: dict[str, str]) -> list[str]:
        script = test_script(root) or ""
        step = next((s for s in steps_of(script, root) if self.runs(s)), None)
        return [f"package.json's test script runs `{' '.join(step)}`: {script!r}"] if step else []

    def detect(self, root: Path, env: dict[str, str]) -> list[str] | None:
        script = test_script(root)
        if script is not None and any(map(self.runs, steps_of(script, root))):
            return ["npm", "test"]
        return None

    def flags(self, results: Path) -> list[str]:
        raise NotImplementedError

    def test_files(self, root: Path) -> list[str]:
        raise NotImplementedError

    def file_filters(self, files: list[str]) -> list[str]:
        return files

    def prepare(self, words: list[str]) -> list[str]:
        return words

    def plan(self, argv: list[str], ctx: RunContext) -> Plan:
        if not self.recognizes(argv, ctx.root):  # a wrapper such as `make test`
            return super().plan(argv, ctx)
        results = ctx.run_dir / "results.json"
        flags = self.flags(results)
        env: dict[str, str] = {}
        words = list(argv)
        run = script_run(argv, ctx.root)
        step = None
        if run is not None:  # the script's test step, run alone (npm.test_step)
            step = test_step(run[0], ctx.root, self.runs)
            if step is None:
                extra = [] if "--" in argv or program_name(argv) == "yarn" else ["--"]
                return Plan(argv=list(argv) + extra + flags, results=results)
            env, words = dict(step.env), step.words + run[1]
            local = ctx.root / "node_modules" / ".bin" / self.program
            if program_name(words) == self.program and local.exists():
                words[0] = str(local)
        words = self.prepare(words)
        plan_sample = None
        if ctx.rate is not None:
            files = self.test_files(ctx.root)
            if files:
                chosen = sample(files, ctx.seed, ctx.rate)
                words += self.file_filters(chosen)
                plan_sample = Sample(rate=ctx.rate, seed=ctx.seed, selected=len(chosen),
                                     of=len(files))
        return Plan(argv=step.argv(words + flags) if step else words + flags, env=env, results=results,
                    sample=plan_sample)

    def read(self, plan: Plan, ctx: RunContext, exit_code: int | None, tail: str) -> RunFacts:
        if plan.results is None or plan.results.name != "results.json":
            return super().read(plan, ctx, exit_code, tail)
        try:
            data = json.loads(plan.results.read_bytes().decode("utf-8", "replace"))
        except (OSError, ValueError, AttributeError):
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("testResults"), list):
            if "No test files found" in tail:  # vitest writes no JSON when it finds nothing
                return RunFacts(started=True, finished=True, no_tests_exit=True)
            return RunFacts(framework_reason=explain(tail, plan.argv[0], str(ctx.root)))
        facts = RunFacts(started=True, finished=True)
        for suite in data["testResults"]:
            if isinstance(suite, dict):
                self._suite(suite, ctx.root, facts)
        if data.get("wasInterrupted"):
            facts.stopped_early = "the run was interrupted"
        return facts

    def _suite(self, suite: dict, root: Path, facts: RunFacts) -> None:
        file_abs = str(suite.get("name") or "")
        file = rel(file_abs, root) if file_abs else "?"
        assertions = [a for a in suite.get("assertionResults") or [] if isinstance(a, dict)]
        message = str(suite.get("message") or suite.get("failureMessage") or "")
        if suite.get("status") == "failed" and not assertions:
            where, line = locate(message, root, file_abs)
            facts.collection_errors.append(Failure(
                id=file, file=file, line=line if where == file else None, kind="error",
                reason=_suite_reason(message) or "the test file failed to run"))
            return
        for a in assertions:
            titles = [str(t) for t in a.get("ancestorTitles") or []] + [str(a.get("title", "?"))]
            test_id = _unique("::".join([file] + titles), facts.outcomes)
            outcome = _STATUS.get(str(a.get("status")), "error")
            facts.outcomes[test_id] = outcome
            if outcome not in ("failed", "error"):
                continue
            text = "\n".join(str(m) for m in a.get("failureMessages") or [])
            where, line = locate(text, root, file_abs)
            location = a.get("location") if isinstance(a.get("location"), dict) else {}
            if where != file and isinstance(location.get("line"), int):
                where, line = file, location["line"]
            facts.failures.append(Failure(
                id=test_id, file=where or file, line=line,
                kind="failure" if outcome == "failed" else "error",
                reason=_failure_reason(text) or f"status {a.get('status')!r}"))


def _unique(test_id: str, outcomes: dict) -> str:
    if test_id not in outcomes:
        return test_id
    n = 2
    while f"{test_id} [{n}]" in outcomes:
        n += 1
    return f"{test_id} [{n}]"


def _failure_reason(text: str) -> str:
    lines = message_lines(text)
    reason = one_line(" ".join(lines[:8]))
    return reason[len("Error: "):] if reason.startswith("Error: expect(") else reason


def _suite_reason(message: str) -> str:
    lines = [ln for ln in message_lines(message)
             if not ln.startswith("●") and not re.match(r"^(>?\s*\d+\s*\||\|)", ln)]
    return one_line(lines[0]) if lines else ""


def _is_jest_file(relpath: str) -> bool:
    p = PurePosixPath(relpath)
    if not re.search(r"\.[jt]sx?$", p.name):
        return False
    return "__tests__" in p.parts[:-1] or bool(re.search(r"[.](spec|test)\.[jt]sx?$", p.name))


def _is_vitest_file(relpath: str) -> bool:
    return bool(re.search(r"\.(test|spec)\.[cm]?[jt]sx?$", PurePosixPath(relpath).name))


class Jest(_JsonRunner):
    name = "jest"
    marker = "package.json"
    program = "jest"

    def flags(self, results: Path) -> list[str]:
        return ["--json", f"--outputFile={results}", "--testLocationInResults"]

    def test_files(self, root: Path) -> list[str]:
        return [f for f in find_files(root, ("*.js", "*.jsx", "*.ts", "*.tsx")) if _is_jest_file(f)]

    def file_filters(self, files: list[str]) -> list[str]:
        # jest takes regular expressions matched against absolute paths
        return [f"/{re.escape(f)}$" for f in files]


class Vitest(_JsonRunner):
    name = "vitest"
    marker = "package.json"
    program = "vitest"

    def flags(self, results: Path) -> list[str]:
        return ["--reporter=default", "--reporter=json", f"--outputFile.json={results}"]

    def prepare(self, words: list[str]) -> list[str]:
        """`vitest` alone watches; clude needs one run."""
        at = next(i for i, w in enumerate(words) if PurePosixPath(w).name == self.program)
        if words[at + 1:at + 2] not in (["run"], ["watch"], ["dev"]):
            return words[:at + 1] + ["run"] + words[at + 1:]
        if words[at + 1] in ("watch", "dev"):
            return words[:at + 1] + ["run"] + words[at + 2:]
        return words

    def test_files(self, root: Path) -> list[str]:
        return [f for f in find_files(root, ("*.js", "*.cjs", "*.mjs", "*.jsx", "*.ts", "*.cts",
                                             "*.mts", "*.tsx")) if _is_vitest_file(f)]
