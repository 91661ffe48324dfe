"""What a test framework adapter knows: its command, how to get machine-readable results, how to read them."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from clude.harness.verdict import RunFacts, Sample


@dataclass
class RunContext:
    """Everything an adapter may use to prepare one run."""

    root: Path  # the project directory the command runs in
    run_dir: Path  # a fresh directory for this run's result files
    env: dict[str, str]  # the environment the command will get
    rate: float | None = None  # --fast RATE, or None for the whole suite
    seed: str = ""
    junit: Path | None = None  # a JUnit file the configured command writes, if any
    timeout_s: float | None = None
    # turns (argv, env) into the command line that runs inside the sandbox; None: run as they are
    confine: Callable[[list[str], dict[str, str]], tuple[list[str], dict[str, str]]] | None = None

    def start(self, argv: list[str], env: dict[str, str]) -> tuple[list[str], Path, dict[str, str]]:
        """(argv, cwd, env) for run_group: a command of this run, confined when there is a sandbox."""
        if self.confine is not None:
            argv, env = self.confine(list(argv), dict(env))
        return argv, self.root, env


@dataclass
class Plan:
    """How one run is carried out: the argv, what to add to its environment, and where results go."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    results: Path | None = None
    sample: Sample | None = None  # set when the adapter sampled before the run (by file or id list)


class Framework:
    """Base adapter. Subclasses set `name` and override what differs."""

    name = "generic"
    # how files of this framework's tests are named, for detection and sampling by file
    test_globs: tuple[str, ...] = ()
    marker = ""  # the file whose presence detection goes by, named in the evidence

    def recognizes(self, argv: list[str], root: Path) -> bool:
        """True when a user-given command runs this framework."""
        return False

    def detect(self, root: Path, env: dict[str, str]) -> list[str] | None:
        """The command to run this project's tests with this framework, if the project uses it."""
        return None

    def evidence(self, root: Path, env: dict[str, str]) -> list[str]:
        """Why detect() chose this framework, a sentence each (the adapters that can say more do)."""
        return [f"the project's files are {self.name}'s ({self.marker})"] if self.marker else []

    def plan(self, argv: list[str], ctx: RunContext) -> Plan:
        """How to run argv. An adapter never rewrites a command that is not its own (`make test`):
        it reaches the framework through the environment, or reads the configured JUnit XML."""
        if ctx.junit is not None:
            ctx.junit.unlink(missing_ok=True)  # a stale file from an earlier run must not be read
        return Plan(argv=list(argv), results=ctx.junit)

    def read(self, plan: Plan, ctx: RunContext, exit_code: int | None, tail: str) -> RunFacts:
        """The facts the results hold. Called after the process ended, whatever its exit code."""
        if plan.results is None:
            return RunFacts(framework_reason=(
                f"clude cannot read the results of `{' '.join(plan.argv)}`: run the test framework "
                f"directly (pytest, python -m unittest, node --test, go test, cargo test, jest, "
                f"vitest), or set [test] junit = PATH to a JUnit XML file the command writes"))
        from clude.harness.junit import UnreadableResults, read_junit
        try:
            return read_junit(plan.results, ctx.root)
        except UnreadableResults as exc:
            return RunFacts(framework_reason=str(exc))


def facts_from_output(reader, plan: Plan, ctx: RunContext, exit_code: int | None,
                      tail: str) -> RunFacts:
    """Facts read from the run's whole output (frameworks whose events go to stdout: go, cargo), with
    the reason a run that never started gives (diagnostics.toml)."""
    try:
        text = (ctx.run_dir / "output.log").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    facts = reader(text, ctx.root, exit_code)
    if not facts.started:
        from clude.harness.diagnostics import explain
        facts.framework_reason = explain(tail, plan.argv[0], str(ctx.root))
    return facts


