"""Failing tests as the team's to-do list (pure): the failures of a run of the upstream's suite, grouped
by the cause the harness sees (where they fail and the error's signature), become tasks whose acceptance
tests are those tests; a test some task made this way already covers is never made a task again."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from clude.harness.verdict import Failure
from clude.team.board.tasks import Task
from clude.team.logs.logread import normalize_error

MADE_BY = "from-tests"
MAX_SHOWN = 20  # failures listed in a task's body
SIGNATURE_CHARS = 160
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


@dataclass
class Group:
    """Failures with one cause: the same place (file) and the same error, numbers and names aside."""

    where: str
    signature: str
    failures: list[Failure] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return [f.id for f in self.failures]


def signature(failure: Failure) -> str:
    """The error's first line with what varies between tests of one cause taken out: numbers, paths,
    ids, and quoted values (KeyError: 'x' and KeyError: 'y' are one cause)."""
    first = next((line for line in (failure.reason or "").splitlines() if line.strip()), "")
    return normalize_error(_QUOTED.sub("'…'", first))[:SIGNATURE_CHARS] or failure.kind


def place(failure: Failure) -> str:
    """Where it fails: the file of its failure line, else the file in its id ("tests/t.py::test_x")."""
    return failure.file or failure.id.partition("::")[0] or failure.id


def group(failures: Iterable[Failure]) -> list[Group]:
    """The failures by cause, in the order they were first seen."""
    found: dict[tuple[str, str], Group] = {}
    for failure in failures:
        key = (place(failure), signature(failure))
        found.setdefault(key, Group(*key)).failures.append(failure)
    return list(found.values())


def covered(tasks: Iterable[Task]) -> set[str]:
    """The tests the tasks made from tests already stand for (whatever became of those tasks)."""
    out: set[str] = set()
    for task in tasks:
        if task.made_by == MADE_BY and task.tests:
            out.update(shlex.split(task.tests))
    return out


def new_tasks(failures: Iterable[Failure], existing: Mapping[str, Task], *, max_attempts: int) -> list[dict]:
    """The fields of a task for each cause among `failures` whose tests no task made from tests covers."""
    seen = covered(existing.values())
    out = []
    for g in group(f for f in failures if f.id not in seen):
        count = len(g.failures)
        title = f"Make {count} failing test{'s' if count != 1 else ''} in {g.where} pass: {g.signature}"
        listed = "\n".join(f"- {f.id}" + (f" ({f.file}:{f.line})" if f.file and f.line else "")
                           + (f": {f.reason.splitlines()[0][:200]}" if f.reason.strip() else "")
                           for f in g.failures[:MAX_SHOWN])
        more = f"\n- ... and {count - MAX_SHOWN} more" if count > MAX_SHOWN else ""
        body = (f"These tests fail on the upstream's main, all at {g.where} with the same error. Make them "
                f"pass without breaking any other test; do not change the tests.\n\n{listed}{more}\n")
        out.append({"title": title[:200], "body": body, "tests": shlex.join(g.ids), "made_by": MADE_BY,
                    "max_attempts": max_attempts, "files": [g.where] if "::" not in g.where else []})
    return out
