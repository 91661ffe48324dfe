"""The tests part of the pre-flight checks: the test command is found, its program exists, and its tests
can be collected without running them (pytest --collect-only, a unittest loader, go test -list)."""

from __future__ import annotations

import json
import re
import shlex
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from clude.config.settings import TestConfig

if TYPE_CHECKING:
    from clude.doctor.check import Check

COLLECT_TIMEOUT_S = 120.0  # collecting the tests gives up after this (or [test] timeout, if shorter)

_PYTEST_COUNT = re.compile(r"(?m)^(?:collected )?(\d+)(?:/\d+)? tests? collected")
_PYTEST_NONE = re.compile(r"(?m)^no tests collected")
_PYTEST_ERROR_HEADER = re.compile(r"(?m)^_+ ERROR collecting (?P<file>\S+) _+$")
_PYTEST_ERRORS = re.compile(r"(\d+) errors? during collection|(\d+) errors? in ")
_E_LINE = re.compile(r"^E\s+(?P<text>.*\S)")
_FILE_LINE = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')
_UNITTEST_MARK = "CLUDE-UNITTEST-LIST "

# Loads the suite exactly as `python -m unittest ARGS` would, counts it, and runs nothing.
_UNITTEST_LISTER = r"""
import json, sys, unittest
class Lister(unittest.TestProgram):
    def runTests(self):
        pass
loader = unittest.TestLoader()
program = Lister(module=None, argv=["python -m unittest"] + sys.argv[1:], exit=False, testLoader=loader)
def walk(suite):
    for test in suite:
        if isinstance(test, unittest.TestSuite):
            yield from walk(test)
        else:
            yield test
tests = list(walk(program.test))
failed = [getattr(t, "_testMethodName", t.id()) for t in tests if type(t).__name__ == "_FailedTest"]
errors = [e.strip().splitlines()[-1] for e in getattr(loader, "errors", []) if e.strip()]
print(%r + json.dumps({"count": len(tests) - len(failed), "failed": failed, "errors": errors}))
""" % _UNITTEST_MARK


def tests_check(root: Path, config: TestConfig, env: Mapping[str, str], *, strict: bool) -> Check:
    """The test command is found and can start, and its tests can be collected. `strict` (a team):
    no tests at all is an ERROR, since workers could verify nothing; for one agent it is said in an OK."""
    from clude.harness.process import MissingProgram, resolve_program
    from clude.harness.runner import choose, evidence
    from clude.doctor.check import Check

    env = {**env, **config.env}
    chosen = choose(root, config, None, env)
    if isinstance(chosen, str):
        return _no_tests(chosen, strict)
    adapter, argv = chosen
    shown = shlex.join(argv)
    why = "; ".join(evidence(root, config, None, adapter, env)) or "detected"
    try:
        program = resolve_program(argv, root, env)
    except MissingProgram as error:
        return Check("tests", False, f"the test command `{shown}` cannot start: {error}")
    if strict:
        untracked = _not_in_git(root, argv[0])
        if untracked:
            return Check("tests", False, f"the test command `{shown}` starts {argv[0]}, which {untracked}: "
                                         f"the workers' clones will not have it; give its absolute path "
                                         f"({program}) or a program on PATH in [test] command")
    timeout = min(config.timeout, COLLECT_TIMEOUT_S)
    collect = {"pytest": _pytest, "unittest": _unittest, "go": _go}.get(adapter.name)
    if collect is None or not adapter.recognizes(argv, root):
        return Check("tests", True, f"`{shown}` ({adapter.name}: {why}): {program} found; its tests are "
                                    "not collected beforehand")
    found = collect(argv, root, env, timeout)
    if isinstance(found, str):
        return Check("tests", False, f"the tests of `{shown}` cannot be collected: {found}")
    if found == 0:
        return _no_tests(f"`{shown}` collects no tests: add some, or fix [test] command in clude.toml",
                         strict)
    return Check("tests", True, f"`{shown}` ({adapter.name}: {why}): {found} tests collected")


def _not_in_git(root: Path, program: str) -> str | None:
    """Why a program given by a relative path will be missing in a clone of the project (it is not
    committed: a virtualenv, say), or None."""
    import os

    from clude.gitcli import GitError, run_git

    if os.sep not in program or os.path.isabs(program):
        return None
    try:
        done = run_git(root, "ls-files", "--error-unmatch", "--", program, ok=(0, 1), timeout=60)
    except GitError:
        return None  # not a repository: the git check says so
    return None if done.returncode == 0 else "is not committed to git"