def listing(argv: list[str], ctx: RunContext) -> list[str] | None:
    """The output lines of a command that lists tests (for sampling by id), or None when it fails
    (a build error: the full run that follows reports it)."""
    from clude.harness.process import run_group
    out = ctx.run_dir / "list.log"
    done = run_group(*ctx.start(argv, ctx.env), out, ctx.timeout_s)
    if done.exit_code != 0:
        return None
    return out.read_text(encoding="utf-8", errors="replace").splitlines()


def program_name(argv: list[str]) -> str:
    return os.path.basename(argv[0]) if argv else ""


def runs_module(argv: list[str], module: str) -> bool:
    """True for `python -m MODULE ...` and `MODULE ...` (a console script of that name)."""
    if not argv:
        return False
    if program_name(argv) == module:
        return True
    return program_name(argv).startswith("python") and "-m" in argv and \
        argv.index("-m") + 1 < len(argv) and argv[argv.index("-m") + 1] == module


def project_python(root: Path, env: dict[str, str], needs_module: str | None = None) -> str:
    """The interpreter of the project: its virtualenv if it has one, else one on PATH.

    Without a project virtualenv, the first of python3 on PATH, then clude's own interpreter, that
    can import `needs_module` is taken.
    """
    for venv in (".venv", "venv"):
        candidate = root / venv / "bin" / "python"
        if os.path.lexists(candidate):
            return f"{venv}/bin/python"
    if env.get("VIRTUAL_ENV"):
        return str(Path(env["VIRTUAL_ENV"]) / "bin" / "python")
    import sys
    candidates = [c for c in (shutil.which("python3", path=env.get("PATH")), sys.executable) if c]
    if needs_module:
        for candidate in candidates:
            if can_import(candidate, needs_module):
                return candidate
    return candidates[0] if candidates else "python3"


_MODULES = ("import json, pkgutil, sys; print(json.dumps(sorted({m.name for m in pkgutil.iter_modules()} | "
            "set(sys.builtin_module_names))))")


@lru_cache(maxsize=8)
def importable_modules(python: str) -> frozenset[str]:
    """The top-level modules `python` imports from its own installation (standard library, site-packages,
    .pth paths), asked from / so that no project is on its path: what a new module of the same name on a
    test run's path would shadow. Empty when it cannot be asked."""
    import json
    import subprocess
    for flags in (["-P"], []):  # -P (3.11+): the working folder is not put on the path
        try:
            done = subprocess.run([python, *flags, "-c", _MODULES], capture_output=True, timeout=60, cwd="/",
                                  env={"PATH": os.environ.get("PATH", os.defpath)})
        except (OSError, subprocess.TimeoutExpired):
            return frozenset()
        if done.returncode == 0:
            try:
                return frozenset(json.loads(done.stdout))
            except ValueError:
                return frozenset()
    return frozenset()


@lru_cache(maxsize=32)
def can_import(python: str, module: str) -> bool:
    import subprocess
    try:
        return subprocess.run([python, "-c", f"import importlib.util as u, sys; "
                               f"sys.exit(u.find_spec({module!r}) is None)"],
                              capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# Folders that never hold a project's own tests: vendored code, build output, clude's state.
SKIP_DIRS = frozenset({"node_modules", ".git", ".venv", "venv", "target", ".clude", "__pycache__",
                       "dist", "build"})


def find_files(root: Path, match: tuple[str, ...] | Callable[[str], bool],
               start: Path | None = None) -> list[str]:
    """Project files (paths relative to root, sorted) under `start` (default: root) that match any
    glob of `match`, or for which `match(path)` is true; vendored and hidden folders are skipped."""
    if not callable(match):
        globs = match
        match = lambda rel: any(Path(rel).match(g) for g in globs)  # noqa: E731
    found: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(start or root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")]
        rel_dir = Path(dirpath).relative_to(root)
        found.update(rel for rel in ((rel_dir / name).as_posix() for name in filenames) if match(rel))
    return sorted(found)
