"""list_files and grep: find files by glob and lines by regular expression, within the output budget."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

from clude.agent.tools.files import SNIFF_BYTES, not_regular, open_regular
from clude.agent.tools.result import ToolError, looks_binary
from clude.agent.tools.workspace import Workspace

LIST_LIMIT = 500  # paths listed before "... and N more"
MATCH_LIMIT = 200  # grep lines shown before "... N more matches"
LINE_WIDTH = 200  # characters of a matching line shown
GREP_MAX_FILE = 10 * 1024 * 1024  # bytes; bigger files (logs, dumps) are not searched


def _glob_regex(pattern: str) -> str:
    """A glob as a regular expression: ** spans folders, * and ? stay within one, [...] classes."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2:]:
            close = pattern.index("]", i + 2)
            body = pattern[i + 1:close]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = close + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def _braces(pattern: str) -> list[str]:
    """Expand {a,b} alternatives: '*.{ts,tsx}' -> ['*.ts', '*.tsx']."""
    match = re.search(r"\{([^{}]*)\}", pattern)
    if not match:
        return [pattern]
    return [full for alt in match.group(1).split(",")
            for full in _braces(pattern[:match.start()] + alt + pattern[match.end():])]


def glob_matcher(pattern: str) -> Callable[[str, str], bool]:
    """A test of (path relative to the searched folder, path relative to the root) against a glob.

    A pattern without '/' matches file names at any depth ('*.py'); one with '/' matches the
    relative path ('src/**/*.py', '**/conftest.py').
    """
    pattern = pattern.strip()
    while pattern.startswith("./"):
        pattern = pattern[2:]
    regex = re.compile("(?:" + "|".join(_glob_regex(p) for p in _braces(pattern)) + r")\Z")
    if "/" not in pattern:
        return lambda rel, from_root: bool(regex.match(rel.rsplit("/", 1)[-1]))
    return lambda rel, from_root: bool(regex.match(rel) or regex.match(from_root))


def _start(ws: Workspace, path: str) -> Path:
    start = ws.resolve(path)
    if not start.exists():
        raise ToolError(f"{path} does not exist. Paths are relative to the workspace root; "
                        f"list_files with path='.' shows what there is.")
    mode = start.stat().st_mode
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise not_regular(path, mode)
    return start


def _files(ws: Workspace, start: Path, pattern: str | None):
    """(file, path from the root) of the files under `start` that match `pattern`."""
    match = glob_matcher(pattern) if pattern else None
    for file in ws.walk(start):
        from_root = ws.show(file)
        if match is None:
            yield file, from_root
            continue
        rel = file.relative_to(start).as_posix() if start.is_dir() else file.name
        if match(rel, from_root):
            yield file, from_root


def list_files(ws: Workspace, path: str, pattern: str | None, budget: int) -> str:
    start = _start(ws, path)
    found = sorted(from_root for _, from_root in _files(ws, start, pattern))
    where = ws.show(start)
    if not found:
        what = f" matching {pattern!r}" if pattern else ""
        return (f"no files{what} under {where} (list_files skips .git, .clude, __pycache__, "
                f"node_modules, .venv and tool caches).")
    shown, used = [], 0
    for name in found[:LIST_LIMIT]:
        used += len(name.encode("utf-8")) + 1
        if used > budget - 200:
            break
        shown.append(name)
    text = "\n".join(shown)
    if len(shown) < len(found):
        text += (f"\n... and {len(found) - len(shown)} more ({len(found)} files in all; narrow the "
                 f"listing with path or pattern)")
    else:
        text += f"\n({len(found)} file{'s' if len(found) != 1 else ''})"
    return text


def _bad_regex(pattern: str, error: re.error) -> ToolError:
    return ToolError(f"bad regular expression {pattern!r}: {error}. grep takes a Python regular "
                     f"expression: escape the characters ( ) [ ] {{ }} . * + ? | ^ $ \\ with a "
                     f"backslash to match them literally (for example 'print\\(' finds 'print(').")


def _clip_line(line: str, match: re.Match) -> str:
    line = line.rstrip()
    if len(line) <= LINE_WIDTH:
        return line
    start = max(0, min(match.start() - 60, len(line) - LINE_WIDTH))
    piece = line[start:start + LINE_WIDTH]
    return ("..." if start else "") + piece + ("..." if start + LINE_WIDTH < len(line) else "")


def grep(ws: Workspace, pattern: str, path: str, glob: str | None, ignore_case: bool,
         budget: int) -> str:
    if pattern == "":
        raise ToolError("the pattern is empty: give a regular expression to search for, such as "
                        "'def main' or 'TODO|FIXME'.")
    try:
        regex = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except re.error as error:
        raise _bad_regex(pattern, error) from None
    start = _start(ws, path)
    shown: list[str] = []
    used = 0
    total = 0
    files = 0
    for file, from_root in _files(ws, start, glob):
        try:
            with open_regular(file, from_root) as f:
                if os.fstat(f.fileno()).st_size > GREP_MAX_FILE:
                    continue
                head = f.read(SNIFF_BYTES)
                if looks_binary(head):
                    continue
                data = head + f.read()
        except (OSError, ToolError):  # gone, unreadable, or no longer a regular file
            continue
        hit = False
        for number, line in enumerate(data.decode("utf-8", "replace").split("\n"), 1):
            match = regex.search(line)
            if match is None:
                continue
            total += 1
            hit = True
            if len(shown) >= MATCH_LIMIT or used > budget:
                continue
            entry = f"{from_root}:{number}: {_clip_line(line, match)}"
            used += len(entry.encode("utf-8")) + 1
            if used <= budget - 200:
                shown.append(entry)
        files += hit
    where = ws.show(start)
    if not total:
        only = f" in files matching {glob!r}" if glob else ""
        return f"no matches for {pattern!r} under {where}{only}."
    text = "\n".join(shown)
    if len(shown) < total:
        text += (f"\n... {total - len(shown)} more matches ({total} in {files} files; narrow the "
                 f"search with path, glob or a more specific pattern)")
    return text
