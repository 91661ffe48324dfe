"""pytest plugin loaded by `clude test` (-p clude_pytest_plugin): reports clude events and samples tests.

Runs in the user's interpreter with the standard library and pytest only. Uses hooks that pytest has
had since 3.x, so it works with the pytest the project pins.

Only the session clude started reports: its events and sampling live in a Reporter registered on that
session's config alone. A pytest that a test starts (in a subprocess, which inherits the environment
and so this plugin, or in process) runs as if clude were not there, and an xdist worker stays silent
while the controller reports every test.
"""

import doctest
import os
import sys
import traceback

import pytest

import clude_events as E
from clude_pytest_sample import Sampler

_claimed = False  # a session of this process reports already; a pytest run inside it stays silent

# What turns a test into its report, in pytest and in this plugin. Code under test that replaces one of
# them while the tests run (to report a failure as a pass) is named, and the run is not trusted. A
# tripwire, not a wall: code in the same process can always do worse, more quietly.
_GUARDED = (("_pytest.runner", "call_and_report"), ("_pytest.runner", "runtestprotocol"),
            ("_pytest.runner", "call_runtest_hook"), ("_pytest.runner", "CallInfo.from_call"),
            ("_pytest.runner", "pytest_runtest_makereport"), ("_pytest.reports", "TestReport.from_item_and_call"),
            ("_pytest.reports", "TestReport.__init__"), ("_pytest.reports", "BaseReport.passed"),
            ("_pytest.reports", "BaseReport.failed"), ("_pytest.python", "Function.runtest"),
            ("_pytest.python", "pytest_pyfunc_call"), ("_pytest.main", "pytest_runtestloop"),
            ("_pytest.skipping", "pytest_runtest_makereport"), ("pluggy._callers", "_multicall"),
            ("pluggy._hooks", "HookCaller.__call__"), ("clude_events", "EventWriter.emit"),
            ("clude_pytest_plugin", "Reporter.pytest_runtest_logreport"),
            ("clude_pytest_plugin", "Reporter.pytest_runtest_logfinish"), ("clude_pytest_plugin", "_annotate"))


def _guarded():
    """{name: the object it names now} for each of _GUARDED that this pytest has."""
    import sys
    found = {}
    for module, path in _GUARDED:
        owner = sys.modules.get(module)
        parts = path.split(".")
        for part in parts[:-1]:
            owner = getattr(owner, part, None)
        if owner is not None and parts[-1] in vars(owner):
            found[f"{module}.{path}"] = vars(owner)[parts[-1]]
    return found


def _rootdir(config):
    """pytest's rootdir: node ids and report locations are relative to it."""
    return str(config.rootpath) if hasattr(config, "rootpath") else str(config.rootdir)


def _project_dir(config):
    """The directory pytest was started in: the project clude runs, which every path clude reports
    is relative to. It differs from the rootdir when a pytest.ini sits in a subdirectory."""
    params = getattr(config, "invocation_params", None)
    return str(params.dir) if params is not None else os.getcwd()


_relative_paths = {}  # (rootdir, path) -> the path relative to the project: a few files, many tests


def _from_rootdir(config, path):
    """A path pytest gives relative to its rootdir, made relative to the project."""
    key = (id(config), str(path))
    if key not in _relative_paths:
        _relative_paths[key] = E.relative(os.path.join(_rootdir(config), str(path)),
                                          _project_dir(config))
    return _relative_paths[key]


def pytest_configure(config):
    global _claimed
    if hasattr(config, "workerinput") or _claimed:
        return
    writer = E.from_env()  # None in a run that clude did not start itself
    if writer is not None:
        _claimed = True
        config.pluginmanager.register(Reporter(config, writer), "clude_reporter")
        sampling = E.sample_settings()
        if sampling is not None:
            config.pluginmanager.register(Sampler(config, *sampling, writer), "clude_sampler")


# New-style hook wrappers (pluggy >= 1.2, which pytest 8 requires) cost less on every test phase.
_NEW_WRAPPERS = int(pytest.__version__.split(".")[0]) >= 8

if _NEW_WRAPPERS:
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(item, call):
        report = yield
        _annotate(item, call, report)
        return report
else:
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(item, call):
        outcome = yield
        _annotate(item, call, outcome.get_result())


def _annotate(item, call, report):
    # Where and why a phase failed is known only here, with the exception at hand; the report carries
    # it to the Reporter (and, under xdist, from the worker to the controller).
    if report.failed:
        file, line, reason = _where_and_why(_project_dir(item.config), call, report)
        if file is None:
            path, lineno = item.location[0], item.location[1]
            file, line = _from_rootdir(item.config, path), (lineno + 1 if lineno is not None else None)
        if not reason and isinstance(report.longrepr, str):
            reason = E.one_line(report.longrepr)  # "[XPASS(strict)] reason"
        report.clude_where = {"file": file, "line": line, "reason": reason}