def _no_tests(why: str, strict: bool) -> Check:
    from clude.doctor.check import Check

    if strict:
        return Check("tests", False, f"{why}; without tests the workers could verify nothing")
    return Check("tests", True, f"WARNING {why}; the work will not be verified")


def _run(argv: list[str], root: Path, env: Mapping[str, str], timeout: float) -> tuple[int | None, str, bool]:
    """(exit code, output, timed out) of argv run in its own process group."""
    from clude.harness.process import run_group

    with tempfile.TemporaryDirectory(prefix="clude-doctor-") as scratch:
        out = Path(scratch) / "output.log"
        try:
            done = run_group(argv, root, dict(env), out, timeout)
        except OSError as error:
            return None, f"{argv[0]}: {error.strerror or error}", False
        return done.exit_code, out.read_text(encoding="utf-8", errors="replace"), done.timed_out


def _pytest(argv: list[str], root: Path, env: Mapping[str, str], timeout: float) -> int | str:
    """The number of tests pytest collects, or why it cannot collect them (the first error)."""
    from clude.harness.diagnostics import explain

    code, output, timed_out = _run([*argv, "--collect-only", "--verbosity=-1"], root, env, timeout)
    if timed_out:
        return f"collecting them took more than {timeout:g} s"
    if code is None:
        return output
    header = _PYTEST_ERROR_HEADER.search(output)
    if header:
        errors = _PYTEST_ERRORS.search(output)
        count = next((g for g in errors.groups() if g), "1") if errors else "1"
        return f"{_collect_error(output, header)} ({count} error{'s' if count != '1' else ''} during collection)"
    if code not in (0, 5):
        return explain(output[-64 * 1024:], argv[0], str(root))
    if _PYTEST_NONE.search(output):
        return 0
    counted = _PYTEST_COUNT.search(output)
    if counted:
        return int(counted.group(1))
    return sum(1 for line in output.splitlines() if "::" in line)


def _collect_error(output: str, header: re.Match) -> str:
    """`collecting FILE[:LINE] failed: the exception`, from pytest's first ERROR collecting block."""
    block = output[header.end():]
    end = re.search(r"(?m)^(_+ ERROR collecting |=+ )", block)
    lines = block[:end.start() if end else len(block)].splitlines()
    said = [m["text"] for m in map(_E_LINE.match, lines) if m]
    where = header["file"]
    located = next((m for m in map(_FILE_LINE.search, said) if m), None)
    if located and located["file"].endswith(where):
        where = f"{where}:{located['line']}"
    reason = said[-1] if said else next((line.strip() for line in lines if line.strip()), "no details")
    return f"collecting {where} failed: {reason}"


def _unittest(argv: list[str], root: Path, env: Mapping[str, str], timeout: float) -> int | str:
    """The number of tests the unittest command would run, loaded in its interpreter without running."""
    from clude.harness.diagnostics import explain

    args = argv[argv.index("-m") + 2:] if "-m" in argv else argv[1:]
    code, output, timed_out = _run([argv[0], "-c", _UNITTEST_LISTER, *args], root, env, timeout)
    if timed_out:
        return f"loading them took more than {timeout:g} s"
    line = next((line for line in reversed(output.splitlines()) if line.startswith(_UNITTEST_MARK)), None)
    if code != 0 or line is None:
        return output if code is None else explain(output[-64 * 1024:], argv[0], str(root))
    found = json.loads(line[len(_UNITTEST_MARK):])
    if found["failed"]:
        reason = found["errors"][0] if found["errors"] else "it cannot be imported"
        return f"loading {found['failed'][0]} failed: {reason} ({len(found['failed'])} failed to load)"
    return int(found["count"])


def _go(argv: list[str], root: Path, env: Mapping[str, str], timeout: float) -> int | str:
    """The number of top-level tests `go test -list .` finds in the packages the command names."""
    from clude.harness.diagnostics import explain

    from clude.harness.frameworks.go import LISTED, without_run

    listing, _ = without_run([word for word in argv if word not in ("-json", "--json")])
    listing[2:2] = ["-list", "."]
    code, output, timed_out = _run(listing, root, env, timeout)
    if timed_out:
        return f"`go test -list` took more than {timeout:g} s"
    if code != 0:
        return output if code is None else explain(output[-64 * 1024:], argv[0], str(root))
    return sum(1 for line in output.splitlines() if LISTED.match(line))
