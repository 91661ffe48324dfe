"""`clude test` as a function: pick the command, run it, read its results, return the Verdict."""

from __future__ import annotations

import os
import shlex
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from pydantic import ValidationError

from clude.config import TestConfig
from clude.harness import frameworks
from clude.harness.cache import (VerdictCache, computing, lookup, machine_cache, report_shown, request_key, stored,
                                 tree_files)
from clude.harness.frameworks import Framework, RunContext
from clude.harness.inject.clude_sample import default_seed
from clude.harness.process import MissingProgram, resolve_program, run_group, tail
from clude.harness.report import concise
from clude.harness.rewrites import prime
from clude.harness.verdict import Counts, Status, Verdict, counts_complete, decide
from clude.secrets import Redactor
from clude.store import atomic_write_text

if TYPE_CHECKING:
    from clude.sandbox import Sandbox

KEEP_REPORTS = 50  # run folders kept under .clude/reports; older ones are removed


def clude_dir(root: Path) -> Path:
    """The project's local state folder, ignored by git from the moment it exists."""
    path = root / ".clude"
    path.mkdir(exist_ok=True)
    ignore = path / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# clude's local state: never committed\n*\n", encoding="utf-8")
    return path


def choose(root: Path, config: TestConfig, command: list[str] | None,
           env: dict[str, str]) -> tuple[Framework, list[str]] | str:
    """The adapter and argv to run, or the reason there is nothing to run."""
    argv = command or config.argv()
    if not argv:
        found = frameworks.detect(root, env)
        if found is None:
            names = ", ".join(a.name for a in frameworks.adapters())
            return (f"found no tests to run in {root} (looked for {names}): give the command "
                    f"(clude test -- COMMAND ...) or set [test] command in clude.toml")
        adapter, argv = found
        if not config.framework:
            return adapter, argv
    return frameworks.for_command(argv, root, env, named=config.framework), argv


def explain(root: Path, config: TestConfig, command: list[str] | None, env: dict[str, str]) -> tuple[bool, list[str]]:
    """What `clude test` would run in `root` and the evidence for it, a line each; False when nothing."""
    chosen = choose(root, config, command, env)
    if isinstance(chosen, str):
        return False, [chosen]
    adapter, argv = chosen
    named = " ([test] framework in clude.toml)" if config.framework else ""
    return True, [f"command: {shlex.join(argv)}", f"framework: {adapter.name}{named}", "because:",
                  *(f"  - {reason}" for reason in evidence(root, config, command, adapter, env))]


def evidence(root: Path, config: TestConfig, command: list[str] | None, adapter: Framework,
             env: dict[str, str]) -> list[str]:
    """Why this command runs the tests: given, configured, or what detection found."""
    if command:
        return ["the command given after --"]
    if config.argv():
        return ["[test] command in clude.toml"]
    return adapter.evidence(root, env)


def tests_python(root: Path, config: TestConfig, env: dict[str, str]) -> str | None:
    """The interpreter the tests of `root` run with, when they are Python tests (pytest, unittest)."""
    from clude.harness.frameworks.base import project_python

    env = {**env, **config.env}
    chosen = choose(root, config, None, env)
    if isinstance(chosen, str) or chosen[0].name not in ("pytest", "unittest"):
        return None
    program = chosen[1][0]
    if os.path.basename(program).startswith("python"):
        return program if os.path.isabs(program) else shutil.which(program, path=env.get("PATH")) or \
            str(root / program)
    return project_python(root, env)


