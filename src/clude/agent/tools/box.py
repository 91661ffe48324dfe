"""The Toolbox: the tools' definitions for the model, and calling them with its raw arguments,
every mistake of the model's turned into an error result that says what to do."""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

from pydantic import ValidationError

from clude.agent.tools import edit, files, search
from clude.agent.tools.result import ToolError, ToolResult, fit
from clude.agent.tools.shell import Shell
from clude.agent.tools.specs import TOOLS, Args, signature, tool_spec
from clude.agent.tools.workspace import PROTECTED, OutsideWorkspace, Workspace
from clude.sandbox import Sandbox
from clude.secrets import Redactor


READ_ONLY = ("read_file", "list_files", "grep")  # the tools that change nothing and start no process


class Toolbox:
    """The coding tools of one agent, confined to the workspace at `root` (`read_only`: READ_ONLY's)."""

    def __init__(self, root: Path, *, env: Mapping[str, str] | None = None,
                 shell_timeout_s: float = 120.0, output_budget: int = 8000,
                 output_dir: Path | None = None,
                 test_runner: Callable[[], str] | None = None, sandbox: Sandbox | None = None,
                 pass_env: tuple[str, ...] = (), read_only: bool = False):
        self.workspace = Workspace(Path(root), closed=PROTECTED if read_only else ())
        self.root = self.workspace.root
        self.output_budget = output_budget
        self.test_runner = test_runner
        source = dict(os.environ if env is None else env)
        self.redactor = Redactor(source)
        self.shell = Shell(self.workspace, source, timeout_s=shell_timeout_s, budget=output_budget,
                           output_dir=Path(output_dir) if output_dir else self.root / ".clude" / "tool-output",
                           redactor=self.redactor, sandbox=sandbox, pass_env=pass_env)
        self._run: dict[str, Callable[[Any], str]] = {
            "read_file": lambda a: files.read_file(self.workspace, a.path, a.start_line, a.end_line,
                                                   output_budget),
            "write_file": lambda a: files.write_file(self.workspace, a.path, a.content),
            "edit_file": lambda a: edit.edit_file(self.workspace, a.path, a.search, a.replace),
            "list_files": lambda a: search.list_files(self.workspace, a.path, a.pattern, output_budget),
            "grep": lambda a: search.grep(self.workspace, a.pattern, a.path, a.glob, a.ignore_case,
                                          output_budget),
            "run_shell": lambda a: self.shell.run(a.command, a.timeout_s),
        }
        if test_runner is not None:
            self._run["run_tests"] = lambda a: self._tests()
        if read_only:  # a planner's: it reads the workspace (not git's database nor clude's) and runs nothing
            self._run = {name: self._outside_protected(run) for name, run in self._run.items() if name in READ_ONLY}

    def _outside_protected(self, run: Callable[[Any], str]) -> Callable[[Any], str]:
        """`run`, refusing a path inside .git/ or .clude/ (a clone's config may hold the upstream's
        credentials, and what a planner reads goes to its model)."""
        def call(args):
            if self.workspace.is_closed(self.workspace.resolve(getattr(args, "path", "."))):
                raise OutsideWorkspace(f"{args.path} is inside .git/ or .clude/, which are not read here: "
                                       "read the project's own files")
            return run(args)
        return call

    @property
    def names(self) -> list[str]:
        return [name for name in TOOLS if name in self._run]

    def specs(self) -> list[dict]:
        """OpenAI function tool definitions of every tool offered (run_tests only with a runner)."""
        values = {"timeout": f"{self.shell.timeout_s:g}", "max_timeout": f"{self.shell.max_timeout_s:g}",
                  "budget": self.output_budget}
        return [tool_spec(name, values) for name in self.names]

    def call(self, name: str, arguments: str | dict) -> ToolResult:
        """Run one tool call as the model wrote it. Never raises for the model's mistakes (bad JSON,
        unknown tool, wrong arguments, a path outside the workspace, a missing file...): they come
        back as is_error results. A Ctrl-C during run_shell is raised as KeyboardInterrupt."""
        name = (name or "").strip()
        try:
            if name not in self._run:
                raise ToolError(self._unknown(name))
            args = validate(name, TOOLS[name][0], parse_arguments(name, arguments))
            text, is_error = self._run[name](args), False
        except ToolError as error:
            text, is_error = str(error), True
        except OSError as error:
            text, is_error = self._os_error(name, error), True
        except UnicodeError as error:  # e.g. a lone surrogate ("\ud800") in content sent as JSON
            text, is_error = (f"{name} failed: the text given cannot be saved as UTF-8 ({error}). "
                              f"Send plain text."), True
        text = fit(self.redactor.text(text), self.output_budget + 1000)
        return ToolResult(text=text, is_error=is_error)

    @staticmethod
    def action_key(name: str, arguments: str | dict) -> str:
        """The call in a canonical form (name and arguments as sorted compact JSON), so that the same
        action written twice gives the same key."""
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except ValueError:
                return f"{(name or '').strip()} {arguments.strip()}"
        body = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          default=str)
        return f"{(name or '').strip()} {body}"

    def _tests(self) -> str:
        try:
            return self.test_runner()
        except Exception as error:  # the runner's own failure is reported, not a crash of the step
            raise ToolError(f"the tests could not be run: {type(error).__name__}: {error}") from None

    def _unknown(self, name: str) -> str:
        available = ", ".join(self.names)
        if name == "run_tests":
            return (f"run_tests is not available in this session (no test command is set up): run "
                    f"the tests with run_shell instead. The available tools are: {available}.")
        close = difflib.get_close_matches(name, self.names, n=1, cutoff=0.6)
        guess = f" Did you mean {close[0]}?" if close else ""
        return f"there is no tool named {name!r}.{guess} The available tools are: {available}."

    def _os_error(self, name: str, error: OSError) -> str:
        where = f" ({self.workspace.show(error.filename)})" if error.filename else ""
        return f"{name} failed: {error.strerror or error}{where}."


