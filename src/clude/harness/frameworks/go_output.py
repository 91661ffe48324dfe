"""Reading `go test -json` output (and the compiler's text among its lines) into facts: packages, tests,
build errors, each failure's own message or panic."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from clude.harness.inject.clude_events import is_project_file, json_object, one_line, relative
from clude.harness.verdict import Failure, RunFacts

# a failing test's own message: "    calc_test.go:12: got 3, want 4" (file relative to its package)
_MESSAGE = re.compile(r"^(?P<indent>\s+)(?P<file>[\w.\-/]+\.go):(?P<line>\d+): ?(?P<text>.*)$")
# the compiler or vet: "pkg/x.go:3:23: cannot use ..." (relative to the working directory)
_COMPILE = re.compile(r"^(?P<file>[^\s:]+\.go):(?P<line>\d+)(?::\d+)?: (?P<text>.+)$")
_HEADER = re.compile(r"^# (?P<pkg>\S+)")
_BUILD_FAIL = re.compile(r"^FAIL\s+(?P<pkg>\S+) \[(?P<what>build failed|setup failed)\]")
# a stack frame: "\t/abs/path/x_test.go:28 +0x2e"
_FRAME = re.compile(r"^\t(?P<file>/\S+\.go):(?P<line>\d+)(?: \+0x[0-9a-f]+)?$")
_NOISE = ("=== RUN", "=== PAUSE", "=== CONT", "=== NAME", "--- PASS", "--- FAIL", "--- SKIP")


@dataclass
class _Package:
    done: str | None = None  # pass | fail | skip
    output: list[str] = field(default_factory=list)


@dataclass
class GoTestRecord:
    package: str
    name: str
    action: str | None = None
    output: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.package}/{self.name}"


class Reader:
    """Folds the lines of a `go test -json` output file into packages, tests and build errors."""

    def __init__(self, root: Path):
        self.root = root
        self.module = _module_path(root)
        self.packages: dict[str, _Package] = {}
        self.tests: dict[tuple[str, str], GoTestRecord] = {}
        self.compile_errors: list[tuple[str, Failure]] = []  # (package header, error)
        self.build_failed: dict[str, str] = {}  # package -> "build failed" | "setup failed"
        self._header = ""

    def feed(self, line: str) -> None:
        ev = json_object(line) if line.startswith("{") else None
        if ev is None:
            self._text(line)
            return
        action = ev.get("Action")
        if action == "build-output":  # Go 1.24+: compiler output as events
            for part in str(ev.get("Output", "")).splitlines():
                self._text(part)
            return
        pkg = str(ev.get("Package") or "")
        if not pkg:
            return
        package = self.packages.setdefault(pkg, _Package())
        name = ev.get("Test")
        if not name:
            if action == "output":
                out = str(ev.get("Output", ""))
                package.output.append(out)
                self._text(out.rstrip("\n"))
            elif action in ("pass", "fail", "skip"):
                package.done = action
                if ev.get("FailedBuild"):
                    self.build_failed.setdefault(pkg, "build failed")
            return
        test = self.tests.setdefault((pkg, str(name)), GoTestRecord(pkg, str(name)))
        if action == "output":
            test.output.append(str(ev.get("Output", "")))
        elif action in ("pass", "fail", "skip"):
            test.action = action

    def _text(self, line: str) -> None:
        if m := _HEADER.match(line):
            self._header = m["pkg"]
        elif m := _BUILD_FAIL.match(line):
            self.build_failed[m["pkg"]] = m["what"]
        elif m := _COMPILE.match(line):
            path = os.path.normpath(self.root / m["file"])
            self.compile_errors.append((self._header, Failure(
                id=self._header or "build", file=relative(path, str(self.root)),
                line=int(m["line"]), kind="error", reason=one_line(m["text"]))))

    def package_dir(self, pkg: str) -> Path | None:
        if self.module and pkg == self.module:
            return self.root
        if self.module and pkg.startswith(self.module + "/"):
            return self.root / pkg[len(self.module) + 1:]
        return None

    def where(self, pkg: str, file: str) -> str:
        """A file named in a test's message (relative to its package), relative to the project."""
        base = self.package_dir(pkg)
        if base is not None:
            return relative(str(base / file), str(self.root))
        return file


def _module_path(root: Path) -> str | None:
    try:
        text = (root / "go.mod").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    m = re.search(r"(?m)^module\s+\"?([^\s\"]+)", text)
    return m.group(1) if m else None


def last_message(test: GoTestRecord) -> tuple[str | None, int | None, str]:
    """(file, line, text) of the last message a test logged; continuation lines joined."""
    found: list[tuple[str, int, list[str], int]] = []
    for chunk in test.output:
        for line in chunk.splitlines():
            if line.strip().startswith(_NOISE):
                continue
            if m := _MESSAGE.match(line):
                found.append((m["file"], int(m["line"]), [m["text"]], len(m["indent"])))
            elif found and line.strip() and len(line) - len(line.lstrip()) > found[-1][3]:
                found[-1][2].append(line.strip())
    if not found:
        return None, None, ""
    file, line, parts, _ = found[-1]
    if any(p.startswith("Error:") for p in parts):  # testify: keep from "Error:" on, drop "Test:"
        parts = parts[next(i for i, p in enumerate(parts) if p.startswith("Error:")):]
        parts = [p for p in parts if not p.startswith(("Test:", "Messages:"))]
    return file, line, one_line("\n".join(p for p in parts if p))


