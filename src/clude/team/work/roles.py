"""The roles of a team's workers and their prompts: editable Markdown files in roles/ (ROLE.md), which
a folder of the user's ([team] roles_dir) can replace or extend."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

ROLES = ["implementer", "tester", "refactorer", "performance", "docs", "critic"]
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def role_prompt(name: str, roles_dir: Path | None = None) -> str:
    """The prompt of role `name`: roles_dir/NAME.md when there is one, else the built-in one.
    ValueError names the known roles when there is neither."""
    if not _NAME.fullmatch(name or ""):
        raise ValueError(f"{name!r} is not a role name: {_known(roles_dir)}")
    if roles_dir is not None:
        mine = Path(roles_dir) / f"{name}.md"
        if mine.is_file():
            return mine.read_text(encoding="utf-8")
    if name in ROLES:
        return resources.files("clude.team").joinpath(f"roles/{name}.md").read_text(encoding="utf-8")
    raise ValueError(f"unknown role {name!r}: {_known(roles_dir)}")


def role_names(roles_dir: Path | None = None) -> list[str]:
    """The built-in roles, then those only roles_dir has."""
    extra: list[str] = []
    if roles_dir is not None and Path(roles_dir).is_dir():
        extra = sorted(p.stem for p in Path(roles_dir).glob("*.md")
                       if _NAME.fullmatch(p.stem) and p.stem not in ROLES)
    return ROLES + extra


def _known(roles_dir: Path | None) -> str:
    where = f" or a ROLE.md in {roles_dir}" if roles_dir is not None else " (or a ROLE.md in [team] roles_dir)"
    return f"use one of {', '.join(role_names(roles_dir))}{where}"
