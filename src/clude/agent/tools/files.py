"""read_file and write_file: numbered reading within the output budget, and whole-file writes."""

from __future__ import annotations

import difflib
import os
import stat
from pathlib import Path
from typing import BinaryIO

from clude.agent.tools.result import ToolError, looks_binary
from clude.agent.tools.workspace import Workspace
from clude.store import replacing

# Bytes read to decide whether a file is text.
SNIFF_BYTES = 8192
# Bytes kept for the header and footer lines of a read_file answer.
FRAME_BYTES = 300
# Files visited when looking elsewhere in the workspace for a missing file's name.
FIND_LIMIT = 20000
# How the tools open a file to read it: a FIFO swapped in for a file is not waited on (no writer
# needed), a terminal device never becomes the controlling one.
READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
# What a file that is not a regular file is, as the model is told.
KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
         (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
         (stat.S_ISDIR, "a folder"))


def kind(mode: int) -> str:
    """What the file of `mode` (st_mode) is when it is not a regular file: 'a named pipe (FIFO)'..."""
    return next((name for test, name in KINDS if test(mode)), "not a regular file")


def not_regular(shown: str, mode: int) -> ToolError:
    return ToolError(f"{shown} is {kind(mode)}, not a regular file: the file tools read and write "
                     f"ordinary files only (reading it could block or change a device). Leave it alone "
                     f"or inspect it with run_shell (e.g. `ls -l {shown}`).")


def existing_file(ws: Workspace, path: str, *, for_write: bool = False) -> Path:
    """The real path of an existing regular file; a clear ToolError for anything else."""
    target = ws.resolve(path, for_write=for_write)
    if not target.exists():
        raise ToolError(not_found(ws, path, target))
    if target.is_dir():
        raise ToolError(f"{path} is a folder, not a file: use list_files with path={path!r} to see "
                        f"the files in it.")
    mode = target.stat().st_mode
    if not stat.S_ISREG(mode):
        raise not_regular(path, mode)
    return target


def open_regular(target: Path, shown: str) -> BinaryIO:
    """`target` open for binary reading; a ToolError naming its kind when it is not a regular file (a
    FIFO, socket or device is never opened), checked again once open: one swapped in meanwhile is
    refused, never waited on."""
    mode = os.stat(target).st_mode
    if not stat.S_ISREG(mode):
        raise not_regular(shown, mode)
    fd = os.open(target, READ_FLAGS)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise not_regular(shown, mode)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(target: Path, shown: str) -> bytes:
    """The bytes of the regular file `target` (see open_regular)."""
    with open_regular(target, shown) as f:
        return f.read()


def replace_file(target: Path, data: bytes) -> None:
    """Make `target` hold `data` by writing a new file beside it and renaming it over the target, so a
    hard link the old file shares with a file elsewhere (outside the workspace, say) is never written
    through. An existing file's permission bits are kept; a new file gets 0666 less the umask."""
    try:
        old_mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        old_mode = None
    with replacing(target, mode=0o666, sync=False) as f:
        if old_mode is not None:
            os.fchmod(f.fileno(), old_mode)
        f.write(data)


def not_found(ws: Workspace, given: str, target: Path) -> str:
    """Why `given` does not exist, with the names it was probably meant to be."""
    folder = target.parent
    while not folder.is_dir() and ws.inside(folder.parent) and folder != ws.root:
        folder = folder.parent
    hints = []
    if folder == target.parent:
        try:
            names = os.listdir(folder)
        except OSError:
            names = []
        close = difflib.get_close_matches(target.name, names, n=3, cutoff=0.6)
        if close:
            hints.append("similar names in " + ws.show(folder) + ": " + ", ".join(close))
    else:
        hints.append(f"the folder {ws.show(target.parent)} does not exist either")
    elsewhere = same_name(ws, target.name)
    if elsewhere:
        hints.append("files with that name: " + ", ".join(elsewhere))
    hint = f" ({'; '.join(hints)})" if hints else ""
    return (f"{given} does not exist{hint}. Paths are relative to the workspace root; use list_files "
            f"or grep to find the right one, and write_file to create a new file.")


