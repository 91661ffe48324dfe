"""Task files: tasks/TASK-001.md (YAML front matter + Markdown body) <-> Task, with errors that name the file."""

from __future__ import annotations

import datetime as _dt
import functools
import re
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

import yaml

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from clude.team.board.overlap import learned

# libyaml's loader and dumper when PyYAML has them (ten times faster), else the pure-Python ones
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

TaskStatus = Literal["open", "done", "failed", "blocked"]
STATUSES: tuple[str, ...] = ("open", "done", "failed", "blocked")
# A task id usable as a file name (the rule of layout.py): letters, digits, ".", "_", "-"; no leading dot.
TASK_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
FIELD_ORDER = ("id", "title", "role", "deps", "priority", "max_attempts", "status", "verified", "tests",
               "allow_tests", "files", "made_by", "blocked_reason", "failed_at_start")
# Fields written to a task file only when they hold this value (their default is the usual case).
WRITTEN_ONLY_AS = {"verified": False, "allow_tests": True}
# Fields written to a task file only when they hold something.
WRITTEN_WHEN_SET = ("failed_at_start", "files", "made_by")
# The role whose tasks may change the tests without allow_tests.
TESTER_ROLE = "tester"
_NUMBERED_ID = re.compile(r"TASK-(\d+)")
_DELIMITER = re.compile(r"---[ \t]*")


class TaskFileError(ValueError):
    """A task file that cannot be used; the message names the file and everything wrong with it."""

    def __init__(self, path: str, errors: list[str]):
        self.path = path
        self.errors = list(errors)
        super().__init__(f"{path}: " + "; ".join(self.errors))


def _check_id(value: Any) -> Any:
    if isinstance(value, str) and not TASK_ID.fullmatch(value):
        raise ValueError(f"got {value!r}; must be a task id like TASK-001 "
                         "(letters, digits, '.', '_', '-'; no leading dot; at most 100 characters)")
    return value


def _scalar_text(value: Any) -> Any:
    """YAML reads `title: 2024` as a number and `title: 2024-01-01` as a date; both mean the text."""
    if isinstance(value, (int, float, _dt.date)) and not isinstance(value, bool):
        return str(value)
    return value


def _whole_number(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"got {value!r}; must be an integer")
    return value


TaskId = Annotated[str, BeforeValidator(_check_id)]
Text = Annotated[str, BeforeValidator(_scalar_text)]
WholeNumber = Annotated[int, BeforeValidator(_whole_number)]


