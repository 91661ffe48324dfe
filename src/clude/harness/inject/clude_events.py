"""Writes clude's test event stream (one JSON object a line) from inside the user's test process.

Standard library only, like everything in this folder: it runs in the user's interpreter. The stream is
read by clude.harness.events. Events:
  {"ev": "start"}                                   the framework started running (collection began)
  {"ev": "collect_error", "id", "file", "line", "reason"}
  {"ev": "sample", "rate", "seed", "selected", "of"}
  {"ev": "begin", "id"}                             a test started
  {"ev": "result", "id", "outcome", "kind", "file", "line", "reason"}
  {"ev": "interrupted"}
  {"ev": "finish", "exit", "stopped"}               results are complete
Every line is flushed as it is written, so a process that dies mid-run leaves what it had done and the
test it was running.
"""

import json
import os
import re
import sys

REASON_MAX = 300
EVENTS_ENV = "CLUDE_EVENTS_FILE"
RATE_ENV = "CLUDE_SAMPLE_RATE"
SEED_ENV = "CLUDE_SAMPLE_SEED"
OWNER_ENV = "CLUDE_EVENTS_OWNER"  # the pid of the process that writes the events (see from_env)


class EventWriter:
    def __init__(self, path):
        # unbuffered, appending: each event is one write() that reaches the file at once
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._pid = os.getpid()

    def emit(self, ev, **fields):
        if os.getpid() != self._pid:
            return  # a child forked by a test (without exec) must not speak for the run
        fields["ev"] = ev
        os.write(self._fd, (json.dumps(fields, ensure_ascii=True) + "\n").encode("ascii"))


def from_env():
    """The writer of this process's events, or None when no clude run asked this process for them.

    The first process that opens the events file claims it (OWNER_ENV = its pid, inherited by its
    children). A test run that a test starts inherits the whole environment; finding the file claimed
    by another process, it stays silent instead of mixing its results into the run clude started.
    """
    path = os.environ.get(EVENTS_ENV)
    if not path:
        return None
    owner = os.environ.get(OWNER_ENV)
    if owner and owner != str(os.getpid()):
        return None
    os.environ[OWNER_ENV] = str(os.getpid())
    return EventWriter(path)


def json_object(line):
    """The JSON object on one line of a stream, or None for anything else (text, a torn line)."""
    if not line.lstrip().startswith("{"):
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def sample_settings():
    """(rate, seed) when sampling was asked for, else None."""
    rate = os.environ.get(RATE_ENV)
    if not rate:
        return None
    return float(rate), os.environ.get(SEED_ENV, "")


# Lines of an assertion message that repeat what its first line says: pytest's diff of two values
# ("- y", "+ x", "? ^") and its hints. "+  where x = f()" lines say where a value came from: kept.
_NOISE = re.compile(r"^(?:[-?] |\+ (?!\s*where )|Full diff:|Use -v to get|Omitting \d+ identical)")


# Terminal escape sequences (colours, cursor moves, window titles), and an escape cut off at the end of
# a text: reasons, summaries and locations are read as plain text.
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_]|\[?[0-?]*[ -/]*$)")


def strip_ansi(text):
    return _ESCAPES.sub("", text).replace("\x1b", "")


def one_line(text):
    """Text collapsed to one line of at most REASON_MAX characters, without escapes or diff noise.
    Escapes go first: a project that forces colour (CI=true makes pytest print whole coloured diffs)
    would otherwise hide its diff lines from the noise filter and have an escape cut in half."""
    lines = [ln.strip() for ln in strip_ansi(str(text)).splitlines() if ln.strip()]
    diff = next((i for i, ln in enumerate(lines) if i and ln.startswith("Full diff:")), None)
    if diff is not None:  # what follows is the whole diff of two values, already summed up above it
        lines = lines[:diff]
    lines = lines[:1] + [ln for ln in lines[1:] if not _NOISE.match(ln)]
    joined = " ".join(lines)
    joined = re.sub(r"\s+", " ", joined)
    if joined.startswith("AssertionError: assert "):
        joined = joined[len("AssertionError: "):]
    if len(joined) > REASON_MAX:
        joined = joined[: REASON_MAX - 3] + "..."
    return joined


# Folders inside a project that hold other people's code: a frame there is not the project's.
VENDORED = frozenset({"site-packages", "dist-packages", ".venv", "venv", "node_modules"})


def is_project_file(path, root):
    """True for a file of the project under test, not of the interpreter or an installed package.
    Only the part of the path below the project counts (a project may live under /srv/venv/)."""
    path, root = os.path.abspath(path), os.path.abspath(root)
    if not path.startswith(root + os.sep):
        return False
    return not VENDORED.intersection(path[len(root) + 1:].split(os.sep))


def relative(path, root):
    path = os.path.abspath(path)
    try:
        rel = os.path.relpath(path, root)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def last_project_frame(frames, root):
    """(file, line) of the innermost frame in the project.

    `frames` is a list of (path, 1-based line), outermost first.
    """
    in_project = [(p, n) for p, n in frames if is_project_file(p, root)]
    if not in_project:
        return None, None
    path, line = in_project[-1]
    return relative(path, root), line


# Where a traceback names a place: Python's `File "x.py", line 3`, a compiler's `x.c:3:` at a line's
# start, and a JavaScript stack frame's `(test/x.js:3:7)` or `at test/x.js:3:7`.
_LOCATION = re.compile(r'File "([^"]+)", line (\d+)|^(\S+\.\w+):(\d+):'
                       r"|(?:\(|\bat )(?:file://)?([^()\s]+\.[cm]?[jt]sx?):(\d+):\d+", re.M)


def location_in_text(text, root):
    """(file, line) of the last project location named in a traceback printed as text."""
    found = []
    for m in _LOCATION.finditer(str(text)):
        path = m.group(1) or m.group(3) or m.group(5)
        line = int(m.group(2) or m.group(4) or m.group(6))
        if not os.path.isabs(path):
            path = os.path.join(root, path)
        found.append((path, line))
    return last_project_frame(found, root)


def error_line(text):
    """The line of a printed traceback that says what went wrong ("E   ValueError: ..." in pytest)."""
    lines = [ln.rstrip() for ln in str(text).splitlines() if ln.strip()]
    internal = [ln[len("INTERNALERROR>"):] for ln in lines if ln.startswith("INTERNALERROR>")]
    if internal:  # pytest's own crash: its traceback is the part that explains it
        lines = [ln for ln in internal if ln.strip()]
    marked = [ln[1:].strip() for ln in lines if ln.startswith("E ")]
    if marked:
        # pytest prints the exception last; a SyntaxError's caret lines come before its message
        for ln in reversed(marked):
            if re.match(r"^[\w.]+(Error|Exception|Exit|Interrupt)\b", ln) or ":" in ln:
                return one_line(ln)
        return one_line(marked[-1])
    for ln in reversed(lines):
        if re.match(r"^[\w.]+(Error|Exception|Exit|Interrupt)\b", ln.strip()):
            return one_line(ln)
    return one_line(lines[-1]) if lines else ""


if __name__ == "__main__":  # pragma: no cover - not a script
    sys.exit("clude_events is a library for clude's test plugins")
