"""One pre-flight check's result: its name, OK / WARN / ERROR, and what was found or how to fix it."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Check:
    """One check: `detail` says what was found (OK) or how to fix it (ERROR); never a secret value."""

    name: str
    ok: bool
    detail: str
    warn: bool = False  # OK, but worth a look (a sandbox turned off, an upstream that allows force pushes)

    def line(self) -> str:
        return f"{'ERROR' if not self.ok else 'WARN' if self.warn else 'OK'} {self.name} — {self.detail}"

    def as_dict(self) -> dict:
        return asdict(self)