def run_tests(root: Path, config: TestConfig | None = None, *, command: list[str] | None = None,
              rate: float | None = None, seed: str | None = None, use_cache: bool = True,
              timeout_s: float | None = None, env: dict[str, str] | None = None,
              missed_key: str | None = None, sandbox: Sandbox | None = None,
              state_dir: Path | None = None, hidden: Sequence[Path] = (), refresh: bool = False) -> Verdict:
    """Run the tests of the project at `root` (or answer from the cache) and return the Verdict.

    `missed_key`: this request's cache key, already looked up and missed by the caller (the
    command line's quick path), so the tree is not hashed a second time. `refresh`: run even when the
    cache knows this tree's verdict, and keep the new one (a red verdict confirmed, or not). `sandbox`: the tests run
    inside it, with only `root` (but its .git) and the run's result folder writable, and the state
    folder (other reports), the machine's verdict cache and `hidden` invisible. `state_dir`: where
    reports live (default: root/.clude); verdicts are cached for the whole machine (cache.machine_cache).
    """
    root = root.resolve()
    config = config or TestConfig()
    base_env = dict(env if env is not None else os.environ)
    env = {**base_env, **config.env}
    timeout_s = timeout_s or config.timeout
    seed = seed if seed is not None else default_seed(base_env)
    state = clude_dir(root) if state_dir is None else _state(state_dir)
    redactor = Redactor(env)

    key = missed_key if use_cache else None
    files = tree_files(root) if use_cache and key is None else None  # listed once: the key, then prime()
    if use_cache and key is None and refresh:  # run again, and keep what this run says
        key, entry = request_key(root, command=command, rate=rate, seed=seed, config=config.model_dump(),
                                 env=base_env, files=files), None
    elif use_cache and key is None:
        key, entry = lookup(root, command=command, rate=rate, seed=seed,
                            config=config.model_dump(), env=base_env, files=files)
        if entry is not None:
            try:
                return _hit(entry, root)
            except ValidationError:
                pass  # an entry from another version of the Verdict: run again

    def measured() -> Verdict:
        return _measure(root, config, command, env, state, redactor, key, timeout_s, rate, seed, sandbox, hidden,
                        files)

    if key is None:
        return measured()
    with computing(key):  # once per machine: a worker that asked at the same time reads it when stored
        again = None if refresh else stored(key, root, base_env)
        if again is not None:
            try:
                return _hit(again, root)
            except ValidationError:
                pass
        return measured()


