"""Go: runs `go test -json` and reads its events (and the compiler's text among them) into facts."""

from __future__ import annotations

import re
from pathlib import Path

from clude.harness.frameworks.base import (Framework, Plan, RunContext, facts_from_output,
                                           listing, program_name)
from clude.harness.frameworks.go_output import read_go_output
from clude.harness.inject.clude_sample import sample
from clude.harness.verdict import RunFacts, Sample

# a line of `go test -list`: one top-level test, example or fuzz target
LISTED = re.compile(r"^(Test|Example|Fuzz)\w*$")
_LIST_PKG = re.compile(r"^(?:ok|\?|FAIL)\s+(?P<pkg>\S+)")


def runs_go_test(argv: list[str]) -> bool:
    return len(argv) > 1 and program_name(argv) == "go" and argv[1] == "test"


def _with_json(argv: list[str]) -> list[str]:
    argv = list(argv)
    if "-json" not in argv and "--json" not in argv:
        argv.insert(2, "-json")
    return argv


def without_run(argv: list[str]) -> tuple[list[str], str | None]:
    """argv without its -run flag, and that flag's value."""
    out: list[str] = []
    value = None
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "-args":
            out.extend(argv[i:])
            break
        if arg in ("-run", "--run", "-test.run") and i + 1 < len(argv):
            value, skip = argv[i + 1], True
        elif arg.startswith(("-run=", "--run=", "-test.run=")):
            value = arg.split("=", 1)[1]
        else:
            out.append(arg)
    return out, value


class GoTest(Framework):
    name = "go"
    marker = "go.mod"
    test_globs = ("*_test.go",)

    def recognizes(self, argv: list[str], root: Path) -> bool:
        return runs_go_test(argv)

    def detect(self, root: Path, env: dict[str, str]) -> list[str] | None:
        return ["go", "test", "./..."] if (root / "go.mod").is_file() else None

    def plan(self, argv: list[str], ctx: RunContext) -> Plan:
        if not runs_go_test(argv):  # gotestsum, make test, ...: JUnit if configured
            return super().plan(argv, ctx)
        results = ctx.run_dir / "go-test.json"  # a marker: the events are in the output itself
        if ctx.rate is None:
            return Plan(argv=_with_json(argv), results=results)
        listed = self._list(argv, ctx)
        if listed is None:  # the listing failed (a build error): the full run reports it
            return Plan(argv=_with_json(argv), results=results)
        ids = [f"{pkg}/{name}" for pkg, name in listed]
        chosen = sample(ids, ctx.seed, ctx.rate)
        picked = {i: n for i, (_, n) in zip(ids, listed)}
        names = sorted({picked[i] for i in chosen})
        plain, _ = without_run(argv)
        run = _with_json(plain)
        if names:
            run[2:2] = ["-run", "^(" + "|".join(names) + ")$"]
        return Plan(argv=run, results=results,
                    sample=Sample(rate=ctx.rate, seed=ctx.seed, selected=len(chosen),
                                  of=len(ids)))

    def _list(self, argv: list[str], ctx: RunContext) -> list[tuple[str, str]] | None:
        """(package, top-level test) pairs the command would run, or None when listing fails."""
        plain, run = without_run([a for a in argv if a not in ("-json", "--json")])
        pattern = run.split("/", 1)[0] if run else "."
        plain[2:2] = ["-list", pattern]
        lines = listing(plain, ctx)
        if lines is None:
            return None
        found: list[tuple[str, str]] = []
        pending: list[str] = []
        for line in lines:
            if LISTED.match(line):
                pending.append(line)
            elif m := _LIST_PKG.match(line):
                found.extend((m["pkg"], name) for name in pending)
                pending = []
        return found

    def read(self, plan: Plan, ctx: RunContext, exit_code: int | None, tail: str) -> RunFacts:
        if plan.results is None:
            return super().read(plan, ctx, exit_code, tail)
        if plan.results.name != "go-test.json":  # the JUnit XML of gotestsum (or alike)
            from clude.harness.frameworks.go_junit import read_gotestsum_junit
            return read_gotestsum_junit(plan.results, ctx.root)
        return facts_from_output(read_go_output, plan, ctx, exit_code, tail)
