"""What a project's tox.ini tells pytest to collect: the arguments of the pytest command in its [testenv]
`commands` that change which tests run (doctest modules and globs, ignored paths, deselected tests, a
marker expression, the paths to collect), so that `clude test` runs the tests `tox` runs. Output and
coverage options, tox's own substitutions and {posargs} are left out; a path is kept only when it is a
folder or file of the project. Pure but for reading tox.ini and looking at the paths it names."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path

# options that take their value in the next word, when not written as --opt=value
_VALUED = {"--doctest-glob", "--ignore", "--ignore-glob", "--deselect", "-m", "--import-mode"}
_FLAGS = {"--doctest-modules", "--doctest-continue-on-failure"}
# long options known to take no value: a path after one of them is a path to collect. After any other
# long option written without "=", the next word is taken for its value (--cov-config tox.ini).
_NO_VALUE = {"--verbose", "--quiet", "--strict-markers", "--strict-config", "--showlocals", "--exitfirst",
             "--no-header", "--no-summary", "--last-failed", "--failed-first", "--new-first", "--lf", "--ff",
             "--nf", "--doctest-modules", "--doctest-continue-on-failure"}
_POSARGS = re.compile(r"\{posargs(?::[^{}]*)?\}")
_PYTEST = re.compile(r"^(?:.*/)?(?:pytest|py\.test)$")


def _command_lines(text: str) -> list[str]:
    """The commands of [testenv] (else the first [testenv:*] that has any), continuation lines joined."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except (configparser.Error, UnicodeDecodeError):
        return []
    envs = [s for s in parser.sections() if s == "testenv"] + [s for s in parser.sections() if s.startswith("testenv:")]
    for section in envs:
        commands = parser.get(section, "commands", fallback="")
        if commands.strip():
            return [line.strip() for line in commands.replace("\\\n", " ").splitlines() if line.strip()]
    return []


def _pytest_words(line: str) -> list[str] | None:
    """The words after `pytest` in one command (`pytest`, `py.test`, `python -m pytest`, `coverage run -m
    pytest`, `{envpython} -m pytest`); None when the command is not pytest."""
    try:
        words = shlex.split(_POSARGS.sub("", line))
    except ValueError:
        return None
    for i, word in enumerate(words):
        if i == 0 and _PYTEST.match(word):
            return words[1:]
        if word == "-m" and i + 1 < len(words) and words[i + 1] in ("pytest", "py.test"):
            return words[i + 2:]
    return None


def _path(word: str, root: Path) -> str | None:
    """A path argument as a path of the project: {toxinidir}/x is x, {envsitepackagesdir}/pkg is the
    package's own folder (at the root or under src/); None for anything else or what does not exist."""
    word = word.replace("{toxinidir}/", "").replace("{toxinidir}", ".")
    if word.startswith("{envsitepackagesdir}/"):
        word = word.split("/", 1)[1]
        if not (root / word).exists() and (root / "src" / word).exists():
            word = f"src/{word}"
    if "{" in word or word.startswith("/") or ".." in Path(word).parts or not (root / word).exists():
        return None
    return word


def collect_args(root: Path, text: str) -> list[str]:
    """The arguments of tox.ini's pytest command (`text`) that choose what pytest collects."""
    for line in _command_lines(text):
        words = _pytest_words(line)
        if words is None:
            continue
        kept: list[str] = []
        i = 0
        while i < len(words):
            word = words[i]
            name = word.split("=", 1)[0]
            if word in _FLAGS:
                kept.append(word)
            elif name in _VALUED and "=" in word:
                kept.append(word)
            elif word in _VALUED and i + 1 < len(words):
                kept += [word, words[i + 1]]
                i += 1
            elif word.startswith("--") and "=" not in word and word not in _NO_VALUE:
                i += 1  # an option of another kind, and its value
            elif not word.startswith("-") and (path := _path(word, root)) is not None:
                kept.append(path)
            i += 1
        return kept
    return []
