"""gotestsum's JUnit XML, read generically, then given Go's test ids, leaf counts and locations."""

from __future__ import annotations

from pathlib import Path

import defusedxml.ElementTree as SafeET

from clude.harness.frameworks import go_output as go
from clude.harness.junit import UnreadableResults, read_junit
from clude.harness.verdict import Failure, RunFacts


def read_gotestsum_junit(path: Path, root: Path) -> RunFacts:
    """The facts of a gotestsum --junitfile report: ids `<package>/<Test>`, subtests as leaves."""
    try:
        facts = read_junit(path, root)
    except UnreadableResults as exc:
        return RunFacts(framework_reason=str(exc))
    cases: dict[str, tuple[str, str, str]] = {}  # junit id -> (package, test, failure text)
    for case in SafeET.parse(path).getroot().iter("testcase"):
        package, name = case.get("classname") or "", case.get("name") or "?"
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        text = (problem.text or "") if problem is not None else ""
        cases[f"{package}::{name}" if package else name] = (package, name, text)
    reader = go.Reader(root)
    names = {(p, n) for p, n, _ in cases.values()}
    parents = {(p, n.rsplit("/", 1)[0]) for p, n in names if "/" in n}
    failed = {(p, n) for key, (p, n, _) in cases.items() if facts.outcomes.get(key) == "failed"}
    outcomes: dict[str, str] = {}
    for key, outcome in facts.outcomes.items():
        package, name, _ = cases.get(key, ("", key, ""))
        below = any(p == package and n.startswith(name + "/") for p, n in failed)
        if (package, name) in parents and not (outcome == "failed" and not below):
            continue  # a parent test: its subtests are counted instead
        outcomes[f"{package}/{name}" if package else name] = outcome
    kept = set(outcomes)
    facts.outcomes = outcomes
    facts.failures = [f for f in (_refine(f, cases, reader) for f in facts.failures)
                      if f.id in kept]
    facts.collection_errors = [_refine(f, cases, reader) for f in facts.collection_errors]
    return facts


def _refine(failure: Failure, cases: dict, reader: "go.Reader") -> Failure:
    package, name, text = cases.get(failure.id, ("", failure.id, ""))
    test = go.GoTestRecord(package, name, output=[text])
    own = go.panic_in(test.output, reader.root)
    file, line, reason = own if own is not None else go.last_message(test)
    if file and own is None:
        file = reader.where(package, file)
    return failure.model_copy(update={
        "id": f"{package}/{name}" if package else failure.id,
        "file": file or failure.file, "line": line or failure.line,
        "reason": reason or failure.reason})
