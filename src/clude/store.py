"""Atomic file writes (a temp file beside the target, renamed over it: a reader never sees half a file and
a hard link the old file shared is never written through), and exclusive locks between processes."""

from __future__ import annotations

import fcntl
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator


@contextmanager
def replacing(path: Path, *, mode: int = 0o600, sync: bool = True) -> Iterator[BinaryIO]:
    """A new file to write `path`'s content into; it replaces `path` when the block ends without an
    error (fsynced first with `sync`), and is removed otherwise. `mode`: the new file's permission bits
    (less the umask), as open(2) creates it (never through a symlink)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str, *, sync: bool = True) -> None:
    """`path` replaced by `text` whole or not at all; `sync=False` for what a crash may lose (a file
    rewritten often, or one that is only a record or a cache): no fsync, which on a busy disk costs more
    than the write."""
    with replacing(path, sync=sync) as f:
        f.write(text.encode("utf-8"))


@contextmanager
def exclusive(path: Path, *, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive flock on `path` (made when missing) for the block: released on exit, and by
    the kernel when the process is killed. `wait=False`: the block gets False at once when another
    holds it (and holds nothing), True when it got it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