def parse_arguments(name: str, arguments: Any) -> dict:
    """The arguments of a call as a dict; a ToolError for text that is not a JSON object."""
    if arguments is None:
        return {}
    if isinstance(arguments, str):
        if not arguments.strip():
            return {}
        try:
            arguments = json.loads(arguments)
        except ValueError as error:
            raise ToolError(f"the arguments of {name} are not valid JSON ({error}): {arguments[:200]!r}. "
                            f"Send one JSON object, e.g. {example(name)}, with strings quoted and "
                            f"newlines inside strings written as \\n.") from None
    if not isinstance(arguments, dict):
        raise ToolError(f"the arguments of {name} must be a JSON object of named arguments, not "
                        f"{type(arguments).__name__} {json.dumps(arguments)[:100]}. Call it as "
                        f"{signature(name)}, e.g. {example(name)}.")
    # a null means "not given": the argument's default applies (a required one is then missing)
    return {key: value for key, value in arguments.items() if value is not None}


def validate(name: str, model: type[Args], arguments: dict) -> Args:
    """The arguments checked against the tool's model; a ToolError naming each bad argument."""
    try:
        return model.model_validate(arguments)
    except ValidationError as error:
        known = list(model.model_fields)
        problems = []
        for problem in error.errors():
            arg = ".".join(str(part) for part in problem["loc"]) or "(arguments)"
            if problem["type"] == "missing":
                problems.append(f"the required argument {arg!r} is missing")
            elif problem["type"] == "extra_forbidden":
                close = difflib.get_close_matches(arg, known, n=1, cutoff=0.5)
                guess = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(f"there is no argument {arg!r}{guess}")
            else:
                got = json.dumps(problem.get("input"), default=str)[:80]
                problems.append(f"the argument {arg!r} is wrong: {problem['msg']} (got {got})")
        raise ToolError(f"bad arguments for {name}: {'; '.join(problems)}. Call it as "
                        f"{signature(name)}, e.g. {example(name)}.") from None


EXAMPLES = {
    "read_file": {"path": "src/app.py", "start_line": 1, "end_line": 80},
    "write_file": {"path": "src/util.py", "content": "def add(a, b):\n    return a + b\n"},
    "edit_file": {"path": "src/app.py", "search": "    return a - b\n", "replace": "    return a + b\n"},
    "list_files": {"path": "src", "pattern": "*.py"},
    "grep": {"pattern": "def main", "path": "."},
    "run_shell": {"command": "python -m pytest -q -x"},
    "run_tests": {},
}


def example(name: str) -> str:
    return json.dumps(EXAMPLES.get(name, {}))