def _where_and_why(root, call, report):
    """(file, line, one-line reason) of a failed phase: where it went wrong in the project, and why."""
    longrepr = report.longrepr
    errorstring = getattr(longrepr, "errorstring", None)  # a fixture that does not exist
    if errorstring:
        line = getattr(longrepr, "firstlineno", None)
        file = getattr(longrepr, "filename", None)
        return (E.relative(file, root) if file else None,
                line + 1 if isinstance(line, int) else None,
                E.one_line(errorstring.strip().splitlines()[0]))
    excinfo = call.excinfo
    if excinfo is None:
        return None, None, E.one_line(str(longrepr).strip().splitlines()[-1] if longrepr else "")
    if isinstance(excinfo.value, (doctest.DocTestFailure, doctest.UnexpectedException)):
        return _doctest_where_and_why(excinfo.value, root)
    frames = [(str(entry.path), entry.lineno + 1) for entry in excinfo.traceback]
    file, line = E.last_project_frame(frames, root)
    return file, line, E.one_line(excinfo.exconly())


def _doctest_where_and_why(failure, root):
    """(file, line, reason) of a failed doctest example: the example's line and what it did instead."""
    test, example = failure.test, failure.example
    file = E.relative(test.filename, root) if test.filename else None
    line = None
    if test.lineno is not None and example.lineno is not None:
        line = test.lineno + example.lineno + 1
    source = E.one_line(example.source)
    if isinstance(failure, doctest.UnexpectedException):
        exc_type, exc, tb = failure.exc_info
        frames = [(fs.filename, fs.lineno) for fs in traceback.extract_tb(tb)]
        raised_file, raised_line = E.last_project_frame(frames, root)
        if raised_file:
            file, line = raised_file, raised_line
        why = E.one_line("".join(traceback.format_exception_only(exc_type, exc)))
        return file, line, E.one_line(f"doctest >>> {source} raised {why}")
    return file, line, E.one_line(f"doctest >>> {source} expected {example.want.strip()}, "
                                  f"got {failure.got.strip() or 'nothing'}")


def _subtest_description(report):
    """'[msg] (k=v, ...)' of a subtest's report (pytest >= 9, or the pytest-subtests plugin), else ''."""
    context = getattr(report, "context", None)
    if context is None or not hasattr(context, "kwargs"):
        return ""
    parts = []
    if getattr(context, "msg", None) is not None:
        parts.append(f"[{context.msg}]")
    if context.kwargs:
        parts.append("(" + ", ".join(f"{k}={v}" for k, v in context.kwargs.items()) + ")")
    return " ".join(parts) or "(<subtest>)"