class Task(BaseModel):
    """One task of a team: what to do, who may do it, what it waits for, and how it ended."""

    model_config = ConfigDict(extra="forbid")

    id: TaskId
    title: Text
    role: Text | None = None
    deps: list[TaskId] = []
    priority: WholeNumber = 0  # higher first
    max_attempts: WholeNumber = Field(3, ge=1, le=100)
    status: TaskStatus = "open"
    verified: bool = True  # false: landed (done) without any verification (`[team] verify = "none"`)
    tests: Text | None = None  # the acceptance test selector
    allow_tests: bool = False  # the agent may change the project's tests (see allows_test_changes)
    blocked_reason: Text | None = None
    # the workers on which its agent ended before changing anything while they did other tasks fine
    # (team/work/blame.py): at START_FAILURES_TO_BLOCK (board/books.py) of them the task is blocked
    failed_at_start: list[Text] = []
    # the files it is expected to touch (paths, "folder/" or globs): from its plan, or learned from its
    # earlier attempts' changes; a worker keeps tasks whose files overlap apart (board/overlap.py)
    files: list[Text] = []
    # what made it, when not a person: "plan" (team plan), "from-tests" (a failing test), "auto" (--forever)
    made_by: Text | None = None
    body: str = ""

    @field_validator("title", mode="after")
    @classmethod
    def _one_line_title(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("role", "tests", "blocked_reason", "made_by", mode="after")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("deps", "files", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):  # "TASK-001, TASK-002" (or "src/a.py src/b/") is read as a list too
            return [part for part in re.split(r"[\s,]+", value) if part]
        return value

    @field_validator("files", mode="after")
    @classmethod
    def _normal_files(cls, value: list[str]) -> list[str]:
        return learned([], value)

    @field_validator("deps", mode="after")
    @classmethod
    def _unique_deps(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("body", mode="after")
    @classmethod
    def _normal_body(cls, value: str) -> str:
        """Unix line ends, no leading blank lines, no trailing white space: the form render_task writes."""
        value = value.replace("\r\n", "\n").replace("\r", "\n")
        return re.sub(r"\A(?:[ \t]*\n)+", "", value).rstrip()


def parse_task(text: str, path: str) -> Task:
    """The Task in a task file's text; raises TaskFileError naming `path` and what is wrong.
    A board is read at every claim: a text already parsed is not parsed again."""
    return _parse(text, path).model_copy()


@functools.lru_cache(maxsize=8192)
def _parse(text: str, path: str) -> Task:
    lines = re.split(r"(?<=\n)", text.removeprefix("\ufeff"))  # "\n" only: YAML and bodies keep the rest
    if not lines or not _DELIMITER.fullmatch(lines[0].rstrip("\r\n")):
        raise TaskFileError(path, ["no front matter: the file must start with a '---' line, then the "
                                   "task's fields (id, title, ...), then another '---' line, then the body"])
    end = next((i for i in range(1, len(lines)) if _DELIMITER.fullmatch(lines[i].rstrip("\r\n"))), None)
    if end is None:
        raise TaskFileError(path, ["front matter not closed: no '---' line after the fields"])
    try:
        fields = yaml.load("".join(lines[1:end]), Loader=_LOADER)
    except yaml.YAMLError as err:
        raise TaskFileError(path, [_yaml_problem(err)]) from None
    if fields is None:
        fields = {}
    if not isinstance(fields, dict):
        raise TaskFileError(path, [f"front matter must be YAML fields (key: value), got {_kind(fields)}"])
    errors = [f"unknown field {key!r}" for key in fields if key not in FIELD_ORDER]
    if errors:
        errors[-1] += " (fields: " + ", ".join(FIELD_ORDER) + ")"
    stem = _file_id(path)
    data = {k: v for k, v in fields.items() if k in FIELD_ORDER}
    if "id" not in data and stem is not None:
        data["id"] = stem  # a hand-written task may leave its id to the file name
    try:
        task = Task.model_validate({**data, "body": "".join(lines[end + 1:])})
    except ValidationError as err:
        raise TaskFileError(path, errors + _field_errors(err)) from None
    if errors:
        raise TaskFileError(path, errors)
    if stem is not None and task.id != stem:
        raise TaskFileError(path, [f"id {task.id!r} differs from the file name: "
                                   f"the file of task {task.id} must be named {task.id}.md"])
    return task


def allows_test_changes(task: Task) -> bool:
    """Whether the agent working on `task` may change the project's tests: the task says so
    (allow_tests), or it is a tester's task."""
    return task.allow_tests or task.role == TESTER_ROLE


def render_task(task: Task) -> str:
    """The task file's text: front matter in a stable key order (every field but those of
    WRITTEN_ONLY_AS holding their usual value), then the body."""
    fields = {name: getattr(task, name) for name in FIELD_ORDER
              if (name not in WRITTEN_ONLY_AS or getattr(task, name) == WRITTEN_ONLY_AS[name])
              and (name not in WRITTEN_WHEN_SET or getattr(task, name))}
    front = _dump(fields, allow_unicode=True)
    if yaml.load(front, Loader=_LOADER) != fields:  # characters YAML writes raw but reads back as line breaks
        front = _dump(fields, allow_unicode=False)
    return f"---\n{front}---\n" + (f"{task.body}\n" if task.body else "")


def next_task_id(existing: Iterable[str]) -> str:
    """TASK-001, TASK-002, ...: one more than the highest numbered id in `existing` (3 digits at least)."""
    numbers = [int(m.group(1)) for i in existing if (m := _NUMBERED_ID.fullmatch(i))]
    return f"TASK-{max(numbers, default=0) + 1:03d}"


def _dump(fields: dict[str, Any], *, allow_unicode: bool) -> str:
    return yaml.dump(fields, Dumper=_DUMPER, sort_keys=False, allow_unicode=allow_unicode, default_flow_style=None,
                          width=10**6)


def _file_id(path: str) -> str | None:
    name = PurePosixPath(str(path).replace("\\", "/")).name
    return name[:-3] if name.endswith(".md") and len(name) > 3 else None


def _yaml_problem(err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    if mark is None:
        return f"bad YAML in the front matter: {problem}"
    # +2: the opening '---' is line 1 of the file; marks count from 0
    return f"bad YAML in the front matter at line {mark.line + 2}, column {mark.column + 1}: {problem}"


def _kind(value: Any) -> str:
    names = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}
    return names.get(type(value), type(value).__name__)


_EXPECTED = {
    "int_parsing": "must be an integer", "int_type": "must be an integer",
    "int_from_float": "must be an integer", "string_type": "must be a string",
    "bool_type": "must be true or false", "bool_parsing": "must be true or false",
    "list_type": "must be a list of task ids like [TASK-001]",
    "literal_error": "must be one of " + ", ".join(STATUSES),
}


def _field_errors(err: ValidationError) -> list[str]:
    out = []
    for e in err.errors():
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e["loc"]).lstrip(".")
        kind = e["type"]
        got = f"got {e.get('input')!r}; "
        if kind == "missing":
            msg = "field required"
        elif kind in _EXPECTED:
            msg = got + _EXPECTED[kind]
        elif kind in ("greater_than_equal", "less_than_equal"):
            msg = got + "must be between 1 and 100"
        elif kind == "value_error":
            msg = e["msg"].removeprefix("Value error, ")
        else:
            msg = got + e["msg"][:1].lower() + e["msg"][1:]
        out.append(f"{loc}: {msg}" if loc else msg)
    return out
