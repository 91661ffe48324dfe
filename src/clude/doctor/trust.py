"""The pre-flight checks of what keeps agents contained: the sandbox (bubblewrap) and an upstream that
refuses force pushes and deleting branches."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from clude.config.settings import Settings
from clude.gitcli import GitError, git_text
from clude.doctor.check import Check
from clude.team.protocol.upstream import PROTECTED_UPSTREAM


def sandbox_check(settings: Settings) -> Check:
    """bubblewrap found and able to make a sandbox (ERROR with the command that installs it), or a
    WARN when [sandbox] mode / --sandbox turned it off."""
    from clude.sandbox import problem

    if settings.sandbox.mode == "off":
        return Check("sandbox", True, "off: agents and tests run without a sandbox, so they can read your "
                                      "credentials and files and reach the upstream", warn=True)
    why = problem()
    if why:
        return Check("sandbox", False, f"{why}; or pass --sandbox off (agents could then read your "
                                       "credentials and reach the upstream)")
    program = shutil.which("bwrap") or "bwrap"
    try:
        version = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        version = "bubblewrap"
    network = "shared" if settings.sandbox.network else "cut"
    return Check("sandbox", True, f"{version} ({program}): agents and tests see only their work tree "
                                  f"writable, credentials and clude's state hidden; network {network}")


def protection_check(root: Path, url: str) -> Check:
    """A local upstream refuses non-fast-forward pushes and deleting branches (what `team init` sets);
    a remote one cannot be read from here: a WARN saying what to protect on the server."""
    from clude.team.protocol.git import is_local_url

    if not is_local_url(url):
        return Check("upstream protection", True, f"{url} is not a local path, so whether it refuses force "
                     "pushes and deleting branches cannot be checked from here: protect main on the server "
                     "(no force pushes, no deletion)", warn=True)
    path = Path(url).expanduser()
    path = path if path.is_absolute() else root / path
    missing = []
    for key, value in PROTECTED_UPSTREAM.items():
        try:
            now = git_text(path, "config", "--get", key, ok=(0, 1))
        except GitError:
            now = ""
        if now.lower() != value:
            missing.append(key)
    if missing:
        fix = "; ".join(f"git -C {path} config {key} true" for key in missing)
        return Check("upstream protection", True, f"the upstream allows {' and '.join(_said(k) for k in missing)}: "
                     f"an agent or a mistake could rewrite or delete main ({fix})", warn=True)
    return Check("upstream protection", True, f"{path} refuses force pushes and deleting branches")


def _said(key: str) -> str:
    return {"receive.denyNonFastForwards": "force pushes", "receive.denyDeletes": "deleting branches"}[key]
