"""Reads JUnit XML, in the variants pytest, unittest XML runners, gotestsum, cargo, jest and vitest write."""

from __future__ import annotations

from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from clude.harness.inject.clude_events import location_in_text, one_line, relative
from clude.harness.verdict import Failure, RunFacts


class UnreadableResults(Exception):
    """A results file that is missing, empty, truncated or hostile; the message says which."""


def read_junit(path: Path, root: Path) -> RunFacts:
    try:
        if path.stat().st_size == 0:
            raise UnreadableResults(f"the JUnit XML {path} is empty")
        tree = SafeET.parse(path)
    except FileNotFoundError:
        raise UnreadableResults(f"the JUnit XML {path} was not written") from None
    except ParseError as exc:
        raise UnreadableResults(f"the JUnit XML {path} is truncated or malformed ({exc})") from None
    except DefusedXmlException as exc:
        raise UnreadableResults(f"the JUnit XML {path} was refused as hostile ({exc!r})") from None
    facts = RunFacts(started=True, finished=True)
    top = tree.getroot()
    # pytest writes 0-based line numbers; unittest XML runners and others write 1-based ones
    suites = [top] if top.tag == "testsuite" else top.findall("testsuite")
    zero_based = any(s.get("name") == "pytest" for s in suites)
    for case in top.iter("testcase"):
        _add_case(facts, case, root, zero_based)
    return facts


def _test_id(case: Element) -> str:
    name = case.get("name", "?")
    classname = case.get("classname", "") or ""
    file = case.get("file")
    if file and file.endswith(".py"):
        module = file[:-3].replace("/", ".")
        if classname == module or classname.startswith(module + "."):
            rest = classname[len(module) + 1:]
            return "::".join([file] + (rest.split(".") if rest else []) + [name])
    return f"{classname}::{name}" if classname else name


def _add_case(facts: RunFacts, case: Element, root: Path, zero_based: bool) -> None:
    test_id = base = _test_id(case)
    ordinal = 1
    while test_id in facts.outcomes or any(f.id == test_id for f in facts.collection_errors):
        # tests of one suite may share a name: each keeps an id and a count
        ordinal += 1
        test_id = f"{base} #{ordinal}"
    failure = case.find("failure")
    error = case.find("error")
    skipped = case.find("skipped")
    if error is not None and (error.get("message") == "collection failure"
                              or not case.get("classname") and not case.get("file")):
        facts.collection_errors.append(_failure(test_id, case, error, "error", root, zero_based))
        return
    if failure is not None:
        outcome = "failed"
        facts.failures.append(_failure(test_id, case, failure, "failure", root, zero_based))
    elif error is not None:
        outcome = "error"
        facts.failures.append(_failure(test_id, case, error, "error", root, zero_based))
    elif skipped is not None:
        outcome = "xfailed" if skipped.get("type") == "pytest.xfail" else "skipped"
    else:
        outcome = "passed"
    facts.outcomes[test_id] = outcome


def _failure(test_id: str, case: Element, problem: Element, kind: str, root: Path,
             zero_based: bool) -> Failure:
    text = problem.text or ""
    file, line = location_in_text(text, str(root))
    if file is None and case.get("file"):
        file = relative(str(root / case.get("file")), str(root))
        line = int(case.get("line")) + zero_based if (case.get("line") or "").isdigit() else None
    message = problem.get("message") or ""
    if not message.strip() or message == "collection failure":
        lines = [ln for ln in text.splitlines() if ln.strip()]
        marked = [ln[1:] for ln in lines if ln.startswith("E ")]
        message = (marked or lines or [problem.get("type") or kind])[-1]
    return Failure(id=test_id, file=file, line=line, kind=kind, reason=one_line(message))
