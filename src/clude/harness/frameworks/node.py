"""`node --test`: results from node's TAP reporter, each test placed in its file by a tiny locator reporter."""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path, PurePosixPath

from clude.harness.diagnostics import explain
from clude.harness.frameworks.base import Framework, Plan, RunContext, find_files, program_name
from clude.harness.frameworks.npm import (frames, is_project_file, locate, rel, script_run,
                                          steps_of, test_script, test_step)
from clude.harness.inject.clude_events import json_object, one_line
from clude.harness.inject.clude_sample import sample
from clude.harness.tap import TapDocument, TapResult, parse_tap, unescape
from clude.harness.verdict import Failure, RunFacts, Sample

# Node's TAP reporter leaves out where a passing test lives. This reporter, run beside it on the same
# event stream, writes one line per result (in TAP's order) with its file, and one per test started.
LOCATOR_JS = """\
export default async function* cludeLocator(source) {
  for await (const { type, data } of source) {
    if (type !== 'test:dequeue' && type !== 'test:pass' && type !== 'test:fail') continue;
    const ev = type === 'test:dequeue' ? 'begin' : 'result';
    yield JSON.stringify({ ev, name: data.name, nesting: data.nesting, file: data.file ?? null,
                           line: data.line ?? null }) + '\\n';
  }
}
"""
# node options that take their value as the next word
_VALUED = {"-r", "--require", "--import", "--loader", "--experimental-loader", "-C", "--conditions",
           "--test-name-pattern", "--test-skip-pattern", "--test-concurrency", "--test-timeout",
           "--test-reporter", "--test-reporter-destination", "--env-file", "--input-type",
           "--test-shard", "--watch-path", "--stack-size", "--title"}
_REPORTER_FLAGS = ("--test-reporter", "--test-reporter-destination")
_JS = (".js", ".cjs", ".mjs")
# failure types that mean the test's own code failed; every other one is an error around it
_TEST_FAILURES = {"testCodeFailure"}


def runs_node_test(words: list[str]) -> bool:
    return bool(words) and program_name(words) in ("node", "nodejs") and "--test" in words


def is_node_test_file(relpath: str) -> bool:
    """Node's default test file patterns: *.test.js, *-test.js, *_test.js, test-*.js, test.js (and
    .cjs/.mjs), and any JS file under a `test` directory."""
    p = PurePosixPath(relpath)
    if p.suffix not in _JS:
        return False
    stem = p.name[: -len(p.suffix)]
    return (stem == "test" or stem.endswith((".test", "-test", "_test")) or stem.startswith("test-")
            or "test" in p.parts[:-1])


def node_test_files(root: Path, positionals: list[str]) -> list[str]:
    """The test files node would run for these positional arguments, relative to root."""
    if not positionals:
        return find_files(root, is_node_test_file)
    files: list[str] = []
    for arg in positionals:
        path = root / arg
        if path.is_dir():
            files += find_files(root, is_node_test_file, path)
        elif path.is_file():
            files.append(rel(str(path.resolve()), root))
        else:
            files += sorted(rel(p, root) for p in glob.glob(str(path), recursive=True)
                            if os.path.isfile(p))
    return list(dict.fromkeys(files))


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """(node and its options without any reporter flags, positional file arguments)."""
    options, positionals = [argv[0]], []
    i = 1
    while i < len(argv):
        word = argv[i]
        name = word.split("=", 1)[0]
        takes_next = word in _VALUED and i + 1 < len(argv)
        if name in _REPORTER_FLAGS:
            i += 2 if takes_next else 1
            continue
        if word.startswith("-"):
            options += argv[i:i + 2] if takes_next else [word]
            i += 2 if takes_next else 1
        else:
            positionals.append(word)
            i += 1
    return options, positionals


def _through_environment(argv: list[str], ctx: RunContext, flags: list[str], tap: Path) -> Plan:
    """Hand the reporters to node through NODE_OPTIONS, for a command clude cannot take apart."""
    quoted = " ".join(f'{f.split("=", 1)[0]}="{f.split("=", 1)[1]}"' for f in flags)
    old = ctx.env.get("NODE_OPTIONS", "")
    return Plan(argv=list(argv), env={"NODE_OPTIONS": f"{old} {quoted}".strip()}, results=tap)


