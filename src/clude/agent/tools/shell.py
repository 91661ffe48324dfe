"""run_shell: a command in the workspace, inside the sandbox, in its own process group, with a timeout,
an allowlisted environment (no keys), its whole output saved to a file and its head and tail shown."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from clude.agent.tools.result import ToolError, clip, split_budget
from clude.agent.tools.workspace import Workspace
from clude.harness.process import run_group
from clude.sandbox import Sandbox, allowed_env
from clude.secrets import Redactor

# A requested timeout is capped at this many times the default.
TIMEOUT_CAP = 4


def shell_program(env: Mapping[str, str]) -> str:
    """bash when there is one, else /bin/sh."""
    found = shutil.which("bash", path=env.get("PATH", os.defpath))
    if found:
        return found
    return "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"


class Shell:
    """Runs the model's commands for one workspace."""

    def __init__(self, ws: Workspace, env: Mapping[str, str], *, timeout_s: float, budget: int,
                 output_dir: Path, redactor: Redactor, sandbox: Sandbox | None = None,
                 pass_env: tuple[str, ...] = ()):
        self.ws = ws
        self.env = allowed_env(env, pass_env)
        self.sandbox = sandbox or Sandbox.off()
        self.timeout_s = timeout_s
        self.budget = budget
        self.output_dir = Path(output_dir)
        self.redactor = redactor

    @property
    def max_timeout_s(self) -> float:
        return self.timeout_s * TIMEOUT_CAP

    def run(self, command: str, timeout_s: float | None = None) -> str:
        """The exit status and output of `command` as the model reads it. A Ctrl-C (or SIGTERM) of
        clude while it runs kills its group and is raised again as KeyboardInterrupt."""
        if not command.strip():
            raise ToolError("the command is empty: give the shell command line to run, such as "
                            "'ls -la' or 'python -m pytest -q'.")
        timeout = self.timeout_s if timeout_s is None else min(timeout_s, self.max_timeout_s)
        capped = "" if timeout_s is None or timeout_s <= self.max_timeout_s else \
            f" (the timeout asked, {timeout_s:g} s, was capped at {timeout:g} s)"
        output = self._output_file()
        argv, env = self.sandbox.command([shell_program(self.env), "-c", command], cwd=self.ws.root,
                                         env=self.env, **self.ws.confinement())
        finished = run_group(argv, self.ws.root, env, output, timeout)
        if finished.interrupted:
            raise KeyboardInterrupt
        self.redactor.file(output)
        if finished.timed_out:
            status = (f"killed after {timeout:g} s (timeout){capped}: the command and everything it "
                      f"started were stopped. Make it faster (e.g. run fewer tests) or give a larger "
                      f"timeout_s (at most {self.max_timeout_s:g} s).")
        elif finished.signal is not None:
            status = f"killed by signal {finished.signal} ({_signal_name(finished.signal)}){capped}"
        else:
            status = f"exit code {finished.exit_code}{capped}"
        return f"{status}\n{self._shown(output)}"

    def _output_file(self) -> Path:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        fd, name = tempfile.mkstemp(prefix=f"shell-{stamp}-", suffix=".log", dir=self.output_dir)
        os.close(fd)
        return Path(name)

    def _shown(self, output: Path) -> str:
        size = output.stat().st_size
        if size == 0:
            return "(no output)"
        with open(output, "rb") as f:
            if size <= self.budget:
                return f.read().decode("utf-8", "replace")
            head, tail = split_budget(self.budget)
            first = f.read(head)
            f.seek(size - tail)
            last = f.read()
        return clip(first, last, size, self.ws.show(output))


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown signal"
