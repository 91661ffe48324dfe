"""Confines the file tools to one folder: resolves the paths the model gives and refuses escapes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from clude.agent.tools.result import ToolError

# The project's own environments: read-only to sandboxed commands (a .pth or plugin put there would
# load into every test run), as the tests need them.
ENVIRONMENTS = (".venv", "venv")
# Folders the file tools never write into: git's own database, and clude's logs and state.
PROTECTED = (".git", ".clude")
# Folders list_files and grep do not descend into: version control, clude, caches, dependencies.
SKIP_DIRS = frozenset({".git", ".clude", "__pycache__", "node_modules", ".venv", "venv",
                       ".pytest_cache", ".mypy_cache", ".ruff_cache", ".tox", ".hg", ".svn"})


class OutsideWorkspace(ToolError):
    """A path that leads outside the workspace (by '..', an absolute path or a symlink), or into a
    folder the tools must not write (.git, .clude)."""


class Workspace:
    """The folder an agent works in; every path a file tool touches goes through resolve()."""

    def __init__(self, root: Path, *, closed: tuple[str, ...] = ()):
        self.given = Path(os.path.abspath(root))
        self.root = Path(os.path.realpath(root))
        self.closed = frozenset(closed)  # folders of the root whose files are never read (a planner's: .git)

    def is_closed(self, real: Path) -> bool:
        """Whether a real path lies in one of the closed folders."""
        return bool(self.closed) and self.inside(real) and bool(self.closed & set(real.relative_to(self.root).parts))

    def resolve(self, path: str, *, for_write: bool = False) -> Path:
        """The real path (symlinks resolved) of `path`, relative to the root unless absolute.

        Raises ToolError for an empty path, OutsideWorkspace for a path leading outside the root
        and, with for_write, for one inside .git/ or .clude/.
        """
        if not isinstance(path, str) or not path.strip():
            raise ToolError("the path is empty: give a path relative to the workspace root, such as "
                            "src/app.py ('.' is the root itself).")
        if "\0" in path:
            raise ToolError(f"the path {path!r} contains a NUL character, which no file name can hold.")
        raw = os.path.expanduser(path.strip())
        joined = os.path.join(self.root, raw)  # an absolute `raw` replaces the root
        real = Path(os.path.realpath(joined))
        if not self.inside(real):
            raise OutsideWorkspace(self._outside_message(path, joined, real))
        if for_write:
            parts = real.relative_to(self.root).parts
            for part in PROTECTED:
                if part in parts:
                    raise OutsideWorkspace(
                        f"{path} is inside {part}/, which the file tools do not write: .git is git's "
                        f"own database (change it with git commands through run_shell) and .clude "
                        f"holds clude's logs and state. Write your files elsewhere in the workspace.")
        return real

    def confinement(self) -> dict[str, list[Path]]:
        """What a sandboxed command of this workspace may touch: the workspace writable, except its
        .git (read-only: no hook, config or object an agent writes there runs later in someone's git; its
        config, which may hold a token, reads as empty) and .clude (hidden: clude's sessions, reports and
        verdict cache)."""
        return {"writable": [self.root], "readable": [self.root / d for d in (".git", *ENVIRONMENTS)],
                "hidden": [self.root / ".clude", self.root / ".git" / "config"]}

    def inside(self, real: Path) -> bool:
        return real == self.root or real.is_relative_to(self.root)

    def show(self, path: Path | str) -> str:
        """How a path is named to the model: relative to the root when inside it."""
        path = Path(path)
        for base in (self.root, self.given):
            if path == base:
                return "."
            if path.is_relative_to(base):
                return path.relative_to(base).as_posix()
        return str(path)

    def walk(self, start: Path) -> Iterator[Path]:
        """The regular files under `start` (itself when it is one), sorted folder by folder (a
        folder's files, then its subfolders, as os.walk goes), skipping SKIP_DIRS below it, symlinks
        that lead outside the workspace or into a closed folder, and FIFOs, sockets and devices (opening
        one can block or act on a device). Symlinked folders are not followed."""
        if not start.is_dir():
            if start.is_file():
                yield start
            return
        pending = [start]
        while pending:
            folder = pending.pop()
            try:
                with os.scandir(folder) as listing:
                    entries = sorted(listing, key=lambda entry: entry.name)
            except OSError:  # vanished or unreadable meanwhile: nothing to show from it
                continue
            folders = []
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name not in SKIP_DIRS:
                            folders.append(Path(entry.path))
                        continue
                    if not entry.is_file():  # FIFO, socket, device, dangling link, link to a folder
                        continue
                    if entry.is_symlink() and (not self.inside(real := Path(os.path.realpath(entry.path)))
                                               or self.is_closed(real)):
                        continue
                except OSError:
                    continue
                yield Path(entry.path)
            pending.extend(reversed(folders))

    def _outside_message(self, given: str, joined: str, real: Path) -> str:
        lexical = Path(os.path.normpath(joined))
        if self.inside(lexical) or lexical.is_relative_to(self.given):
            how = f" through the symbolic link {self._link_out(lexical)}"
        elif os.path.isabs(os.path.expanduser(given.strip())):
            how = ""
        else:
            how = " ('..' climbs out of it)"
        return (f"{given} leads to {real}{how}, which is outside the workspace {self.root}. The file "
                f"tools work only inside the workspace: use a path relative to its root, such as "
                f"src/app.py.")

    def _link_out(self, lexical: Path) -> str:
        """The first symlink along `lexical` that leads outside the root, named from the root."""
        base = self.root if self.inside(lexical) else self.given
        here = base
        for part in lexical.relative_to(base).parts:
            here = here / part
            if here.is_symlink() and not self.inside(Path(os.path.realpath(here))):
                return f"{here.relative_to(base).as_posix()} -> {os.readlink(here)}"
        return "along it"