class Reporter:
    """Writes the events of one pytest session."""

    def __init__(self, config, writer):
        self.writer = writer
        self.config = config
        self.root = _project_dir(config)
        self.tests = {}  # nodeid -> the final outcome being built across setup, call and teardown
        self.reported = 0  # how many test results were written
        self.exit_called = None  # why pytest.exit() ended the session, if it did
        self.guarded = _guarded()
        self.emit = writer.emit  # held here: a replaced Writer.emit still reports its own replacement
        self.tampered = False
        self.plugins = {id(p) for p in config.pluginmanager.get_plugins()}
        self.plugin_count = len(self.plugins)

    def pytest_sessionstart(self, session):
        self.writer.emit("start")

    def pytest_collectreport(self, report):
        if report.skipped and report.nodeid:
            # a whole module skipped while collecting (pytest.skip(allow_module_level=True),
            # importorskip at the top): pytest counts it as one skipped test, and so does clude
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
            self.writer.emit("result", id=report.nodeid, outcome="skipped",
                             file=_from_rootdir(self.config, report.fspath) if report.fspath else None,
                             reason=E.one_line(reason or ""))
            return
        if not report.failed:
            return
        text = str(report.longrepr)
        file, line = E.location_in_text(text, self.root)
        nodeid = report.nodeid or "<collection>"
        if file is None and report.fspath:
            file = _from_rootdir(self.config, report.fspath)
        self.writer.emit("collect_error", id=nodeid, file=file, line=line,
                         reason=E.error_line(text))

    def pytest_runtest_logstart(self, nodeid, location):
        self.writer.emit("begin", id=nodeid)

    def pytest_runtest_logreport(self, report):
        state = self.tests.setdefault(report.nodeid, {"outcome": None, "kind": None})
        if state["outcome"] in ("failed", "error"):
            return  # the first thing that went wrong is what the test reports
        wasxfail = hasattr(report, "wasxfail")
        if report.failed:
            where = getattr(report, "clude_where", None) or {}
            if isinstance(report.longrepr, str) and report.longrepr.startswith("[XPASS(strict)]"):
                where = dict(where, reason=E.one_line(report.longrepr))
            subtest = _subtest_description(report)
            if subtest:
                where = dict(where, reason=E.one_line(f"{subtest} {where.get('reason', '')}"))
            phase_is_call = report.when == "call"
            state.update(outcome="failed" if phase_is_call else "error",
                         kind="failure" if phase_is_call else "error", **where)
            if not where.get("file"):
                state["file"] = _from_rootdir(self.config, report.location[0])
                state["line"] = (report.location[1] or 0) + 1
        elif report.skipped:
            if state["outcome"] is None:
                state["outcome"] = "xfailed" if wasxfail else "skipped"
        elif report.when == "call":
            state["outcome"] = "xpassed" if wasxfail else "passed"

    def pytest_runtest_logfinish(self, nodeid, location):
        self.reported += 1
        state = self.tests.pop(nodeid, None) or {}
        outcome = state.pop("outcome", None)
        if outcome is None:  # no call phase ran (--setup-only, --setup-plan): the test did not run
            outcome, state["reason"] = "skipped", "not run: no call phase"
        if outcome in ("failed", "error"):  # where it went wrong: only a failure needs it
            if "file" not in state:
                state["file"] = _from_rootdir(self.config, location[0])
            if not state.get("line"):
                state["line"] = (location[1] or 0) + 1
        self.check()
        self.writer.emit("result", id=nodeid, outcome=outcome,
                         **{k: v for k, v in state.items() if v is not None})

    def check(self):
        """Report (once) what of pytest's reporting code was replaced since the session began."""
        if self.tampered:
            return
        now = _guarded()
        changed = sorted(name for name, obj in self.guarded.items() if now.get(name) is not obj)
        changed += self.foreign_plugins()
        if changed:
            self.tampered = True
            self.emit("tampered", what=changed)

    def foreign_plugins(self):
        """Plugins registered since the session began whose code lies in the project (or nowhere) and
        that are not a conftest.py: code under test that hooks into pytest at run time."""
        manager = self.config.pluginmanager
        plugins = manager.get_plugins()
        if len(plugins) == self.plugin_count:
            return []
        self.plugin_count = len(plugins)
        found = []
        for plugin in plugins:
            if id(plugin) in self.plugins:
                continue
            # a plugin is a module, a class (pytest's own legacypath-tmpdir) or an instance: its code's module
            module = sys.modules.get(getattr(plugin, "__module__", None) or type(plugin).__module__, None)
            file = getattr(plugin, "__file__", None) or getattr(module, "__file__", None)
            inside = file is None or os.path.abspath(file).startswith(os.path.join(self.root, ""))
            if inside and os.path.basename(file or "") != "conftest.py":
                found.append(f"a plugin registered while the tests ran ({manager.get_name(plugin)})")
            else:
                self.plugins.add(id(plugin))
        return found

    def pytest_keyboard_interrupt(self, excinfo):
        # pytest calls this hook for a real Ctrl-C, but also when it stops itself: collection errors
        # (Session.Interrupted, a KeyboardInterrupt subclass) and pytest.exit(). Only a real
        # interruption is reported as one; the others are told apart by the exit code and events.
        value = excinfo.value
        if not isinstance(value, KeyboardInterrupt):  # pytest.exit(msg)
            self.exit_called = ("pytest.exit() was called: "
                                + E.one_line(getattr(value, "msg", value)))
        elif not isinstance(value, pytest.Session.Interrupted):
            self.writer.emit("interrupted")

    def stopped_early(self, session):
        """Why the session ended before running every collected test (-x, --maxfail, pytest.exit)."""
        stopped = session.shouldfail or session.shouldstop
        if self.exit_called:
            why = self.exit_called
        elif isinstance(stopped, str) and stopped:
            maxfail = session.config.getoption("maxfail", 0) or 0
            if session.shouldfail and maxfail == 1:
                why = "stopped after the first failure (-x)"
            elif session.shouldfail and maxfail:
                why = f"stopped after {maxfail} failures (--maxfail={maxfail})"
            else:
                why = f"stopped early: {E.one_line(stopped)}"
        else:
            return None
        collected = getattr(session, "testscollected", 0) or 0
        not_run = collected - self.reported
        if not_run > 0:
            why += f"; {not_run} of {collected} tests did not run"
        return why

    def pytest_sessionfinish(self, session, exitstatus):
        self.check()
        self.writer.emit("finish", exit=int(exitstatus), stopped=self.stopped_early(session))