def same_name(ws: Workspace, name: str, limit: int = 5) -> list[str]:
    found: list[str] = []
    for count, file in enumerate(ws.walk(ws.root)):
        if count >= FIND_LIMIT or len(found) >= limit:
            break
        if file.name == name:
            found.append(ws.show(file))
    return found


def numbered(lines: list[tuple[int, str]]) -> str:
    """Lines as read_file shows them: `  12 | text`."""
    width = max(4, len(str(lines[-1][0]))) if lines else 4
    return "\n".join(f"{number:>{width}} | {text}" for number, text in lines)


def read_file(ws: Workspace, path: str, start_line: int | None, end_line: int | None,
              budget: int) -> str:
    target = existing_file(ws, path)
    shown = ws.show(target)
    start = start_line or 1
    if end_line is not None and end_line < start:
        raise ToolError(f"end_line ({end_line}) is before start_line ({start}): give a range with "
                        f"start_line <= end_line (both 1-based and inclusive).")
    with open_regular(target, shown) as f:
        size = os.fstat(f.fileno()).st_size
        if looks_binary(f.read(SNIFF_BYTES)):
            raise ToolError(f"{shown} is a binary file ({size} bytes); read_file shows text only. "
                            f"Inspect it with run_shell if needed (e.g. `file {shown}` or "
                            f"`xxd {shown} | head -40`).")
        if size == 0:
            return f"{shown} is empty (0 bytes)."
        f.seek(0)
        lines, total, resume_at = _take_lines(f, start, end_line, budget)
    if start > total:
        raise ToolError(f"start_line {start} is past the end of {shown}, which has {total} lines.")
    last = lines[-1][0]
    whole = start == 1 and last == total
    header = f"{shown} ({total} lines)" if whole else f"{shown} (lines {start}-{last} of {total})"
    text = header + "\n" + numbered(lines)
    if resume_at is not None:
        until = f", end_line={end_line}" if end_line is not None and end_line < total else ""
        stop = min(end_line or total, total)
        text += (f"\n[output budget reached: lines {resume_at}-{stop} not shown. To read on, call "
                 f"read_file with path={shown!r}, start_line={resume_at}{until}.]")
    return text


def _take_lines(f, start: int, end: int | None, budget: int):
    """The numbered lines of the range that fit in `budget`, the file's line count, and the first
    line of the range left out for lack of room (None when the whole range fits)."""
    room = max(budget - FRAME_BYTES, 200)
    lines: list[tuple[int, str]] = []
    used = 0
    total = 0
    resume_at = None
    for total, raw in enumerate(f, 1):
        if total < start or (end is not None and total > end) or resume_at is not None:
            continue
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        cost = len(text.encode("utf-8")) + 8 + len(str(total))
        if used + cost <= room:
            used += cost
            lines.append((total, text))
            continue
        if not lines:  # one line longer than the whole budget: show its start
            keep = text.encode("utf-8")[:room - 120].decode("utf-8", "ignore")
            lines.append((total, (f"{keep} ... [line cut: {len(text)} characters in all; see the "
                                  f"rest with run_shell, e.g. sed -n '{total}p' FILE | cut -c "
                                  f"{len(keep) + 1}-]")))
            resume_at = total + 1 if end is None or total < end else None
        else:
            resume_at = total
    if resume_at is not None and resume_at > total:
        resume_at = None
    return lines, total, resume_at


def count_lines(text: str) -> int:
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


def write_file(ws: Workspace, path: str, content: str) -> str:
    target = ws.resolve(path, for_write=True)
    if target.is_dir():
        raise ToolError(f"{path} is a folder; give the path of a file inside it to write_file.")
    existed = target.exists()
    before = ""
    if existed:
        old = read_regular(target, path)
        before = f"; it had {count_lines(old.decode('utf-8', 'replace'))} lines"
    folder = target.parent
    blocker = next((p for p in [folder, *folder.parents] if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise ToolError(f"cannot write {path}: {ws.show(blocker)} is a file, so it cannot hold "
                        f"other files. Choose another path.")
    folder.mkdir(parents=True, exist_ok=True)
    data = content.encode("utf-8", "surrogateescape")
    replace_file(target, data)
    how = f"overwritten{before}" if existed else "created"
    return f"wrote {count_lines(content)} lines ({len(data)} bytes) to {ws.show(target)} ({how})"
