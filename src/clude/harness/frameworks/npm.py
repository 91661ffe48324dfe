"""What the JavaScript adapters share: package.json test scripts, npm-style commands, JS stack frames."""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from clude.harness.inject.clude_events import strip_ansi
from clude.harness.frameworks.base import program_name
from clude.harness.inject.clude_events import is_project_file

PACKAGE_MANAGERS = ("npm", "pnpm", "yarn", "bun")
# `npm init` writes this placeholder; it is no test runner
_PLACEHOLDER = "no test specified"
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
# a stack frame or location naming a JavaScript/TypeScript file: path:line[:column]
_FRAME = re.compile(r"(?:file://)?(?P<path>(?:/|\.{1,2}/|[\w@.-]+/)[^\s():'\"]*?\.[cm]?[jt]sx?)"
                    r":(?P<line>\d+)(?::\d+)?")


def read_package(root: Path) -> dict:
    try:
        data = json.loads((root / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def package_scripts(root: Path) -> dict[str, str]:
    """package.json's scripts (names to their text), only those that are text."""
    scripts = read_package(root).get("scripts")
    return {k: v for k, v in scripts.items() if isinstance(v, str)} if isinstance(scripts, dict) else {}


def test_script(root: Path) -> str | None:
    """The project's `scripts.test`, unless it is missing or npm's placeholder."""
    script = package_scripts(root).get("test")
    if not isinstance(script, str) or not script.strip() or _PLACEHOLDER in script:
        return None
    return script


def script_call(words: list[str]) -> tuple[str, list[str]] | None:
    """(the script, the arguments after it) a package manager command runs: `npm test` -> test,
    `npm run test:unit -- x` -> test:unit, `yarn lint`, `pnpm run x`, `bun run x`; None for anything
    else."""
    if not words or program_name(words) not in PACKAGE_MANAGERS:
        return None
    args = [w for w in words[1:] if w not in ("--silent", "-s", "--if-present")]
    if args[:1] in (["test"], ["t"]):
        name, rest = "test", args[1:]
    elif args[:1] in (["run"], ["run-script"]) and len(args) > 1:
        name, rest = args[1], args[2:]
    elif program_name(words) in ("yarn", "pnpm") and args and not args[0].startswith("-") \
            and args[0] not in ("install", "add", "exec", "dlx", "x"):
        name, rest = args[0], args[1:]
    else:
        return None
    return name, rest[1:] if rest[:1] == ["--"] else rest


def script_name(words: list[str]) -> str | None:
    call = script_call(words)
    return call[0] if call else None


def script_run(argv: list[str], root: Path) -> tuple[str, list[str]] | None:
    """(the script's text, extra arguments) when argv runs a package.json script: `npm test`, `npm run
    test:unit`, `yarn test`, ..."""
    call = script_call(argv)
    if call is None:
        return None
    name, rest = call
    script = test_script(root) if name == "test" else package_scripts(root).get(name)
    return (script, rest) if script and script.strip() else None


# Programs that run the command after them (coverage, environment, package runners): a test step is
# what they run. Their own options are skipped ("-r lcov" style values are not told apart).
WRAPPERS = frozenset({"c8", "nyc", "cross-env", "npx", "env", "dotenv", "env-cmd", "time"})
MAX_SCRIPT_DEPTH = 4  # scripts followed into scripts (`npm test` -> `npm run test:unit` -> ...)
_EXPANSIONS = re.compile(r"[`$()<>]")
_STEPS = re.compile(r"&&|\|\||;|(?<!\|)\|(?!\|)")


def script_parts(script: str, scripts: dict[str, str] | None = None, _depth: int = 0
                 ) -> list[tuple[str, list[str]]]:
    """The commands of a compound script (`eslint . && c8 node --test`) as (their text, their words
    without the leading VAR=value words and the wrappers that run the rest), loosely split. A step
    that runs another of `scripts` (`npm run test:unit`) is that script's steps, a few levels deep."""
    parts = []
    for part in _STEPS.split(script):
        words = unwrap(script_words(part))
        name = script_name(words)
        if scripts and name in scripts and _depth < MAX_SCRIPT_DEPTH:
            parts += script_parts(scripts[name], scripts, _depth + 1)
        elif words:
            parts.append((part.strip(), words))
    return parts


def script_steps(script: str, scripts: dict[str, str] | None = None) -> list[list[str]]:
    """The words of each command of a script (script_parts): what to look for a test runner in."""
    return [words for _, words in script_parts(script, scripts)]


def unwrap(words: list[str]) -> list[str]:
    """A command without its leading VAR=value words and the wrappers that run the rest (`c8 -r lcov
    node --test` is `node --test`)."""
    return step_env(words)[1]


def step_env(words: list[str]) -> tuple[dict[str, str], list[str]]:
    """(the VAR=value words set before the command or through cross-env/env, the command without them
    and without its wrappers)."""
    env: dict[str, str] = {}
    while words and (_ASSIGNMENT.match(words[0]) or program_name(words) in WRAPPERS
                     or (words[0].startswith("-") and len(words) > 1)):
        if _ASSIGNMENT.match(words[0]):
            key, value = words[0].split("=", 1)
            env[key] = value
        words = words[1:]
    return env, words


def steps_of(script: str | None, root: Path) -> list[list[str]]:
    """The steps of one of the project's scripts (script_steps), the scripts it runs followed."""
    return script_steps(script, package_scripts(root)) if script else []


# Tools that check code without making anything its tests need (linters, formatters, type and package
# checks, audits): a test run does without them. Any other step before the test step (a build) is kept.
CHECKERS = frozenset({"eslint", "standard", "xo", "prettier", "tsd", "tstyche", "aud", "audit-ci", "markdownlint",
                      "stylelint", "biome", "oxlint", "lint-staged", "depcheck", "knip", "publint", "attw",
                      "evalmd", "size-limit", "dtslint", "license-checker"})


@dataclass(frozen=True)
class TestStep:
    """How to run a script's test step: the steps before it that may build what it needs (their text),
    its own words without wrappers, and the variables it sets."""

    before: tuple[str, ...]
    words: list[str]
    env: dict[str, str]

    def argv(self, words: list[str]) -> list[str]:
        """`words` (the step as it is to run) after the steps before it, in a shell when there are any."""
        return ["sh", "-c", " && ".join([*self.before, shlex.join(words)])] if self.before else words


def test_step(script: str, root: Path, runs: Callable[[list[str]], bool]) -> TestStep | None:
    """The first step of `script` (scripts it runs followed) that `runs` a test runner, run alone: what
    follows it (type checks, audits, pretty-printers it is piped into) is left out, and so are the
    checkers before it. None when no step does, or the step needs a shell to be understood."""
    parts = script_parts(script, package_scripts(root))
    for i, (text, words) in enumerate(parts):
        if runs(words):
            if _EXPANSIONS.search(text):  # $VARS, $(...), `...`, redirections: only a shell can run it
                return None
            env, _ = step_env(script_words(text))
            before = tuple(t for t, w in parts[:i] if not _checks_only(w))
            return TestStep(before, words, env)
    return None


def _checks_only(words: list[str]) -> bool:
    return program_name(words) in CHECKERS or words[:2] == ["npm", "audit"] or \
        (program_name(words) == "tsc" and "--noEmit" in words)


def script_words(script: str) -> list[str]:
    """The words of a script, split loosely (for recognizing what it runs, never for running it)."""
    try:
        return shlex.split(script)
    except ValueError:
        return script.split()


def frames(text: str, root: Path) -> list[tuple[str, int]]:
    """(absolute path, line) of every JS file location named in text, in order; relative paths are
    taken relative to root."""
    found = []
    for m in _FRAME.finditer(strip_ansi(text)):
        path = m.group("path")
        if not os.path.isabs(path):
            path = os.path.normpath(os.path.join(root, path))
        found.append((path, int(m.group("line"))))
    return found


def rel(path: str, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return path


def locate(text: str, root: Path, test_file: str | None) -> tuple[str | None, int | None]:
    """(file relative to root, line) of the first frame in the test's own file, else the first frame
    in the project; (None, None) when the text names no project file."""
    found = [(p, n) for p, n in frames(text, root) if is_project_file(p, root)]
    if test_file:
        for path, line in found:
            if path == test_file:
                return rel(path, root), line
    if found:
        return rel(found[0][0], root), found[0][1]
    return None, None


def message_lines(text: str) -> list[str]:
    """The lines of an error text before its stack trace, without colour codes or blank lines."""
    out = []
    for line in strip_ansi(text).splitlines():
        if re.match(r"^\s*at\s", line):
            break
        if line.strip():
            out.append(line.strip())
    return out
