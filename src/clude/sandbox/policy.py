"""What one sandboxed process may see and touch (a Policy), and the bubblewrap command line for it (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

# How a path appears inside the sandbox. Everything not named is visible read-only (/ is bound
# read-only); a hidden folder is an empty read-only tmpfs, a hidden file reads as empty.
Access = Literal["hidden", "readable", "writable"]
# When one path is named twice, the wider access wins: a backend's declared ~/.claude stays
# writable though ~/.claude is on the credentials list.
_RANK = {"hidden": 0, "readable": 1, "writable": 2}


@dataclass(frozen=True)
class Mount:
    path: str       # absolute, symlinks resolved
    access: Access
    is_dir: bool


@dataclass(frozen=True)
class Policy:
    """One sandboxed run: the mounts over a read-only view of the whole machine, the working
    folder, and whether the network is shared with the host."""

    mounts: tuple[Mount, ...] = ()
    cwd: str = "/"
    network: bool = True
    private_tmp: bool = True           # a fresh tmpfs at /tmp, gone with the run
    empty_file: str = "/dev/null"      # what a hidden file is replaced by (an empty regular file reads as empty)
    as_pid_1: bool = False             # the program is the namespace's pid 1 (no bwrap process beside it)


def merge(mounts: list[Mount]) -> list[Mount]:
    """One mount per path (the widest access named for it), parents before children, so that a
    folder hidden as a whole can have a child bound back in, and a child of a writable folder can
    be hidden or kept read-only (.git/hooks in a work tree)."""
    best: dict[str, Mount] = {}
    for mount in mounts:
        held = best.get(mount.path)
        if held is None or _RANK[mount.access] > _RANK[held.access]:
            best[mount.path] = mount
    return sorted(best.values(), key=lambda m: (m.path.rstrip("/").count("/"), m.path))


def bwrap_args(policy: Policy) -> list[str]:
    """bubblewrap's options for `policy` (the command follows after `--`).

    Every run: the machine read-only, a fresh /dev and /proc in its own PID namespace (no process
    of the host is visible), its own IPC namespace, all capabilities dropped (root inside cannot
    unmount what hides a path), killed when its parent dies; the network unshared on request.
    """
    args = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
            "--unshare-pid", "--unshare-ipc", "--die-with-parent", "--cap-drop", "ALL"]
    if not policy.network:
        args.append("--unshare-net")
    if policy.as_pid_1:
        args.append("--as-pid-1")
    if policy.private_tmp:
        args += ["--tmpfs", "/tmp"]
    remount: list[str] = []
    for mount in merge(list(policy.mounts)):
        if mount.access == "writable":
            args += ["--bind", mount.path, mount.path]
        elif mount.access == "readable":
            args += ["--ro-bind", mount.path, mount.path]
        elif mount.is_dir:
            args += ["--perms", "0755", "--tmpfs", mount.path]
            remount.append(mount.path)
        else:
            args += ["--ro-bind", policy.empty_file, mount.path]
    for path in remount:  # after the binds inside them are made: nothing can be written there
        args += ["--remount-ro", path]
    return [*args, "--chdir", policy.cwd]


def under(path: str, folder: str) -> bool:
    """Whether `path` is `folder` or inside it (both absolute, resolved)."""
    folder = folder.rstrip("/") or "/"
    return path == folder or path.startswith(folder + "/") or folder == "/"


def resolved(path: Path | str) -> str:
    return str(Path(path).expanduser().resolve())
