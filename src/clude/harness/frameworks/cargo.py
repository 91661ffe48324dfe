"""Cargo: runs `cargo test` with libtest's JSON events (RUSTC_BOOTSTRAP=1), read per test target."""

from __future__ import annotations

import os
import re
from pathlib import Path

from clude.harness.frameworks.base import (Framework, Plan, RunContext, facts_from_output,
                                           listing, program_name)
from clude.harness.frameworks.cargo_doc import doc_test_line, doc_test_start
from clude.harness.inject.clude_events import is_project_file, json_object, one_line, relative
from clude.harness.inject.clude_sample import sample
from clude.harness.verdict import Failure, RunFacts, Sample

_RUNNING = re.compile(r"^\s*Running (?:unittests )?(?P<path>\S+)(?: \(|$)")
_DOCTESTS = re.compile(r"^\s*Doc-tests (?P<crate>\S+)")
_ERROR = re.compile(r"^error(?:\[(?P<code>E\d+)\])?: (?P<text>.+)$")
_ARROW = re.compile(r"^\s*--> (?P<file>[^\s:]+):(?P<line>\d+)(?::\d+)?")
# Rust 1.73+: "thread 'name' (id) panicked at src/lib.rs:10:9:\nmessage"
_PANIC = re.compile(r"thread '[^']*'(?: \(\d+\))? panicked at "
                    r"(?P<file>[^\n]+?):(?P<line>\d+):\d+:\n"
                    r"(?P<text>.*?)(?=\nstack backtrace:|\nnote: |\n*\Z)", re.S)
# before Rust 1.73: "thread 'name' panicked at 'message', src/lib.rs:10:9"
_OLD_PANIC = re.compile(r"thread '[^']*' panicked at '(?P<text>.*)', "
                        r"(?P<file>[^\n]+?):(?P<line>\d+):\d+", re.S)
_AT = re.compile(r" at (?P<file>\S+\.rs):(?P<line>\d+):\d+")
_LISTED = re.compile(r"^(?P<name>.+): test$")
# libtest options that take a value: everything else not starting with "-" is a name filter
_VALUED = {"--skip", "--test-threads", "--format", "--color", "--logfile", "-Z", "--shuffle-seed"}
_RESULTS = "cargo-test.json"  # a marker: the events are in the output itself


def runs_cargo_test(argv: list[str]) -> bool:
    return len(argv) > 1 and program_name(argv) == "cargo" and "test" in argv[1:3]


def _split(argv: list[str]) -> tuple[list[str], list[str]]:
    """(cargo's own arguments, the test binaries' arguments after `--`)."""
    if "--" in argv:
        i = argv.index("--")
        return list(argv[:i]), list(argv[i + 1:])
    return list(argv), []


def _binary_args(args: list[str], keep_filters: bool) -> list[str]:
    """The test binaries' arguments without any output format (clude sets its own)."""
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("--format", "-Z") and i + 1 < len(args):
            i += 2
            continue
        if arg.startswith("--format=") or arg in ("-q", "--quiet", "--list"):
            i += 1
            continue
        if arg in _VALUED and i + 1 < len(args):
            out += [arg, args[i + 1]]
            i += 2
            continue
        if arg.startswith("-") or keep_filters:
            out.append(arg)
        i += 1
    return out


def _json_argv(cargo: list[str], tests: list[str]) -> list[str]:
    if "--no-fail-fast" not in cargo:
        cargo = cargo + ["--no-fail-fast"]
    return cargo + ["--"] + tests + ["-Z", "unstable-options", "--format", "json"]


class CargoTest(Framework):
    name = "cargo"
    marker = "Cargo.toml"
    test_globs = ("tests/*.rs", "src/**/*.rs")

    def recognizes(self, argv: list[str], root: Path) -> bool:
        return runs_cargo_test(argv)

    def detect(self, root: Path, env: dict[str, str]) -> list[str] | None:
        return ["cargo", "test"] if (root / "Cargo.toml").is_file() else None

    def plan(self, argv: list[str], ctx: RunContext) -> Plan:
        if not runs_cargo_test(argv):
            return super().plan(argv, ctx)
        cargo, tests = _split(argv)
        results = ctx.run_dir / _RESULTS
        env = {"RUSTC_BOOTSTRAP": "1"}  # stable libtest prints JSON only with unstable options
        full = Plan(argv=_json_argv(cargo, _binary_args(tests, True)), env=env, results=results)
        if ctx.rate is None:
            return full
        listed = self._list(cargo, tests, ctx)
        if listed is None:  # the listing failed (it does not compile): the full run reports it
            return full
        ids = [test_id for test_id, _ in listed]
        chosen = set(sample(ids, ctx.seed, ctx.rate))
        names = list(dict.fromkeys(name for test_id, name in listed if test_id in chosen))
        run = _json_argv(cargo, _binary_args(tests, False) + ["--exact"] + names)
        return Plan(argv=run, env=env, results=results,
                    sample=Sample(rate=ctx.rate, seed=ctx.seed, selected=len(chosen),
                                  of=len(ids)))

    def _list(self, cargo: list[str], tests: list[str],
              ctx: RunContext) -> list[tuple[str, str]] | None:
        """(id, name) of every test the command would run, or None when listing fails."""
        argv = cargo + ["--"] + _binary_args(tests, True) + ["--list", "--format", "terse"]
        lines = listing(argv, ctx)
        if lines is None:
            return None
        found: list[tuple[str, str]] = []
        prefix = ""
        for line in lines:
            if target := _target(line):
                prefix = target
            elif m := _LISTED.match(line):
                found.append((_test_id(prefix, m["name"]), m["name"]))
        return found

    def read(self, plan: Plan, ctx: RunContext, exit_code: int | None, tail: str) -> RunFacts:
        if plan.results is None or plan.results.name != _RESULTS:
            return super().read(plan, ctx, exit_code, tail)
        return facts_from_output(read_cargo_output, plan, ctx, exit_code, tail)