def _measure(root: Path, config: TestConfig, command: list[str] | None, env: dict[str, str], state: Path,
             redactor: Redactor, key: str | None, timeout_s: float, rate: float | None, seed: str,
             sandbox: Sandbox | None, hidden: Sequence[Path], files: dict[str, str | None] | None) -> Verdict:
    """Run the tests (no cache asked) and store the verdict under `key`. `files`: tree_files(root), when
    the key was made from it."""
    chosen = choose(root, config, command, env)
    if isinstance(chosen, str):
        return _save(Verdict(status=Status.ERROR, reason=chosen), _new_run_dir(state, "none"),
                     root, redactor)
    adapter, argv = chosen
    try:
        resolve_program(argv, root, env)
    except MissingProgram as exc:
        return _save(Verdict(status=Status.ERROR, reason=f"cannot start the tests: {exc}",
                             framework=adapter.name, command=argv),
                     _new_run_dir(state, adapter.name), root, redactor)

    run_dir = _new_run_dir(state, adapter.name)
    confine = None
    if sandbox is not None and sandbox.enabled:
        def confine(argv: list[str], run_env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
            return sandbox.command(argv, cwd=root, env=run_env, writable=[root, run_dir],
                                   readable=[root / ".git"],
                                   hidden=[state, machine_cache(), root / ".git" / "config", *hidden])
    ctx = RunContext(root=root, run_dir=run_dir, env=env, rate=rate, seed=seed,
                     junit=(root / config.junit) if config.junit else None, timeout_s=timeout_s,
                     confine=confine)
    plan = adapter.plan(argv, ctx)
    output = run_dir / "output.log"
    try:
        if sandbox is not None:  # an untrusted tree: bytecode in it (a forged test_x.pyc) is never read
            scrub_bytecode(root)
        if adapter.name == "pytest":  # but clude's own rewrites of its test modules are (no test run writes any)
            prime(root, list(tree_files(root) if files is None else files), machine_cache() / "rewrites",
                  words=[*plan.argv, *{**env, **plan.env}.get("PYTEST_ADDOPTS", "").split()])
        done = run_group(*ctx.start(plan.argv, {**env, **plan.env}), output, timeout_s)
    except OSError as exc:  # resolved, yet the kernel refuses it (no #! line, wrong binary format)
        return _save(Verdict(status=Status.ERROR, framework=adapter.name, command=argv,
                             reason=f"cannot start the tests: {argv[0]}: {exc.strerror or exc}"),
                     run_dir, root, redactor)
    facts = adapter.read(plan, ctx, done.exit_code, tail(output))
    facts = facts.model_copy(update={
        "exit_code": done.exit_code, "signal": done.signal, "timed_out": done.timed_out,
        "interrupted": done.interrupted, "timeout_s": timeout_s,
        "stray_interrupt": facts.interrupted and not done.interrupted,
        "sample": facts.sample or plan.sample})
    status, reason = decide(facts)
    verdict = Verdict(status=status, reason=reason, counts=Counts.of(facts.outcomes, len(facts.collection_errors)),
                      counts_complete=counts_complete(facts), framework=adapter.name,
                      duration_s=round(done.duration_s, 3), command=argv, exit_code=done.exit_code,
                      failures=facts.collection_errors + facts.failures,
                      report_path=_display(output, root), sample=facts.sample,
                      outcomes=dict(facts.outcomes))
    verdict = _save(verdict, run_dir, root, redactor)
    if key is not None:
        kept = verdict.model_copy(update={"report_path": str(output)})  # found again from any checkout
        VerdictCache(machine_cache() / "verdicts").put(
            key, kept.model_dump(mode="json"), concise(kept.model_copy(update={"cached": True})))
    _prune(state / "reports")
    return verdict


def scrub_bytecode(root: Path) -> None:
    """Remove the compiled Python files of a tree (its __pycache__ folders, stray .pyc, and links by
    those names: a `__pycache__` linked to a folder of forged files, a .pyc linked to one): what an
    earlier run of untrusted code wrote there (a forged test module's bytecode, say) is never loaded by
    the next one. The tests write none themselves (PYTHONDONTWRITEBYTECODE); installed packages keep theirs.
    `find` walks any depth (a tree nested thousands of folders deep is an agent's to make)."""
    import subprocess

    subprocess.run(["find", str(root), "-name", ".git", "-prune", "-o", "-name", "__pycache__", "(", "-type", "d",
                    "-o", "-type", "l", ")", "-prune", "-exec", "rm", "-rf", "{}", "+", "-o", "!", "-type", "d", "(",
                    "-name", "*.pyc", "-o", "-name", "*.pyo", ")", "-exec", "rm", "-f", "{}", "+"],
                   capture_output=True, timeout=600)


def _state(path: Path) -> Path:
    path = Path(path).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _hit(entry: dict, root: Path) -> Verdict:
    """A cached verdict, its report named where it is (the run that made it may have been another
    checkout of the same tree), or not at all when that report is gone."""
    verdict = Verdict.model_validate(entry["verdict"])
    verdict.report_path = report_shown(verdict.report_path, root)
    return verdict


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _new_run_dir(state: Path, framework: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{time.time_ns() % 1_000_000_000:09d}"
    path = state / "reports" / f"{stamp}-{framework}"
    path.mkdir(parents=True)
    return path


def _save(verdict: Verdict, run_dir: Path, root: Path, redactor: Redactor) -> Verdict:
    """The Verdict without secrets, written (with every test's outcome) beside its report; the
    run's files lose their secrets too."""
    output = run_dir / "output.log"
    if verdict.report_path is None:
        output.write_text(f"{verdict.reason}\n", encoding="utf-8")
        verdict.report_path = _display(output, root)
    for path in run_dir.iterdir():
        redactor.file(path)
    data = verdict.model_dump(mode="json")
    clean = redactor.data(data)
    if clean != data:
        verdict = Verdict.model_validate(clean)
    atomic_write_text(run_dir / "verdict.json", verdict.model_dump_json(indent=1), sync=False)
    return verdict


def _prune(reports: Path) -> None:
    runs = sorted((p for p in reports.iterdir() if p.is_dir()), key=lambda p: p.name)
    for old in runs[:-KEEP_REPORTS]:
        shutil.rmtree(old, ignore_errors=True)
