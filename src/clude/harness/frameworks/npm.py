"""What the JavaScript adapters share: package.json test scripts, npm-style commands, JS stack frames."""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

from clude.harness.inject.clude_events import strip_ansi
from clude.harness.frameworks.base import program_name
from clude.harness.inject.clude_events import is_project_file

PACKAGE_MANAGERS = ("npm", "pnpm", "yarn", "bun")
# `npm init` writes this placeholder; it is no test runner
_PLACEHOLDER = "no test specified"
_SHELL_SYNTAX = re.compile(r"&&|\|\||[;|<>`$()]")
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


def test_script(root: Path) -> str | None:
    """The project's `scripts.test`, unless it is missing or npm's placeholder."""
    scripts = read_package(root).get("scripts")
    script = scripts.get("test") if isinstance(scripts, dict) else None
    if not isinstance(script, str) or not script.strip() or _PLACEHOLDER in script:
        return None
    return script


def script_run(argv: list[str], root: Path) -> tuple[str, list[str]] | None:
    """(scripts.test, extra arguments) when argv is `npm test` (`npm run test`, `yarn test`, ...)."""
    if not argv or program_name(argv) not in PACKAGE_MANAGERS:
        return None
    args = argv[1:]
    if args[:1] in (["test"], ["t"]):
        rest = args[1:]
    elif args[:2] in (["run", "test"], ["run-script", "test"]):
        rest = args[2:]
    else:
        return None
    script = test_script(root)
    if script is None:
        return None
    return script, rest[1:] if rest[:1] == ["--"] else rest


def simple_command(script: str) -> tuple[dict[str, str], list[str]] | None:
    """(environment, argv) of a script that is one plain command, else None (pipes, &&, $VARS ...)."""
    if _SHELL_SYNTAX.search(script):
        return None
    try:
        words = shlex.split(script)
    except ValueError:
        return None
    env: dict[str, str] = {}
    while words and _ASSIGNMENT.match(words[0]):
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    return (env, words) if words else None


# Programs that run the command after them (coverage, environment, package runners): a test step is
# what they run. Their own options are skipped ("-r lcov" style values are not told apart).
WRAPPERS = frozenset({"c8", "nyc", "cross-env", "npx", "env", "dotenv", "env-cmd", "time"})
_STEPS = re.compile(r"&&|\|\||;|(?<!\|)\|(?!\|)")


def script_steps(script: str) -> list[list[str]]:
    """The commands of a compound script (`eslint . && c8 node --test`), each without its leading
    VAR=value words and the wrappers that run the rest: what to look for a test runner in, loosely
    split (never for running it)."""
    steps = []
    for part in _STEPS.split(script):
        words = script_words(part)
        while words and (_ASSIGNMENT.match(words[0]) or program_name(words) in WRAPPERS
                         or (words[0].startswith("-") and len(words) > 1)):
            words = words[1:]
        if words:
            steps.append(words)
    return steps


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