def panic_in(lines: list[str], root: Path) -> tuple[str | None, int | None, str] | None:
    """(file, line, "panic: ...") of a panic in this output, at its innermost project frame."""
    text = "".join(lines).splitlines()
    start = next((i for i, ln in enumerate(text) if ln.startswith(("panic: ", "fatal error: "))),
                 None)
    if start is None:
        return None
    reason = one_line(text[start].replace(" [recovered]", ""))
    for ln in text[start:]:
        m = _FRAME.match(ln)
        if m and is_project_file(m["file"], root):
            return relative(m["file"], str(root)), int(m["line"]), reason
    return None, None, reason


def read_go_output(text: str, root: Path, exit_code: int | None) -> RunFacts:
    """The facts of one `go test -json` run, from its whole output (stdout and stderr together)."""
    reader = Reader(root)
    for line in text.splitlines():
        reader.feed(line)
    facts = RunFacts()
    facts.started = bool(reader.packages or reader.build_failed or reader.compile_errors)
    for pkg, what in reader.build_failed.items():
        own = [f for h, f in reader.compile_errors if h.split(" ")[0] == pkg]
        first = (own or [f for _, f in reader.compile_errors] or [None])[0]
        facts.collection_errors.append(Failure(
            id=pkg, kind="error", file=first.file if first else None,
            line=first.line if first else None,
            reason=first.reason if first else f"{pkg}: {what}"))
    running: list[str] = []
    by_package: dict[str, list[GoTestRecord]] = {}
    for test in reader.tests.values():
        by_package.setdefault(test.package, []).append(test)
    for pkg, tests in by_package.items():
        running += _fold_package(facts, reader, pkg, tests)
    for pkg, package in reader.packages.items():
        if package.done == "fail" and pkg not in reader.build_failed and not any(
                f.id.startswith(pkg + "/") for f in facts.failures) and \
                not any(r.startswith(pkg + "/") for r in running):
            facts.collection_errors.append(_package_failure(pkg, package, reader))
    unfinished = [p for p, v in reader.packages.items() if v.done is None]
    facts.finished = facts.started and not unfinished and not running and exit_code is not None
    if running:
        facts.running = " or ".join(running[:3])
    return facts


def _fold_package(facts: RunFacts, reader: Reader, pkg: str,
                  tests: list[GoTestRecord]) -> list[str]:
    """Add one package's leaf tests to facts; return the ids of tests left running by a crash."""
    names = {t.name for t in tests}
    parents = {n.rsplit("/", 1)[0] for n in names if "/" in n}
    package = reader.packages.get(pkg, _Package())
    all_output = package.output + [o for t in tests for o in t.output]
    panic = panic_in(all_output, reader.root) if package.done == "fail" else None
    running: list[str] = []
    failed_below: set[str] = set()
    for test in sorted(tests, key=lambda t: -t.name.count("/")):  # children before parents
        is_parent = test.name in parents
        if test.action is None:
            if is_parent:
                continue
            if panic is None:
                running.append(test.id)
                continue
            test.action = "fail"
        if is_parent and not (test.action == "fail" and test.name not in failed_below):
            continue
        if test.action == "fail":
            head = test.name
            while "/" in head:
                head = head.rsplit("/", 1)[0]
                failed_below.add(head)
        outcome = {"pass": "passed", "fail": "failed", "skip": "skipped"}[test.action]
        facts.outcomes[test.id] = outcome
        if outcome == "failed":
            facts.failures.append(_failure(test, reader, panic))
    return running


def _package_failure(pkg: str, package: _Package, reader: Reader) -> Failure:
    """A package that failed outside any test (TestMain, init, a panic before the first test)."""
    panic = panic_in(package.output, reader.root)
    if panic is not None:
        return Failure(id=pkg, file=panic[0], line=panic[1], kind="error", reason=panic[2])
    lines = [ln.strip() for ln in "".join(package.output).splitlines()
             if ln.strip() and not ln.startswith(("FAIL", "ok ", "PASS"))]
    where = relative(str(reader.package_dir(pkg) or reader.root), str(reader.root))
    return Failure(id=pkg, kind="error", file=where,
                   reason=one_line(lines[-1]) if lines else "the package failed outside any test")


def _failure(test: GoTestRecord, reader: Reader, panic: tuple | None) -> Failure:
    own = panic_in(test.output, reader.root)
    if own is None and panic is not None and not last_message(test)[2]:
        own = panic
    if own is not None:
        file, line, reason = own
        return Failure(id=test.id, file=file, line=line, reason=reason)
    file, line, reason = last_message(test)
    return Failure(id=test.id, file=reader.where(test.package, file) if file else None,
                   line=line, reason=reason or "failed (no message)")
