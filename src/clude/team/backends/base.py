"""A backend: one agent CLI as a worker runs it — its command line, the environment it needs, how it
gets the prompt and how its result is read — built from data/backends.toml and [backends.NAME]."""

from __future__ import annotations

import errno
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from clude.config.settings import BackendConfig
from clude.harness.process import MissingProgram, resolve_program, run_group, tail
from clude.secrets import Redactor
from clude.team.backends.agent_files import found_credentials, remove_homes
from clude.team.backends.infra import InfraFailure
from clude.team.backends.results import read_result
from clude.team.backends.spec import NO_CONFIGS, PLACEHOLDERS, BackendSpec, names_of, spec_of
from clude.team.board.layout import agent_identity

if TYPE_CHECKING:
    from clude.sandbox import Sandbox

# The agent's environment always starts from these, when they are set; nothing else is inherited.
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TMPDIR", "USER", "LOGNAME", "SHELL", "TZ")
ARG_MAX_BYTES = 128 * 1024 - 1  # Linux's MAX_ARG_STRLEN: the most one argument may hold, with its NUL
VERSION_TIMEOUT_S = 60.0
OUTPUT_IN_MEMORY = 1024 * 1024  # a longer log is read as its start and its end to classify it
STDOUT_MARK = "\n----- stdout -----\n"

_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


@dataclass
class AgentRun:
    """One agent run as the worker sees it. `summary`: the agent's own final words (result text),
    cut to ~4 KB and redacted; `infra`: set when the run shows the agent could not start or could not
    work (found before starting, or read from its output)."""

    exit_code: int | None  # None when it was killed by a signal, or never started
    signal: int | None
    timed_out: bool
    duration_s: float
    log_path: Path
    summary: str
    cost_usd: float | None
    infra: InfraFailure | None
    gave_up: str | None = None  # the agent ended saying it could not do the task: the task's failure
    tokens: dict[str, int] | None = None  # the token counts it reported (input_tokens, output_tokens, ...)


def get_backend(name: str, configs: Mapping[str, BackendConfig] = NO_CONFIGS, *,
                command: str | None = None) -> Backend:
    """The backend `name`: its built-in spec changed by [backends.NAME], its command replaced by
    `command` (the --command TEMPLATE flag) when given (spec.py). ValueError names what is wrong."""
    return Backend(spec_of(name, configs, command=command))


def agent_env(backend: Backend, env: Mapping[str, str], *, agent_id: str, task_id: str) -> dict[str, str]:
    """The agent's whole environment: the base names, the backend's required and forwarded names —
    each only when set in `env` — its env_defaults and env_from for names `env` does not set (the
    user's value wins), and CLUDE_AGENT_ID, CLUDE_TASK_ID."""
    out = {name: env[name] for name in (*BASE_ENV, *backend.forwarded_env()) if name in env}
    out.update({name: value for name, value in backend.spec.env_defaults if name not in env})
    out.update({name: env[other] for name, other in backend.spec.env_from if name not in env and env.get(other)})
    out.update(agent_identity(agent_id))  # ~/.gitconfig is hidden in the sandbox: commits still have a name
    out["CLUDE_AGENT_ID"] = agent_id
    out["CLUDE_TASK_ID"] = task_id
    return out