class NodeTest(Framework):
    name = "node"
    marker = "package.json"

    def recognizes(self, argv: list[str], root: Path) -> bool:
        if runs_node_test(argv):
            return True
        run = script_run(argv, root)
        return run is not None and any(map(runs_node_test, steps_of(run[0], root)))

    def evidence(self, root: Path, env: dict[str, str]) -> list[str]:
        script = test_script(root)
        if script is not None:
            step = next((s for s in steps_of(script, root) if runs_node_test(s)), None)
            return [f"package.json's test script runs `{' '.join(step)}`: {script!r}"] if step else []
        return super().evidence(root, env)

    def detect(self, root: Path, env: dict[str, str]) -> list[str] | None:
        script = test_script(root)
        if script is not None:
            return ["npm", "test"] if any(map(runs_node_test, steps_of(script, root))) else None
        files = find_files(root, is_node_test_file)
        for f in files[:50]:
            try:
                head = (root / f).read_text(encoding="utf-8", errors="replace")[:4000]
            except OSError:
                continue
            if "node:test" in head:
                return ["node", "--test"]
        return None

    def plan(self, argv: list[str], ctx: RunContext) -> Plan:
        tap, events = ctx.run_dir / "results.tap", ctx.run_dir / "locations.jsonl"
        locator = ctx.run_dir / "clude_locator.mjs"
        locator.write_text(LOCATOR_JS, encoding="utf-8")
        flags = ["--test-reporter=spec", "--test-reporter-destination=stdout",
                 "--test-reporter=tap", f"--test-reporter-destination={tap}",
                 f"--test-reporter={locator}", f"--test-reporter-destination={events}"]
        env: dict[str, str] = {}
        node_argv = list(argv)
        run = script_run(argv, ctx.root)
        if run is None and not runs_node_test(argv):
            return _through_environment(argv, ctx, flags, tap)  # a wrapper such as `make test`
        step = None
        if run is not None:  # the script's node --test step, run alone (npm.test_step)
            step = test_step(run[0], ctx.root, runs_node_test)
            if step is None:
                return _through_environment(argv, ctx, flags, tap)  # a script clude cannot take apart
            env, node_argv = dict(step.env), step.words + run[1]
        options, positionals = split_argv(node_argv)
        plan_sample = None
        if ctx.rate is not None:
            files = node_test_files(ctx.root, positionals)
            if files:
                positionals = sample(files, ctx.seed, ctx.rate)
                plan_sample = Sample(rate=ctx.rate, seed=ctx.seed, selected=len(positionals),
                                     of=len(files))
        words = options + flags + positionals
        return Plan(argv=step.argv(words) if step else words, env=env, results=tap, sample=plan_sample)

    def read(self, plan: Plan, ctx: RunContext, exit_code: int | None, tail: str) -> RunFacts:
        try:
            doc = parse_tap(plan.results.read_bytes()) if plan.results else TapDocument()
        except OSError:
            doc = TapDocument()
        located, begins = _read_locations(plan.results.parent / "locations.jsonl"
                                          if plan.results else None)
        facts = RunFacts(started=doc.version is not None or bool(doc.in_order),
                         finished=doc.complete)
        if not facts.started:
            facts.framework_reason = explain(tail, plan.argv[0], str(ctx.root))
            return facts
        if doc.bailed_out:
            facts.stopped_early = f"bailed out: {doc.bailed_out}"
        _Reader(ctx.root, doc, located, facts).read()
        facts.running = _running(begins, ctx.root)
        return facts


def _read_locations(path: Path | None) -> tuple[list[dict], list[dict]]:
    results: list[dict] = []
    events: list[dict] = []
    try:
        text = path.read_bytes().decode("utf-8", "replace") if path else ""
    except OSError:
        text = ""
    for line in text.splitlines():
        ev = json_object(line)
        if ev is not None:
            events.append(ev)
            if ev.get("ev") == "result":
                results.append(ev)
    return results, events


def _running(events: list[dict], root: Path) -> str | None:
    """The id of the last test that started and has no result (what a timeout interrupted)."""
    names: dict[str, list[str]] = {}
    open_: dict[tuple, str] = {}
    for ev in events:
        file, nesting, name = ev.get("file"), ev.get("nesting"), str(ev.get("name"))
        if not isinstance(nesting, int) or not file:
            continue
        key = (file, nesting, name)
        if ev.get("ev") == "begin":
            stack = names.setdefault(file, [])
            del stack[nesting:]
            stack += [""] * (nesting - len(stack)) + [name]
            if not (nesting == 0 and name == file):
                open_.pop(key, None)
                open_[key] = "::".join([rel(file, root)] + [s for s in stack if s])
        else:
            open_.pop(key, None)
    return next(reversed(open_.values()), None) if open_ else None