def _target(line: str) -> str | None:
    """The prefix of the ids of the tests a cargo progress line introduces, if it is one."""
    if m := _RUNNING.match(line):
        return m["path"]
    if _DOCTESTS.match(line):
        return "doc"  # doc-test names already name their file: "src/lib.rs - add (line 3)"
    return None


def _test_id(prefix: str, name: str) -> str:
    if prefix == "doc" or not prefix:
        return name
    return f"{prefix}::{name}"


_KILLED = re.compile(r"process didn't exit successfully: .*\(signal: (\d+)")


def read_cargo_output(text: str, root: Path, exit_code: int | None) -> RunFacts:
    """The facts of one `cargo test` run with JSON test events, from its whole output."""
    facts = RunFacts()
    prefix = ""
    suites_open = 0
    started: dict[str, None] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if target := _target(line):
            prefix = target
            continue
        if m := _ERROR.match(line):
            error = _compile_error(m, lines[i + 1:i + 4], root)
            if error is not None:
                facts.collection_errors.append(error)
            continue
        ev = _event(line)
        if ev is None:
            continue
        kind, event = ev.get("type"), ev.get("event")
        if kind == "suite":
            facts.started = True
            suites_open += 1 if event == "started" else -1
            continue
        if kind != "test" or "name" not in ev:
            continue
        test_id = _test_id(prefix, str(ev["name"]))
        if event == "started":
            started[test_id] = None
            continue
        outcome = {"ok": "passed", "failed": "failed", "ignored": "skipped"}.get(str(event))
        if outcome is None:
            continue
        started.pop(test_id, None)
        facts.outcomes[test_id] = outcome
        if outcome == "failed":
            facts.failures.append(_failure(test_id, prefix, ev, root))
    if facts.collection_errors:
        facts.started = True
    if m := _KILLED.search(text):  # cargo: "process didn't exit successfully: `...` (signal: 6, ...)"
        facts.crash_signal = int(m.group(1))
    running = list(started)
    facts.finished = facts.started and suites_open <= 0 and not running and exit_code is not None
    if running:
        facts.running = " or ".join(running[:3])
    return facts


def _event(line: str) -> dict | None:
    return json_object(line) if line.startswith("{") else None


def _compile_error(m: re.Match, following: list[str], root: Path) -> Failure | None:
    """A compiler error with its location ("error[E0308]: ..." then " --> src/lib.rs:3:5")."""
    for line in following:
        if arrow := _ARROW.match(line):
            code = f"error[{m['code']}]" if m["code"] else "error"
            return Failure(id=_where(arrow["file"], root) or arrow["file"], kind="error",
                           file=_where(arrow["file"], root), line=int(arrow["line"]),
                           reason=one_line(f"{code}: {m['text']}"))
    return None


def _where(path: str, root: Path) -> str | None:
    """A source path the compiler or a panic names, relative to the project; None outside it."""
    full = os.path.normpath(path if os.path.isabs(path) else root / path)
    if not is_project_file(full, root):
        return None
    return relative(full, str(root))


def _failure(test_id: str, prefix: str, ev: dict, root: Path) -> Failure:
    stdout = str(ev.get("stdout") or "")
    message = str(ev.get("message") or "")
    file = line = None
    reason = ""
    m = _PANIC.search(stdout) or _OLD_PANIC.search(stdout)
    if m:
        file, line = _where(m["file"], root), int(m["line"])
        parts = [p.strip() for p in m["text"].splitlines() if p.strip()]
        reason = parts[0] + (": " + ", ".join(parts[1:]) if parts[1:] else "") if parts else ""
    if message:  # libtest's own verdict (should_panic), which the panic alone does not explain
        at = _AT.search(message)
        if at and file is None:
            file, line = _where(at["file"], root), int(at["line"])
        said = one_line(_AT.sub("", message))
        reason = said + (f" (panicked: {reason})" if reason and reason not in said else "")
    if not reason:
        errors = [ln for ln in stdout.splitlines() if ln.startswith("Error: ")]
        reason = errors[-1] if errors else "failed (no panic message)"
    if file is None:
        file, line = _frame(stdout, root)
    if file is None and prefix.endswith(".rs"):
        file = prefix
    doc = doc_test_start(test_id) if prefix == "doc" else None
    if doc is not None:
        file, line = _in_doc_test(root, doc, file, line, reason if m else "")
    return Failure(id=test_id, file=file, line=line, reason=one_line(reason))


def _in_doc_test(root: Path, doc: tuple[str, int], file: str | None, line: int | None, reason: str
                 ) -> tuple[str | None, int | None]:
    """A doc test's failure located in its source file (cargo_doc.py): a panic that names the doc
    test's own file is mapped from the generated program's line, one in a generated file (an edition
    2024 bundle) by what the panic names; without a panic (`reason` ""), at the doc test's fence."""
    doc_file, fence = doc
    if file is not None and file != doc_file:
        return file, line  # in other code of the project that the doc test called
    if not reason:
        return doc_file, fence
    try:
        source = (root / doc_file).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return doc_file, fence
    return doc_file, doc_test_line(source, fence, line if file == doc_file and line else None, reason)


def _frame(stdout: str, root: Path) -> tuple[str | None, int | None]:
    """The innermost project frame of a printed backtrace ("at ./src/lib.rs:14:21")."""
    for m in re.finditer(r"^\s+at (?P<file>\S+\.rs):(?P<line>\d+):\d+", stdout, re.M):
        file = _where(m["file"], root)
        if file is not None:
            return file, int(m["line"])
    return None, None