class Backend:
    """One agent CLI: `check` before starting, `run` on a prompt file in a clone, `version` for doctor."""

    def __init__(self, spec: BackendSpec):
        self.spec = spec

    @property
    def name(self) -> str:
        return self.spec.name

    def __repr__(self) -> str:
        return f"Backend({self.name!r}, {' '.join(self.spec.command)!r})"

    # what it needs ---------------------------------------------------------------------------
    def required_env(self) -> list[str]:
        """The names that must be set ('A|B': one of them)."""
        return list(self.spec.required_env)

    def forwarded_env(self) -> list[str]:
        """Every name passed on to the agent when set: the required ones (each alternative) and the
        forwarded ones."""
        names = [alt.strip() for spec in self.spec.required_env for alt in spec.split("|")]
        return names_of([*names, *self.spec.env])

    def check(self, env: Mapping[str, str]) -> list[InfraFailure]:
        """What stops the agent before it starts: a required variable not set, its program (or the
        program's #! interpreter) missing. Empty when it can start."""
        return self._problems(env, Path.cwd())

    def _problems(self, env: Mapping[str, str], cwd: Path) -> list[InfraFailure]:
        problems = []
        home = self.spec.config_home  # a run with settings of its own reads no login: only a key will do
        logged_in = found_credentials(self.spec.credentials, env) is not None and not (home and home.applies(env))
        for spec in self.spec.required_env:
            names = [name.strip() for name in spec.split("|") if name.strip()]
            if names and not logged_in and not any((env.get(name) or "").strip() for name in names):
                what = (f"{names[0]} is not set: the {self.name} backend needs it" if len(names) == 1 else
                        f"none of {', '.join(names[:-1])} or {names[-1]} is set: the {self.name} backend "
                        "needs one")
                if self.spec.credentials:
                    what += f" (or its own login: {' or '.join(self.spec.credentials)}, which is missing)"
                problems.append(InfraFailure(
                    kind="missing_env", name=spec,
                    message=f"{what}; export it where the workers run (or change required_env in "
                            f"[backends.{self.name}])"))
        program = self._program_problem(env, cwd)
        if program is not None:
            problems.append(program)
        return problems

    def _program(self) -> str | None:
        """The program the command starts, or None when it depends on the task (a placeholder)."""
        first = _PLACEHOLDER.sub(lambda m: sys.executable if m.group(1) == "python" else m.group(0),
                                 self.spec.command[0])
        return None if _PLACEHOLDER.search(first) else first

    def _program_problem(self, env: Mapping[str, str], cwd: Path) -> InfraFailure | None:
        program = self._program()
        if program is None:
            return None
        where = f"[backends.{self.name}] command" if self.name != "command" else "--command"
        try:
            resolve_program([program], cwd, dict(env))
        except MissingProgram as missing:
            text = str(missing).replace("[test] command", where)
            if "#!" in text:
                return InfraFailure(kind="interpreter_missing", name=program, message=text)
            if os.sep not in program:
                install = f" ({self.spec.install})" if self.spec.install else ""
                text = (f"{program} is not on PATH: install it{install}, or give its full path in "
                        f"{where}")
            return InfraFailure(kind="command_not_found", name=program, message=text)
        return None

    # the command line ------------------------------------------------------------------------
    def argv(self, *, prompt_file: Path, workdir: Path, task_id: str, agent_id: str,
             prompt: str | None = None) -> list[str]:
        """The command line with its placeholders filled ({prompt} read from prompt_file if not given)."""
        if prompt is None and any("{prompt}" in word for word in self.spec.command):
            prompt = Path(prompt_file).read_text(encoding="utf-8")
        values = {"prompt_file": str(prompt_file), "prompt": prompt or "", "task_id": task_id,
                  "workdir": str(workdir), "agent_id": agent_id, "python": sys.executable}
        first = _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), self.spec.command[0])
        values["program"] = first
        return [_PLACEHOLDER.sub(lambda m: values[m.group(1)], word) for word in self.spec.command]

    # doctor ----------------------------------------------------------------------------------
    def version(self, env: Mapping[str, str]) -> str | InfraFailure:
        """What `<program> --version` prints (its first line), or why it cannot be run."""
        if not self.spec.version:
            return "(no version command)"
        problem = self._program_problem(env, Path.cwd())
        if problem is not None:
            return problem
        program = self._program() or self.spec.command[0]
        values = {"python": sys.executable, "program": program}
        argv = [_PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), word)
                for word in self.spec.version]
        run_env = {name: env[name] for name in (*BASE_ENV, *self.forwarded_env()) if name in env}
        with tempfile.TemporaryDirectory(prefix="clude-version-") as scratch:
            out = Path(scratch) / "version.log"
            try:
                done = run_group(argv, Path.cwd(), run_env, out, VERSION_TIMEOUT_S)
            except OSError as error:
                return InfraFailure(kind="start_failed", name=program,
                                    message=f"{program} could not be started: {error.strerror or error}")
            text = Redactor(dict(env)).text(tail(out))
        first = next((line.strip() for line in text.splitlines() if line.strip()), "")
        if done.exit_code != 0:
            how = "timed out" if done.timed_out else f"exit {done.exit_code if done.signal is None else -done.signal}"
            return InfraFailure(kind="start_failed", name=program,
                                message=f"{' '.join(argv)} failed ({how}): {first[:200]}")
        return first

    # a run -----------------------------------------------------------------------------------
    def run(self, *, prompt_file: Path, workdir: Path, task_id: str, agent_id: str, env: Mapping[str, str],
            log_path: Path, timeout_s: float, sandbox: Sandbox | None = None, hidden: Sequence[Path] = (),
            pidfile: Path | None = None) -> AgentRun:
        """Run the agent on `prompt_file` in `workdir`, in its own process group, killed with the group
        after the timeout ([backends.NAME] timeout_s, else `timeout_s`); inside `sandbox`, with only
        `workdir` (and the backend's own config in the home folder) writable and `hidden` invisible.
        Its output goes to log_path, redacted once it ends. Raises KeyboardInterrupt when the worker
        itself was interrupted (Ctrl-C, SIGTERM, SIGHUP): the agent's group has been stopped by then."""
        log_path = Path(log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        redactor = Redactor(dict(env))
        problems = self._problems(env, Path(workdir))
        if problems:
            return self._not_started(log_path, problems[0], problems)
        try:
            argv = self.argv(prompt_file=prompt_file, workdir=workdir, task_id=task_id, agent_id=agent_id)
        except OSError as error:
            return self._not_started(log_path, InfraFailure(
                kind="start_failed", message=f"the prompt file {prompt_file} cannot be read: {error.strerror}"))
        longest = max(len(word.encode("utf-8", "surrogateescape")) for word in argv)
        if longest > ARG_MAX_BYTES:
            return self._not_started(log_path, InfraFailure(
                kind="start_failed", message=f"the {self.name} backend's command has an argument of "
                f"{longest} bytes (the prompt?), over the {ARG_MAX_BYTES + 1} one argument may hold: use "
                f"prompt_via = \"stdin\" or \"file\" in [backends.{self.name}]"))
        stdout_path = (log_path.with_name(log_path.name + ".stdout")
                       if self.spec.result not in ("text", "aider") else None)
        run_env = agent_env(self, env, agent_id=agent_id, task_id=task_id)
        writable = [Path(workdir)]
        made = self.spec.config_home.write(env, log_path) if self.spec.config_home is not None else {}
        run_env.update(made)  # its settings for this run, beside its log: its home folder is not kept then
        writable += [Path(folder) for folder in made.values()]
        if pidfile is not None:  # every process of the run carries it: found even if its group's leader is gone
            import uuid

            from clude.sandbox.leftovers import MARK_VAR
            run_env[MARK_VAR] = uuid.uuid4().hex
        if sandbox is not None:
            argv, run_env = sandbox.command(argv, cwd=Path(workdir), env=run_env, writable=writable,
                                            readable=[Path(prompt_file)], hidden=hidden,
                                            keep_home=() if made else self.spec.sandbox_home, as_pid_1=True)
        try:
            finished = run_group(argv, Path(workdir), run_env, log_path, self.spec.timeout_s or timeout_s,
                                 stdin=Path(prompt_file) if self.spec.prompt_via == "stdin" else None,
                                 stdout=stdout_path, pidfile=pidfile)
        except OSError as error:
            remove_homes(made)
            kind = "command_not_found" if error.errno == errno.ENOENT else "start_failed"
            return self._not_started(log_path, InfraFailure(
                kind=kind, name=argv[0], message=f"{argv[0]} could not be started: {error.strerror or error}"))
        stdout = _take_stdout(stdout_path, log_path)
        redactor.file(log_path)
        remove_homes(made)  # what the CLI recorded there (its sessions: commands and their output) goes
        if finished.interrupted:
            raise KeyboardInterrupt()
        outcome = read_result(self.spec.result, redactor.text(stdout), redactor.text(_output(log_path)),
                              finished.exit_code)
        infra = outcome.infra
        if infra is not None:
            infra.message = redactor.text(infra.message.replace("[backends.NAME]", f"[backends.{self.name}]"))
        return AgentRun(exit_code=finished.exit_code, signal=finished.signal, timed_out=finished.timed_out,
                        duration_s=finished.duration_s, log_path=log_path,
                        summary=redactor.text(outcome.summary), cost_usd=outcome.cost_usd, infra=infra,
                        gave_up=redactor.text(outcome.gave_up) if outcome.gave_up else None,
                        tokens=outcome.tokens)

    def _not_started(self, log_path: Path, failure: InfraFailure,
                     problems: list[InfraFailure] | None = None) -> AgentRun:
        lines = [f"clude: the {self.name} backend did not start: {p.message}" for p in problems or [failure]]
        log_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return AgentRun(exit_code=None, signal=None, timed_out=False, duration_s=0.0, log_path=log_path,
                        summary=failure.message, cost_usd=None, infra=failure)


def _take_stdout(stdout_path: Path | None, log_path: Path) -> str:
    """The run's standard output, appended to its log (after what it wrote on stderr) and its own
    file removed: one log per run."""
    if stdout_path is None:
        return ""
    try:
        data = stdout_path.read_bytes()
    except OSError:
        return ""
    if data:
        with open(log_path, "ab") as log:
            if log.tell():
                log.write(STDOUT_MARK.encode())
            log.write(data)
    stdout_path.unlink(missing_ok=True)
    return data.decode("utf-8", "replace")


def _output(log_path: Path) -> str:
    """The log as text: whole when small, else its start and its end."""
    try:
        size = log_path.stat().st_size
        if size <= OUTPUT_IN_MEMORY:
            return log_path.read_bytes().decode("utf-8", "replace")
        with open(log_path, "rb") as f:
            head = f.read(16 * 1024).decode("utf-8", "replace")
    except OSError:
        return ""
    return head + "\n[…]\n" + tail(log_path)