class _Reader:
    """Turns a TAP document and the aligned locations into outcomes, failures and collection errors."""

    def __init__(self, root: Path, doc: TapDocument, located: list[dict], facts: RunFacts):
        self.root, self.doc, self.facts = root, doc, facts
        self.files: dict[int, str | None] = {}
        self.seen: dict[str, int] = {}  # how many tests had each id so far
        aligned = True
        for i, result in enumerate(doc.in_order):
            loc = located[i] if i < len(located) else None
            aligned = aligned and loc is not None and loc.get("name") == result.name \
                and loc.get("nesting") == result.depth
            self.files[id(result)] = loc.get("file") if aligned else _location_file(result)

    def read(self) -> None:
        reported = {self.files[id(r)] for r in self.doc.in_order if not self._is_file(r)}
        for result in self.doc.in_order:
            if self._is_file(result):
                self._file_result(result, result.name in reported)
            elif result.children:
                if not result.ok and result.diag.get("failureType") != "subtestsFailed" \
                        and result.directive is None:
                    self._outcome(result, "error")  # a hook or the suite itself failed
            elif result.diag.get("type") == "suite":
                if not result.ok and result.directive is None:
                    self._outcome(result, "error")
            else:
                self._outcome(result, tap_outcome(result))

    def _is_file(self, result: TapResult) -> bool:
        return result.depth == 0 and os.path.isabs(result.name) and not result.path and \
            (self.files.get(id(result)) == result.name or os.path.isfile(result.name))

    def _id(self, result: TapResult) -> str:
        names = [p for p in result.path if p] + [result.name]
        file = self.files.get(id(result))
        return "::".join(([rel(file, self.root)] if file else []) + names)

    def _outcome(self, result: TapResult, outcome: str) -> None:
        test_id = self._id(result)
        self.seen[test_id] = ordinal = self.seen.get(test_id, 0) + 1
        if ordinal > 1:  # node lets tests of one suite share a name: each keeps its own id and count
            test_id = f"{test_id} #{ordinal}"
        self.facts.outcomes[test_id] = outcome
        if outcome in ("failed", "error"):
            file, line = self._where(result)
            self.facts.failures.append(Failure(
                id=test_id, file=file, line=line, kind="failure" if outcome == "failed" else "error",
                reason=_reason(result)))

    def _where(self, result: TapResult) -> tuple[str | None, int | None]:
        test_file = self.files.get(id(result))
        stack = str(result.diag.get("stack") or "")
        file, line = locate(stack, self.root, test_file)
        if file is not None and (test_file is None or file == rel(test_file, self.root)):
            return file, line
        loc_file, loc_line = locate(str(result.diag.get("location") or ""), self.root, test_file)
        if loc_file is not None:
            return loc_file, loc_line
        return file or (rel(test_file, self.root) if test_file else None), line

    def _file_result(self, result: TapResult, had_tests: bool) -> None:
        """A whole test file reported as one result: node does this when its process failed."""
        if result.ok:
            return  # a file without tests (a helper); node reports it as passing
        file = rel(result.name, self.root)
        comments = "\n".join(unescape(c) for c in result.comments)
        error = _error_line(comments).replace(f"{self.root}/", "")
        code, sig = result.diag.get("exitCode"), result.diag.get("signal")
        if not had_tests and error:
            line = next((n for p, n in _frames_in(comments, self.root) if p == result.name), None)
            self.facts.collection_errors.append(Failure(id=file, file=file, line=line, kind="error",
                                                        reason=error))
            return
        how = f"was killed by {sig}" if sig else f"exited with code {code}"
        why = f"the test file's process {how} before reporting all its tests"
        self.facts.outcomes[file] = "error"
        self.facts.failures.append(Failure(id=file, file=file, line=None, kind="error",
                                           reason=one_line(f"{why}: {error}" if error else why)))


def _frames_in(text: str, root: Path) -> list[tuple[str, int]]:
    return [(p, n) for p, n in frames(text, root) if is_project_file(p, root)]


def _error_line(text: str) -> str:
    """The line of a file's stderr that names the error it died of ("SyntaxError: ...")."""
    for line in text.splitlines():
        if re.match(r"^[\w.]*(Error|Exception)\b.*:", line.strip()):
            return one_line(line)
    return ""


def _location_file(result: TapResult) -> str | None:
    location = str(result.diag.get("location") or "")
    path = location.rsplit(":", 2)[0] if location.count(":") >= 2 else None
    return path[len("file://"):] if path and path.startswith("file://") else path


def tap_outcome(result: TapResult) -> str:
    """A TAP result's outcome: skip and todo directives, ok, and a failure of the test's code or not."""
    if result.directive == "skip":
        return "skipped"
    if result.directive == "todo":
        return "xpassed" if result.ok else "xfailed"
    if result.ok:
        return "passed"
    return "failed" if result.diag.get("failureType", "testCodeFailure") in _TEST_FAILURES \
        else "error"


def _reason(result: TapResult) -> str:
    diag = result.diag
    message = one_line(str(diag.get("error") or ""))
    name = diag.get("name")
    if isinstance(name, str) and name != "AssertionError" and not message.startswith(name):
        message = f"{name}: {message}" if message else name
    return message or str(diag.get("failureType") or "failed without a message")


