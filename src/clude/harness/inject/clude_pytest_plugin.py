"""pytest plugin loaded by `clude test` (-p clude_pytest_plugin): reports clude events and samples tests.

Runs in the user's interpreter with the standard library and pytest only. Uses hooks that pytest has
had since 3.x, so it works with the pytest the project pins.
"""

import os

import pytest

import clude_events as E
from clude_sample import sample

_writer = None
_root = os.getcwd()
_tests = {}  # nodeid -> the final outcome being built across setup, call and teardown


def _active(config):
    # Under pytest-xdist the controller reports every test; workers stay silent.
    return _writer is not None and not hasattr(config, "workerinput")


def pytest_configure(config):
    global _writer, _root
    if hasattr(config, "workerinput"):
        return
    _writer = E.from_env()
    _root = str(config.rootpath) if hasattr(config, "rootpath") else str(config.rootdir)


def pytest_sessionstart(session):
    if _active(session.config):
        _writer.emit("start")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    settings = E.sample_settings()
    if settings is None or hasattr(config, "workerinput"):
        return
    rate, seed = settings
    keep = set(sample([it.nodeid for it in items], seed, rate))
    selected = [it for it in items if it.nodeid in keep]
    deselected = [it for it in items if it.nodeid not in keep]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
    of = len(items)
    items[:] = selected
    if _active(config):
        _writer.emit("sample", rate=rate, seed=seed, selected=len(selected), of=of)


def pytest_collectreport(report):
    if _writer is None or not report.failed:
        return
    text = str(report.longrepr)
    file, line = E.location_in_text(text, _root)
    nodeid = report.nodeid or "<collection>"
    if file is None and report.fspath:
        file = E.relative(os.path.join(_root, str(report.fspath)), _root)
    _writer.emit("collect_error", id=nodeid, file=file, line=line, reason=E.error_line(text))


def pytest_runtest_logstart(nodeid, location):
    if _writer is not None:
        _writer.emit("begin", id=nodeid)


def _where_and_why(item, call, report):
    """(file, line, one-line reason) of a failed phase: where it went wrong in the project, and why."""
    longrepr = report.longrepr
    errorstring = getattr(longrepr, "errorstring", None)  # a fixture that does not exist
    if errorstring:
        line = getattr(longrepr, "firstlineno", None)
        file = getattr(longrepr, "filename", None)
        return (E.relative(file, _root) if file else None,
                line + 1 if isinstance(line, int) else None,
                E.one_line(errorstring.strip().splitlines()[0]))
    excinfo = call.excinfo
    if excinfo is None:
        return None, None, E.one_line(str(longrepr).strip().splitlines()[-1] if longrepr else "")
    frames = [(str(entry.path), entry.lineno + 1) for entry in excinfo.traceback]
    file, line = E.last_project_frame(frames, _root)
    return file, line, E.one_line(excinfo.exconly())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        file, line, reason = _where_and_why(item, call, report)
        if file is None:
            path, lineno = item.location[0], item.location[1]
            file, line = path, (lineno + 1 if lineno is not None else None)
        if not reason and isinstance(report.longrepr, str):
            reason = E.one_line(report.longrepr)  # "[XPASS(strict)] reason"
        report.clude_where = {"file": file, "line": line, "reason": reason}


def pytest_runtest_logreport(report):
    if _writer is None:
        return
    state = _tests.setdefault(report.nodeid, {"outcome": None, "kind": None})
    if state["outcome"] in ("failed", "error"):
        return  # the first thing that went wrong is what the test reports
    wasxfail = hasattr(report, "wasxfail")
    if report.failed:
        where = getattr(report, "clude_where", None) or {}
        if isinstance(report.longrepr, str) and report.longrepr.startswith("[XPASS(strict)]"):
            where = dict(where, reason=E.one_line(report.longrepr))
        phase_is_call = report.when == "call"
        state.update(outcome="failed" if phase_is_call else "error",
                     kind="failure" if phase_is_call else "error", **where)
        if not where.get("file"):
            state["file"], state["line"] = report.location[0], (report.location[1] or 0) + 1
    elif report.skipped:
        if state["outcome"] is None:
            state["outcome"] = "xfailed" if wasxfail else "skipped"
    elif report.when == "call":
        state["outcome"] = "xpassed" if wasxfail else "passed"


def pytest_runtest_logfinish(nodeid, location):
    if _writer is None:
        return
    state = _tests.pop(nodeid, None) or {}
    outcome = state.pop("outcome", None) or "passed"
    state.setdefault("file", location[0])
    if not state.get("line"):
        state["line"] = (location[1] or 0) + 1
    _writer.emit("result", id=nodeid, outcome=outcome, **{k: v for k, v in state.items()
                                                          if v is not None})


def pytest_keyboard_interrupt(excinfo):
    if _writer is not None:
        _writer.emit("interrupted")


def pytest_sessionfinish(session, exitstatus):
    if not _active(session.config):
        return
    stopped = session.shouldstop or session.shouldfail
    _writer.emit("finish", exit=int(exitstatus), stopped=stopped if isinstance(stopped, str) else None)
