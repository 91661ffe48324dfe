"""The plan rules: parsing a model's plan, every validation error, scheduling, blocking, deadlock, replans."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clude.agent.plan import MAX_STEPS, Plan, PlanError, Step, parse_plan, plan_schema_text, validate_plan
from clude.agent.schedule import deadlock, merge_replan, propagate_blocked, ready_steps, topological_order


def errors_of(reply, **kw) -> list[str]:
    with pytest.raises(PlanError) as info:
        parse_plan(reply, **kw)
    assert str(info.value) == "invalid plan: " + "; ".join(info.value.errors)
    return info.value.errors


def plan_of(*steps: tuple[str, list[str]], title: str = "t") -> Plan:
    return validate_plan({"title": title, "steps": [{"id": i, "title": i.upper(), "dependencies": d}
                                                    for i, d in steps]})


GOOD = {"title": "Add a flag", "steps": [{"id": "a", "title": "read"},
                                         {"id": "b", "title": "write", "dependencies": ["a"]}]}


# ---------------------------------------------------------------- finding the JSON


@pytest.mark.parametrize("reply", [
    json.dumps(GOOD),
    "```json\n" + json.dumps(GOOD, indent=2) + "\n```",
    "Here is the plan:\n```\n" + json.dumps(GOOD) + "\n```\nLet me know.",
    "Sure! " + json.dumps(GOOD) + " That is all.",
    "~~~jsonc\n" + json.dumps(GOOD) + "\n~~~",
])
def test_the_plan_is_found_bare_fenced_or_in_prose(reply):
    plan = parse_plan(reply)
    assert plan.title == "Add a flag"
    assert [(s.id, s.dependencies) for s in plan.steps] == [("a", []), ("b", ["a"])]


def test_a_dict_is_validated_directly():
    assert parse_plan(GOOD) == validate_plan(GOOD)


def test_of_two_json_objects_the_one_with_steps_wins():
    reply = 'Thinking: {"note": "first I look around", "n": 1}\nPlan:\n' + json.dumps(GOOD)
    assert parse_plan(reply).ids == ["a", "b"]


def test_prose_braces_before_the_plan_are_no_obstacle():
    assert parse_plan("I will edit {name} and [x] first. " + json.dumps(GOOD)).ids == ["a", "b"]


def test_a_top_level_list_of_steps_is_a_plan_titled_plan():
    plan = parse_plan(json.dumps(GOOD["steps"]))
    assert plan.title == "plan" and plan.ids == ["a", "b"]


def test_a_plan_wrapped_under_plan_is_unwrapped():
    assert parse_plan(json.dumps({"plan": GOOD})).ids == ["a", "b"]
    assert parse_plan(json.dumps({"goal": "G", "plan": GOOD["steps"]})).title == "G"


def test_raw_newlines_inside_strings_are_tolerated():
    reply = '{"title": "T", "steps": [{"id": "a", "title": "x", "description": "line 1\nline 2"}]}'
    assert parse_plan(reply).steps[0].description == "line 1\nline 2"


def test_no_json_object():
    [error] = errors_of("I think we should first read the code.")
    assert error.startswith("the reply holds no JSON object: ")


def test_json_without_steps_names_its_keys():
    [error] = errors_of('{"thought": "hmm", "next": "read"}')
    assert '"steps"' in error and "thought, next" in error


def test_truncated_json_gives_line_and_column_and_says_it_was_cut_off():
    reply = "```json\n" + json.dumps(GOOD, indent=2)[:-30]
    [error] = errors_of(reply)
    assert re.match(r"the JSON is invalid at line \d+ column \d+: ", error)
    assert "cut off" in error


def test_invalid_json_in_the_middle():
    [error] = errors_of('{"title": "T", "steps": [{"id": "a" "title": "x"}]}')
    assert error.startswith("the JSON is invalid at line 1 column 37: Expecting ',' delimiter")
    assert "cut off" not in error


# ---------------------------------------------------------------- tolerance


def test_dependency_aliases_single_strings_and_int_ids():
    plan = validate_plan({"title": "T", "steps": [
        {"id": 1, "title": "one"},
        {"id": 2, "title": "two", "deps": 1},
        {"id": 3, "title": "three", "depends_on": [1, 2]},
        {"id": " 4 ", "title": "four", "needs": "3"},
        {"id": 5, "title": "five", "dependencies": ["1", 1, " 4"], "status": "todo", "owner": "me"},
    ]})
    assert [(s.id, s.dependencies) for s in plan.steps] == [
        ("1", []), ("2", ["1"]), ("3", ["1", "2"]), ("4", ["3"]), ("5", ["1", "4"])]


def test_title_from_the_first_line_of_the_description():
    long = "Refactor " + "the very long module name " * 6
    plan = validate_plan({"title": "T", "steps": [
        {"id": "a", "description": "\nRead the code\nthen more"},
        {"id": "b", "description": long},
    ]})
    assert plan.steps[0].title == "Read the code"
    assert plan.steps[0].description == "\nRead the code\nthen more"
    assert len(plan.steps[1].title) <= 80 and plan.steps[1].title.startswith("Refactor the very")


def test_goal_stands_in_for_the_title():
    assert validate_plan({"goal": "Ship it", "steps": GOOD["steps"]}).title == "Ship it"


def test_a_plan_may_depend_on_steps_done_earlier():
    plan = parse_plan({"title": "T", "steps": [{"id": "c", "title": "c", "deps": ["a"]}]}, done_ids={"a"})
    assert plan.steps[0].dependencies == ["a"]
    assert ready_steps(plan, {}) == []
    assert ready_steps(plan, {}, done_ids={"a"}) == ["c"]


# ---------------------------------------------------------------- every error


def test_duplicate_ids():
    errors = errors_of({"title": "T", "steps": [{"id": "setup", "title": "x"}, {"id": "b", "title": "y"},
                                                {"id": "setup", "title": "z"}]})
    assert errors == ["steps[2].id 'setup' is also used by steps[0]: step ids must be unique"]


def test_unknown_dependency_lists_the_ids():
    errors = errors_of({"title": "T", "steps": [{"id": "a", "title": "x"}, {"id": "b", "title": "y"},
                                                {"id": "c", "title": "z"},
                                                {"id": "tests", "title": "t", "deps": ["a", "build-x"]}]})
    assert errors == ["step 'tests' depends on 'build-x', which is not a step id (ids: a, b, c, tests)"]


def test_unknown_dependency_mentions_the_done_ids():
    [error] = errors_of({"title": "T", "steps": [{"id": "c", "title": "x", "deps": ["zz"]}]}, done_ids=["a"])
    assert error == "step 'c' depends on 'zz', which is not a step id (ids: c; done earlier: a)"


def test_self_dependency_is_not_also_a_cycle():
    assert errors_of({"title": "T", "steps": [{"id": "a", "title": "x", "deps": ["a"]}]}) == [
        "step 'a' depends on itself"]


def test_cycle_reads_in_dependency_order_from_the_first_step():
    errors = errors_of({"title": "T", "steps": [{"id": "a", "title": "x", "deps": ["b"]},
                                                {"id": "b", "title": "y", "deps": ["c"]},
                                                {"id": "c", "title": "z", "deps": ["a"]}]})
    assert errors == ["dependency cycle: a -> b -> c -> a (each step depends on the next)"]


def test_two_separate_cycles_are_both_reported():
    errors = errors_of({"title": "T", "steps": [{"id": "a", "title": "x", "deps": ["b"]},
                                                {"id": "b", "title": "y", "deps": ["a"]},
                                                {"id": "c", "title": "z", "deps": ["d"]},
                                                {"id": "d", "title": "w", "deps": ["c"]}]})
    assert sorted(errors) == ["dependency cycle: a -> b -> a (each step depends on the next)",
                              "dependency cycle: c -> d -> c (each step depends on the next)"]


def test_reusing_a_done_id():
    errors = errors_of({"title": "T", "steps": [{"id": "a", "title": "again"}]}, done_ids=["a"])
    assert errors == ["step id 'a' is already done in the earlier plan: give the new step another id"]


def test_pydantic_errors_are_one_line_each_with_their_place():
    errors = errors_of({"title": "T", "steps": [
        {"id": "a", "title": "ok"},
        {"id": "b"},
        {"title": "no id"},
        {"id": "  ", "title": "blank"},
        {"id": "x" * 65, "title": "long"},
        {"id": "e", "title": 7},
        "just a string",
        {"id": "g", "title": "g", "deps": {"a": 1}},
    ]})
    assert errors == [
        "steps[1].title: field required",
        "steps[2].id: field required",
        "steps[3].id: must not be empty",
        "steps[4].id: is 65 characters long, at most 64 allowed: use a short id",
        "steps[5].title: input should be a valid string",
        'steps[6]: must be a JSON object with "id" and "title", got a string',
        "steps[7].dependencies: input should be a valid list",
    ]
    assert all("\n" not in e for e in errors)


def test_title_and_steps_problems():
    assert errors_of({"steps": GOOD["steps"]}) == ["title: field required"]
    assert errors_of({"title": "  ", "steps": GOOD["steps"]}) == ["title: must not be empty"]
    assert errors_of({"title": "T", "steps": []}) == ["steps: the plan has no steps: give at least 1"]
    assert errors_of({"title": "T"}) == ["steps: field required"]
    assert errors_of({"title": "T", "steps": "do it"}) == ["steps: must be a list of step objects, got a string"]
    many = [{"id": str(i), "title": "s"} for i in range(MAX_STEPS + 1)]
    assert errors_of({"title": "T", "steps": many}) == [
        f"steps: {MAX_STEPS + 1} steps, at most {MAX_STEPS} allowed: merge small steps"]


def test_all_errors_are_reported_together():
    errors = errors_of({"title": "", "steps": [{"id": "a", "title": "x", "deps": ["a", "q"]},
                                               {"id": "a", "title": "y"}, {"id": "c"}]})
    assert errors == ["title: must not be empty", "steps[2].title: field required",
                      "steps[1].id 'a' is also used by steps[0]: step ids must be unique",
                      "step 'a' depends on itself", "step 'a' depends on 'q', which is not a step id (ids: a)"]


def test_plan_model_itself_refuses_cycles_and_duplicates():
    with pytest.raises(ValueError, match="cycle"):
        Plan(title="t", steps=[Step(id="a", title="a", dependencies=["b"]),
                               Step(id="b", title="b", dependencies=["a"])])
    with pytest.raises(ValueError, match="unique"):
        Plan(title="t", steps=[Step(id="a", title="a"), Step(id="a", title="b")])


def test_the_schema_example_is_a_valid_plan():
    text = plan_schema_text()
    assert "steps" in text and "dependencies" in text and len(text.splitlines()) < 40
    assert len(parse_plan(text).steps) == 3


# ---------------------------------------------------------------- scheduling


def test_ready_steps_in_plan_order():
    plan = plan_of(("a", []), ("b", ["a"]), ("c", []), ("d", ["b", "c"]))
    assert ready_steps(plan, {}) == ["a", "c"]
    assert ready_steps(plan, {"a": "done", "c": "in_progress"}) == ["b"]
    assert ready_steps(plan, {"a": "done", "b": "done", "c": "done"}) == ["d"]
    assert ready_steps(plan, {s: "done" for s in "abcd"}) == []


def test_topological_order_keeps_plan_order_among_ready_steps():
    plan = plan_of(("d", ["b", "c"]), ("b", ["a"]), ("c", []), ("a", []))
    assert topological_order(plan) == ["c", "a", "b", "d"]


def test_propagate_blocked_explains_the_chain():
    plan = plan_of(("a", []), ("b", ["a"]), ("c", ["b"]), ("x", []))
    blocked = propagate_blocked(plan, {"a": "failed"}, {"a": "tests fail"})
    assert blocked == {
        "b": ("blocked", "depends on 'a', which failed: tests fail"),
        "c": ("blocked", "depends on 'b', which is blocked: depends on 'a', which failed: tests fail"),
    }
    assert propagate_blocked(plan, {"a": "blocked"}, {"a": "no budget"})["b"] == (
        "blocked", "depends on 'a', which is blocked: no budget")


def test_deadlock_report():
    plan = plan_of(("a", []), ("b", ["a"]), ("c", ["b"]), ("d", []))
    reasons = {"a": "reached the iteration cap (30)"}
    assert deadlock(plan, {"a": "failed"}, reasons) is None  # d is ready
    assert deadlock(plan, {"a": "failed", "d": "in_progress"}, reasons) is None
    assert deadlock(plan, {s: "done" for s in "abcd"}, {}) is None
    assert deadlock(plan, {"a": "failed", "d": "done"}, reasons) == (
        "deadlock: 2 steps can never run: 'c' <- 'b' <- 'a' failed: reached the iteration cap (30)")


def test_deadlock_with_two_failures_and_a_lone_failed_step():
    plan = plan_of(("a", []), ("b", ["a"]), ("x", []), ("y", ["x"]), ("z", []))
    report = deadlock(plan, {"a": "failed", "x": "failed", "z": "failed"}, {"a": "r1", "x": "r2", "z": "r3"})
    assert report == "deadlock: 2 steps can never run: 'b' <- 'a' failed: r1; 'y' <- 'x' failed: r2; 'z' failed: r3"
    assert deadlock(plan_of(("a", [])), {"a": "failed"}, {}) == "deadlock: no step can run: 'a' failed"


def test_merge_replan_keeps_done_steps_first():
    old = plan_of(("a", []), ("b", ["a"]), ("c", ["b"]), ("d", []), title="old")
    new = parse_plan({"title": "new", "steps": [{"id": "b2", "title": "other way", "deps": ["a", "d"]},
                                                {"id": "c", "title": "c again", "deps": ["b2"]}]},
                     done_ids={"a", "d"})
    merged, statuses = merge_replan(old, {"a": "done", "b": "failed", "d": "done"}, new)
    assert merged.title == "new"
    assert merged.ids == ["a", "d", "b2", "c"]
    assert statuses == {"a": "done", "d": "done", "b2": "pending", "c": "pending"}
    assert ready_steps(merged, statuses) == ["b2"]


def test_merge_replan_refuses_a_new_step_reusing_a_done_id():
    old = plan_of(("a", []), ("b", ["a"]))
    with pytest.raises(PlanError, match="already done"):
        merge_replan(old, {"a": "done"}, plan_of(("a", [])))


# ---------------------------------------------------------------- properties

ids = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,7}", fullmatch=True)
ALIASES = ["dependencies", "deps", "depends_on", "needs"]


@st.composite
def dags(draw, min_size=1, max_size=12):
    """(shuffled raw steps, {id: deps}) of a random DAG: each step depends only on earlier ones."""
    names = draw(st.lists(ids, min_size=min_size, max_size=max_size, unique=True))
    graph: dict[str, list[str]] = {}
    raw = []
    for i, name in enumerate(names):
        deps = draw(st.lists(st.sampled_from(names[:i]), unique=True, max_size=3)) if i else []
        graph[name] = deps
        raw.append({"id": name, "title": f"do {name}", draw(st.sampled_from(ALIASES)): deps})
    order = draw(st.permutations(range(len(raw))))
    return [raw[k] for k in order], graph


def descendants(graph: dict[str, list[str]], root: str) -> set[str]:
    out: set[str] = set()
    frontier = [root]
    while frontier:
        node = frontier.pop()
        for sid, deps in graph.items():
            if node in deps and sid not in out:
                out.add(sid)
                frontier.append(sid)
    return out


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(dags(), st.randoms(use_true_random=False))
def test_property_random_dags_are_accepted_and_run_to_the_end(dag, rnd):
    raw, graph = dag
    plan = parse_plan("Plan:\n```json\n" + json.dumps({"title": "T", "steps": raw}) + "\n```")
    assert {s.id: s.dependencies for s in plan.steps} == graph
    statuses: dict[str, str] = {}
    finished: list[str] = []
    while True:
        ready = ready_steps(plan, statuses)
        if not ready:
            break
        assert deadlock(plan, statuses, {}) is None
        batch = rnd.sample(ready, rnd.randint(1, len(ready)))
        for sid in batch:
            assert all(statuses.get(d) == "done" for d in graph[sid])
            statuses[sid] = "done"
            finished.append(sid)
    assert sorted(finished) == sorted(graph)
    assert deadlock(plan, statuses, {}) is None
    order = topological_order(plan)
    assert sorted(order) == sorted(graph)
    assert all(order.index(d) < order.index(s) for s, deps in graph.items() for d in deps)


@FAST
@given(dags(min_size=2), st.data())
def test_property_a_back_edge_is_reported_as_a_cycle(dag, data):
    _, graph = dag
    if not any(graph.values()):  # make one edge so there is something to go back along
        first, second = list(graph)[:2]
        graph[second] = [first]
    top = data.draw(st.sampled_from([s for s in graph if graph[s]]))
    node = data.draw(st.sampled_from(graph[top]))
    while graph[node] and data.draw(st.booleans()):  # walk down to some ancestor of `top`
        node = data.draw(st.sampled_from(graph[node]))
    graph[node] = graph[node] + [top]
    names = data.draw(st.permutations(sorted(graph)))
    errors = errors_of({"title": "T", "steps": [{"id": s, "title": s, "deps": graph[s]} for s in names]})
    assert errors and all(e.startswith("dependency cycle: ") for e in errors)
    for report in errors:
        chain = report.removeprefix("dependency cycle: ").split(" (")[0].split(" -> ")
        assert chain[0] == chain[-1] and len(chain) >= 3
        assert all(b in graph[a] for a, b in zip(chain, chain[1:]))


@FAST
@given(dags(), st.data())
def test_property_duplicate_ids_are_always_reported(dag, data):
    raw, _ = dag
    victim = data.draw(st.sampled_from(raw))
    at = data.draw(st.integers(0, len(raw)))
    raw.insert(at, {"id": victim["id"], "title": "a second one"})
    errors = errors_of({"title": "T", "steps": raw})
    first, second = [i for i, s in enumerate(raw) if s["id"] == victim["id"]]
    assert (f"steps[{second}].id '{victim['id']}' is also used by steps[{first}]: step ids must be unique"
            in errors)


@FAST
@given(dags(), st.data(), st.randoms(use_true_random=False))
def test_property_one_failure_blocks_exactly_its_dependents(dag, data, rnd):
    raw, graph = dag
    plan = validate_plan({"title": "T", "steps": raw})
    failed = data.draw(st.sampled_from(sorted(graph)))
    reasons = {failed: "reached the iteration cap (30)"}
    statuses: dict[str, str] = {}
    while ready := ready_steps(plan, statuses):
        sid = rnd.choice(ready)
        statuses[sid] = "failed" if sid == failed else "done"
    blocked = propagate_blocked(plan, statuses, reasons)
    dependents = descendants(graph, failed)
    assert set(blocked) == dependents
    assert all(status == "blocked" and reason.endswith(f"'{failed}', which failed: reached the iteration cap (30)")
               for status, reason in blocked.values())
    assert {s for s in graph if s not in statuses} == dependents
    report = deadlock(plan, statuses, reasons)
    assert report is not None and report.startswith("deadlock: ")
    assert f"'{failed}' failed: reached the iteration cap (30)" in report
    n = len(dependents)
    assert (f"{n} step{'s' if n != 1 else ''} can never run" if n else "no step can run") in report
    assert all(f"'{s}'" in report for s in dependents)
    statuses.update({s: st_ for s, (st_, _) in blocked.items()})
    assert deadlock(plan, statuses, reasons | {s: r for s, (_, r) in blocked.items()}) == report


def test_property_helpers_are_sane():
    assert descendants({"a": [], "b": ["a"], "c": ["b"], "d": []}, "a") == {"b", "c"}


@pytest.mark.parametrize("bad", ["../../..", "a b", "-a", ".", "a/b", "étape"])
def test_ids_that_could_name_a_path_or_break_a_line_are_refused(bad):
    errors = errors_of({"title": "T", "steps": [{"id": bad, "title": "x"}]})
    assert any("is not a usable id" in e and "step-1" in e for e in errors), errors
