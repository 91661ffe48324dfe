"""The plan DAG: parse and validate a model's plan, schedule ready steps, propagate failures, merge replans."""

from __future__ import annotations

import graphlib
import json
import re
from collections.abc import Collection
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

StepStatus = Literal["pending", "in_progress", "done", "failed", "blocked"]

MAX_STEPS = 50
NO_STEPS = "steps: the plan has no steps"  # the error of an empty plan (a planner may mean "nothing left")
MAX_ID_LEN = 64
MAX_TITLE_FROM_DESCRIPTION = 80
DEPENDENCY_KEYS = ("dependencies", "deps", "depends_on", "needs")
_MAX_CANDIDATES = 500  # JSON starts tried in one reply: bounds the work on a pathological reply
_MAX_CYCLES = 10
_OBJECT_START = re.compile(r'\{\s*["}]')  # a "{" that opens a JSON object, not prose like {name}


class PlanError(ValueError):
    """A plan the model wrote that cannot be used; `errors` lists every problem found."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("invalid plan: " + "; ".join(self.errors))


def _id_text(value: Any) -> Any:
    """Models write ids as 1, 2, 3: ints become strings; anything else is left for pydantic to judge."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


Text = Annotated[str, AfterValidator(_non_empty)]  # stripped, never empty
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _title_from(description: str) -> str:
    first = next((line.strip() for line in description.splitlines() if line.strip()), "")
    if len(first) <= MAX_TITLE_FROM_DESCRIPTION:
        return first
    cut = first[:MAX_TITLE_FROM_DESCRIPTION - 1]
    if " " in cut[MAX_TITLE_FROM_DESCRIPTION // 2:]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip() + "…"


class Step(BaseModel):
    """One step of a plan. Extra keys a model adds are ignored."""

    model_config = ConfigDict(extra="ignore")

    id: Text
    title: Text
    description: str = ""
    dependencies: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _tolerate(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "id" in data:
            data["id"] = _id_text(data["id"])
        if data.get("title") in (None, "") and isinstance(data.get("name"), str):
            data["title"] = data["name"]
        if data.get("title") in (None, "") and isinstance(data.get("description"), str):
            data["title"] = _title_from(data["description"]) or data.get("title")
        deps: list[Any] = []
        for key in DEPENDENCY_KEYS:
            value = data.get(key)
            if value is None:
                continue
            if isinstance(value, (str, int)) and not isinstance(value, bool):
                value = [value]
            if not isinstance(value, list):
                data["dependencies"] = value  # let pydantic report the wrong type
                return data
            deps.extend(_id_text(v) for v in value)
        data["dependencies"] = deps
        return data

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if len(value) > MAX_ID_LEN:
            raise ValueError(f"is {len(value)} characters long, at most {MAX_ID_LEN} allowed: use a short id")
        if not _ID_RE.fullmatch(value):  # ids name files and folders: nothing like '../..' or 'a b'
            raise ValueError(f"{value!r} is not a usable id: use letters, digits and - _ . "
                             "(starting with a letter or digit), e.g. 'step-1'")
        return value

    @field_validator("dependencies")
    @classmethod
    def _check_dependencies(cls, value: list[str]) -> list[str]:
        if any(not dep.strip() for dep in value):
            raise ValueError("a dependency must be a non-empty step id")
        return list(dict.fromkeys(dep.strip() for dep in value))  # stripped, repeats dropped


class Plan(BaseModel):
    """A titled list of steps whose dependencies form a DAG (checked on construction: unique ids,
    no self dependency, no cycle; a dependency on an id outside the plan means a step done earlier).

    MAX_STEPS bounds the plan a model writes (checked by validate_plan); a plan merged after a
    replan keeps its done steps as history and may hold more.
    """

    model_config = ConfigDict(extra="ignore")

    title: Text
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_graph(self) -> Plan:
        # A dependency outside the plan is allowed here: after a replan it names a step done earlier
        # (validate_plan checks it against done_ids).
        outside = {d for s in self.steps for d in s.dependencies} - {s.id for s in self.steps}
        errors = _graph_errors([(i, s) for i, s in enumerate(self.steps)], (), outside=outside)
        if errors:
            raise ValueError("; ".join(errors))
        return self

    def step(self, step_id: str) -> Step:
        """The step with this id (KeyError if none)."""
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.steps]


# ---------------------------------------------------------------- validation


def _loc(prefix: str, loc: tuple) -> str:
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _render(prefix: str, err: ValidationError) -> list[str]:
    out = []
    for e in err.errors():
        where, msg = _loc(prefix, e["loc"]), e["msg"]
        if e["type"] in ("model_type", "dict_type", "model_attributes_type"):
            msg = f'must be a JSON object with "id" and "title", got {_json_type(e.get("input"))}'
        elif e["type"] == "missing":
            msg = "field required"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        else:
            msg = msg[:1].lower() + msg[1:]
        out.append(f"{where}: {msg}" if where else msg)
    return out


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", str: "a string", int: "a number", float: "a number", list: "a list", dict: "an object"}
    return names.get(type(value), "null")


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as err:
        return list(reversed(err.args[1]))  # graphlib walks dependents; report "x -> y": x depends on y
    return None


def _graph_errors(steps: list[tuple[int, Step]], done_ids: Collection[str], *,
                  outside: Collection[str] = ()) -> list[str]:
    """Duplicate ids, reused done ids, unknown and self dependencies, and every cycle found
    (a dependency in `outside` is accepted without being a step or done)."""
    errors: list[str] = []
    first_index: dict[str, int] = {}
    done = set(done_ids)
    for i, s in steps:
        if s.id in first_index:
            errors.append(f"steps[{i}].id '{s.id}' is also used by steps[{first_index[s.id]}]: "
                          "step ids must be unique")
        else:
            first_index[s.id] = i
        if s.id in done:
            errors.append(f"step id '{s.id}' is already done in the earlier plan: give the new step another id")
    ids = list(first_index)
    id_list = ", ".join(ids)
    if done:
        id_list += "; done earlier: " + ", ".join(sorted(done - set(ids)))
    graph: dict[str, list[str]] = {i: [] for i in ids}
    for _, s in steps:
        for dep in s.dependencies:
            if dep == s.id:
                errors.append(f"step '{s.id}' depends on itself")
            elif dep in first_index:
                if dep not in graph[s.id]:
                    graph[s.id].append(dep)
            elif dep not in done and dep not in outside:
                errors.append(f"step '{s.id}' depends on '{dep}', which is not a step id (ids: {id_list})")
    order = {sid: n for n, sid in enumerate(ids)}
    for _ in range(_MAX_CYCLES):
        cycle = _find_cycle(graph)
        if cycle is None:
            break
        body = cycle[:-1]
        start = min(range(len(body)), key=lambda k: order[body[k]])
        body = body[start:] + body[:start]
        errors.append("dependency cycle: " + " -> ".join(body + body[:1]) + " (each step depends on the next)")
        graph[body[0]].remove(body[1])  # break this cycle and look for another
    return errors


def validate_plan(data: Any, *, done_ids: Collection[str] = (), step: type[Step] | None = None) -> Plan:
    """Check an already-parsed plan object; raise PlanError listing every problem found. `step`: the
    model of a step (a subclass of Step with more fields: a team's tasks)."""
    step = step or Step
    if isinstance(data, list):
        data = {"title": "plan", "steps": data}
    if not isinstance(data, dict):
        raise PlanError([f'the plan must be a JSON object with "title" and "steps", got {_json_type(data)}'])
    errors: list[str] = []
    title = data["goal"] if data.get("title") in (None, "") and data.get("goal") else data.get("title")
    if title is None:
        errors.append("title: field required")
    elif not isinstance(title, str) or not title.strip():
        errors.append(f"title: must be a string, got {_json_type(title)}" if not isinstance(title, str)
                      else "title: must not be empty")
    raw_steps = data.get("steps")
    valid: list[tuple[int, Step]] = []
    if raw_steps is None:
        errors.append("steps: field required")
    elif not isinstance(raw_steps, list):
        errors.append(f"steps: must be a list of step objects, got {_json_type(raw_steps)}")
    elif not raw_steps:
        errors.append(f"{NO_STEPS}: give at least 1")
    else:
        if len(raw_steps) > MAX_STEPS:
            errors.append(f"steps: {len(raw_steps)} steps, at most {MAX_STEPS} allowed: merge small steps")
        for i, raw in enumerate(raw_steps):
            try:
                valid.append((i, step.model_validate(raw)))
            except ValidationError as err:
                errors.extend(_render(f"steps[{i}]", err))
    errors.extend(_graph_errors(valid, done_ids))
    if errors:
        raise PlanError(errors)
    return Plan(title=title, steps=[s for _, s in valid])


# ---------------------------------------------------------------- parsing a reply


def _plan_like(value: Any, title: Any = "plan") -> Any:
    """The plan object in a decoded JSON value (maybe under "plan"), or None if it does not look like one."""
    if isinstance(value, dict):
        if "steps" in value:
            return value if value.get("title") or value.get("goal") or title == "plan" else {"title": title, **value}
        return _plan_like(value.get("plan"), value.get("title") or value.get("goal") or "plan")
    if isinstance(value, list) and value and all(isinstance(s, dict) and s.keys() & {"id", "title", "description"}
                                                 for s in value):
        return {"title": title, "steps": value}
    return None


def _snippet(text: str, pos: int, width: int = 20) -> str:
    return text[max(0, pos - width):pos + width].replace("\n", "\\n")


def _find_plan(reply: str) -> tuple[Any, str | None, list[Any]]:
    """(plan object or None, the first JSON syntax error, the JSON values found that are not plans)."""
    decoder = json.JSONDecoder(strict=False)  # models put raw newlines in strings
    syntax_errors: list[tuple[bool, str]] = []  # (mentions "steps", message)
    others: list[Any] = []
    pos, tried = 0, 0
    while tried < _MAX_CANDIDATES:
        starts = [p for p in (reply.find("{", pos), reply.find("[", pos)) if p >= 0]
        if not starts:
            break
        start = min(starts)
        tried += 1
        chunk = reply[start:]
        try:
            value, end = decoder.raw_decode(chunk)
        except json.JSONDecodeError as err:
            if _OBJECT_START.match(chunk):
                hint = " (the JSON ends early: was the reply cut off?)" if err.pos >= len(chunk.rstrip(" \n`")) else ""
                syntax_errors.append(('"steps"' in chunk[:err.pos + 1],
                                      f"the JSON is invalid at line {err.lineno} column {err.colno}: {err.msg}"
                                      f" near '{_snippet(chunk, err.pos)}'{hint}"))
            pos = start + 1
            continue
        plan = _plan_like(value)
        if plan is not None:
            return plan, None, others
        if isinstance(value, dict):
            others.append(value)
        pos = start + (end if isinstance(value, dict) else 1)
    best = sorted(syntax_errors, key=lambda e: not e[0])  # stable: the first error mentioning "steps", else the first
    return None, (best[0][1] if best else None), others


def parse_plan(reply: str | dict, *, done_ids: Collection[str] = (), step: type[Step] | None = None) -> Plan:
    """The plan in a model reply: bare JSON, fenced JSON or JSON amid prose; the first object with
    "steps" wins (a top-level list of steps is a plan titled "plan"). Raises PlanError with every problem."""
    if not isinstance(reply, str):
        return validate_plan(reply, done_ids=done_ids, step=step)
    plan, syntax_error, others = _find_plan(reply)
    if plan is not None:
        return validate_plan(plan, done_ids=done_ids, step=step)
    if syntax_error:
        raise PlanError([syntax_error])
    if others:
        keys = ", ".join(list(others[0])[:10]) or "none"
        raise PlanError([f'the reply\'s JSON object has no "steps" list (its keys: {keys}): '
                         'answer with {"title": ..., "steps": [...]}'])
    raise PlanError(['the reply holds no JSON object: answer with one JSON object '
                     '{"title": ..., "steps": [{"id": ..., "title": ..., "dependencies": [...]}]}'])


def plan_schema_text() -> str:
    """The expected plan JSON, described briefly with an example, for the planner prompt."""
    return (
        "Reply with one JSON object (no other JSON in the reply):\n"
        '- "title": what the plan achieves, one line\n'
        f'- "steps": 1 to {MAX_STEPS} steps, in the order you would do them; each step has\n'
        f'  "id" (short and unique, at most {MAX_ID_LEN} characters), "title" (one line),\n'
        '  "description" (optional: details) and "dependencies" (ids of the steps that must be done first;\n'
        "  no cycles, a step never depends on itself).\n"
        "Example:\n"
        '{"title": "Add a --json flag to the report command",\n'
        ' "steps": [\n'
        '  {"id": "read", "title": "Read the report command and its tests", "dependencies": []},\n'
        '  {"id": "impl", "title": "Implement --json", "description": "Print the report as JSON.",\n'
        '   "dependencies": ["read"]},\n'
        '  {"id": "tests", "title": "Add tests for --json", "dependencies": ["impl"]}]}'
    )
