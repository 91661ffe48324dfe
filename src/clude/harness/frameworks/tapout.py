"""tape and mocha: runners whose results are read as TAP from their own output (tape writes TAP always,
mocha with `--reporter tap`). A project's test script is looked into (scripts it runs followed) for the
step that runs one, and that step is run alone with the project's own installed runner: a lint step
before it or a pretty-printer it is piped into would hide the TAP. Counts are the runner's own: tape
counts assertions ("# pass 153"), mocha its tests."""

from __future__ import annotations

import re
from pathlib import Path

from clude.harness.diagnostics import explain
from clude.harness.frameworks.base import Framework, Plan, RunContext, program_name
from clude.harness.frameworks.node import tap_outcome
from clude.harness.frameworks.npm import (locate, message_lines, script_run, step_env, steps_of, test_script,
                                          test_step, unwrap)
from clude.harness.inject.clude_events import one_line
from clude.harness.tap import TapResult, parse_tap
from clude.harness.verdict import Failure, RunFacts

_SUMMARY = re.compile(r"^(tests|pass|fail|skip|todo|ok)\b")  # tape's closing comments
_NOT_OK = re.compile(r"^not ok (\d+)\b")
_ERROR_LINE = re.compile(r"^[\w.$]*(?:Error|Exception)\b[^:]*:")
_REPORTER_FLAGS = {"--reporter", "-R", "--reporter-option", "--reporter-options", "-O"}


class _TapOnStdout(Framework):
    programs: tuple[str, ...] = ()
    marker = "package.json"

    def runs(self, words: list[str]) -> bool:
        return bool(words) and program_name(words) in self.programs

    def _step(self, root: Path) -> list[str] | None:
        return next((s for s in steps_of(test_script(root), root) if self.runs(s)), None)

    def recognizes(self, argv: list[str], root: Path) -> bool:
        if self.runs(unwrap(list(argv))):
            return True
        run = script_run(argv, root)
        return run is not None and any(self.runs(s) for s in steps_of(run[0], root))

    def evidence(self, root: Path, env: dict[str, str]) -> list[str]:
        step = self._step(root)
        return [f"package.json's test script runs `{' '.join(step)}`: {test_script(root)!r} "
                "(clude runs that step alone, with the project's own runner)"] if step else []

    def detect(self, root: Path, env: dict[str, str]) -> list[str] | None:
        return ["npm", "test"] if self._step(root) else None

    def tap_args(self, words: list[str]) -> list[str]:
        return words

    def plan(self, argv: list[str], ctx: RunContext) -> Plan:
        env, words = step_env(list(argv))
        step = None
        if not self.runs(words):
            run = script_run(argv, ctx.root)
            step = test_step(run[0], ctx.root, self.runs) if run else None
            if run is None or step is None:  # a wrapper such as `make test`: its output is read as it comes
                return Plan(argv=list(argv), results=ctx.run_dir / "output.log")
            env, words = step.env, step.words + run[1]
        local = ctx.root / "node_modules" / ".bin" / program_name(words)
        if local.exists():
            words = [str(local), *words[1:]]
        words = self.tap_args(words)
        return Plan(argv=step.argv(words) if step else words, env=env, results=ctx.run_dir / "output.log")

    def read(self, plan: Plan, ctx: RunContext, exit_code: int | None, tail: str) -> RunFacts:
        try:
            text = (ctx.run_dir / "output.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        doc = parse_tap(text)
        facts = RunFacts(started=bool(doc.in_order) or doc.plan is not None, finished=doc.complete)
        if not facts.started:
            facts.framework_reason = explain(tail, plan.argv[0], str(ctx.root))
            return facts
        if doc.bailed_out:
            facts.stopped_early = f"bailed out: {doc.bailed_out}"
        errors = _error_texts(text)
        seen: dict[str, int] = {}
        test = ""
        for result in doc.in_order:
            test = next((c for c in reversed(result.comments) if not _SUMMARY.match(c)), test)
            test_id = self.test_id(test, result)
            seen[test_id] = ordinal = seen.get(test_id, 0) + 1
            if ordinal > 1:
                test_id = f"{test_id} #{ordinal}"
            outcome = tap_outcome(result)
            facts.outcomes[test_id] = outcome
            if outcome == "failed":
                diag = result.diag
                file, line = locate(f"{diag.get('at') or ''}\n{diag.get('stack') or ''}\n"
                                    f"{errors.get(result.number, '')}", ctx.root, None)
                facts.failures.append(Failure(id=test_id, file=file, line=line, kind="failure",
                                              reason=self.reason(result, errors.get(result.number, ""))))
        return facts

    def test_id(self, test: str, result: TapResult) -> str:
        return result.name

    def reason(self, result: TapResult, error: str) -> str:
        """The error's own line ("AssertionError [ERR_ASSERTION]: ...", which mocha prints after the
        message), else its message."""
        lines = message_lines(error)
        named = next((ln for ln in lines if _ERROR_LINE.match(ln)), None)
        return one_line(named or " ".join(lines) or result.name)


class TapeTest(_TapOnStdout):
    name = "tape"
    programs = ("tape",)

    def test_id(self, test: str, result: TapResult) -> str:
        """The test's name (its `# name` comment) and the assertion's."""
        return f"{test} :: {result.name}" if test else result.name

    def reason(self, result: TapResult, error: str) -> str:
        diag = result.diag
        if "expected" in diag or "actual" in diag:
            return one_line(f"{result.name}: expected {diag.get('expected')!s}, got {diag.get('actual')!s}")
        return super().reason(result, error)


class MochaTest(_TapOnStdout):
    name = "mocha"
    programs = ("mocha", "_mocha")

    def tap_args(self, words: list[str]) -> list[str]:
        """The command with mocha's TAP reporter in place of any reporter it names."""
        kept, i = [words[0]], 1
        while i < len(words):
            name = words[i].split("=", 1)[0]
            if name in _REPORTER_FLAGS:
                i += 1 if "=" in words[i] else 2
                continue
            kept.append(words[i])
            i += 1
        return kept + ["--reporter", "tap"]


def _error_texts(text: str) -> dict[int, str]:
    """The indented lines after each `not ok N` that are not a YAML block (mocha's error and stack)."""
    out: dict[int, str] = {}
    number = None
    for line in text.splitlines():
        m = _NOT_OK.match(line)
        if m:
            number = int(m.group(1))
            out[number] = ""
        elif number is not None and line.startswith("  ") and line.strip() not in ("---", "..."):
            out[number] += line.strip() + "\n"
        else:
            number = None
    return out
