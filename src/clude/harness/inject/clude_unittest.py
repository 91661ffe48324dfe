"""Runs unittest exactly as `python -m unittest ARGS` would, and reports clude events as it goes.

Usage (by clude, in the user's interpreter): python -m clude_unittest [unittest arguments]
Standard library only.
"""

import doctest
import inspect
import linecache
import os
import re
import sys
import traceback
import unittest

import clude_events as E
from clude_sample import sample

_ROOT = os.getcwd()


def _test_id(test):
    test_id = test.id()
    if isinstance(test, unittest.case._SubTest):  # a failing subTest reports under its parent
        test_id = test.test_case.id()
    return test_id


def _definition(test):
    """(file, line) of the `def` of a test's method, relative to the project; (None, None) if unknown."""
    case = getattr(test, "test_case", test)  # a subTest's parent test
    method = getattr(type(case), getattr(case, "_testMethodName", ""), None)
    try:
        code = inspect.unwrap(method).__code__
    except (AttributeError, TypeError, ValueError):
        return None, None
    if not E.is_project_file(code.co_filename, _ROOT):
        return None, None
    line = code.co_firstlineno
    # a decorated function's code starts at its first decorator; point at the `def` itself
    for offset in range(50):
        text = linecache.getline(code.co_filename, line + offset).lstrip()
        if not text:
            break
        if text.startswith(("def ", "async def ")):
            line += offset
            break
    return E.relative(code.co_filename, _ROOT), line


def _module_file(test):
    module = sys.modules.get(type(getattr(test, "test_case", test)).__module__)
    path = getattr(module, "__file__", None)
    return E.relative(path, _ROOT) if path else None


# A failed doctest as unittest reports it: the example's place, then what it did.
_DOCTEST = re.compile(r'^File "(?P<file>[^"]+)", line (?P<line>\d+), in .*\n'
                      r"Failed example:\n(?P<source>(?:    .*\n)+)"
                      r"(?:Expected:\n(?P<want>(?:    .*\n)+)|Expected nothing\n)?"
                      r"(?:Got:\n(?P<got>(?:    .*\n?)+)|Got nothing\n?"
                      r"|Exception raised:\n(?P<raised>(?:    .*\n?)+))?",
                      re.M)


def _doctest_where_and_why(text):
    """(file, line, reason) of the first failed example of a doctest's failure text, as pytest's
    adapter words it; None when the text is not one."""
    m = _DOCTEST.search(text)
    if m is None:
        return None
    file = E.relative(m["file"], _ROOT) if E.is_project_file(m["file"], _ROOT) else None
    source = E.one_line(m["source"])
    if m["raised"] is not None:
        raised = [ln.strip() for ln in m["raised"].splitlines() if ln.strip()]
        return file, int(m["line"]), E.one_line(f"doctest >>> {source} raised {raised[-1] if raised else ''}")
    got = E.one_line(m["got"] or "") or "nothing"
    return file, int(m["line"]), E.one_line(f"doctest >>> {source} expected {E.one_line(m['want'] or '')}, got {got}")


def _where_and_why(test, err):
    exc_type, exc, tb = err
    if isinstance(test, doctest.DocTestCase) and isinstance(exc, AssertionError):
        found = _doctest_where_and_why(str(exc))
        if found is not None and found[0] is not None:
            return found
    frames = [(fs.filename, fs.lineno) for fs in traceback.extract_tb(tb)]
    file, line = E.last_project_frame(frames, _ROOT)
    reason = E.one_line("".join(traceback.format_exception_only(exc_type, exc)))
    if file is None:
        file, line = _definition(test)
    if file is None:
        file = _module_file(test)
    return file, line, reason


def _load_failure(test, err):
    """(id, file, line, reason) of a module or package unittest could not load.

    unittest reports it as a test whose exception message holds the import's whole traceback as
    text; the place and the reason are read from that text.
    """
    exc_type, exc, tb = err
    text = str(exc)
    name = test.id().rsplit(".", 1)[-1]
    file, line = E.location_in_text(text, _ROOT)
    if file is None:
        # no project file in the traceback: the module itself was not found. Name its file only
        # if it exists (a name that is not a module, or a module that is not there, has none).
        guess = name.replace(".", os.sep) + ".py"
        file = guess if os.path.isfile(os.path.join(_ROOT, guess)) else None
    reason = E.error_line(text) if "Traceback" in text else ""
    if not reason:
        reason = E.one_line("".join(traceback.format_exception_only(exc_type, exc)))
    return name, file, line, reason


def _is_load_failure(test):
    # unittest turns a module that fails to import into a test of this class
    return type(test).__name__ in ("_FailedTest", "ModuleImportFailure", "_FailedTestCase")


class EventResult(unittest.TextTestResult):
    writer = None

    def startTest(self, test):
        super().startTest(test)
        if not _is_load_failure(test):
            self.writer.emit("begin", id=_test_id(test))

    def _emit(self, test, outcome, err=None, kind=None, reason=None):
        fields = {"id": _test_id(test), "outcome": outcome}
        if err is not None:
            file, line, why = _where_and_why(test, err)
            fields.update(file=file, line=line, reason=reason or why, kind=kind)
        elif reason:
            file, line = _definition(test)
            fields.update(file=file or _module_file(test), line=line, reason=reason, kind=kind)
        self.writer.emit("result", **{k: v for k, v in fields.items() if v is not None})

    def addSuccess(self, test):
        super().addSuccess(test)
        self._emit(test, "passed")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._emit(test, "failed", err, kind="failure")

    def addError(self, test, err):
        super().addError(test, err)
        if _is_load_failure(test):
            name, file, line, reason = _load_failure(test, err)
            self.writer.emit("collect_error", id=name, file=file, line=line, reason=reason)
            return
        self._emit(test, "error", err, kind="error")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            failed = issubclass(err[0], test.failureException)
            # each failing subTest is one failure of its parent test; its parameters tell them apart
            describe = getattr(subtest, "_subDescription", None)
            params = describe() if callable(describe) else ""
            why = _where_and_why(subtest, err)[2]
            self._emit(subtest, "failed" if failed else "error", err,
                       kind="failure" if failed else "error",
                       reason=f"{params} {why}".strip())

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._emit(test, "skipped")

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._emit(test, "xfailed")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        # unittest fails the run on an unexpected success, so it is a failure here too
        self._emit(test, "failed", kind="failure",
                   reason="unexpected success: a test marked @expectedFailure passed")


def _flatten(suite):
    for test in suite:
        if isinstance(test, unittest.TestSuite):
            yield from _flatten(test)
        else:
            yield test


class EventRunner(unittest.TextTestRunner):
    resultclass = EventResult

    def run(self, test):
        writer = EventResult.writer
        writer.emit("start")
        settings = E.sample_settings()
        if settings is not None:
            rate, seed = settings
            tests = list(_flatten(test))
            loadable = [t for t in tests if not _is_load_failure(t)]
            keep = set(sample([t.id() for t in loadable], seed, rate))
            chosen = [t for t in tests if _is_load_failure(t) or t.id() in keep]
            writer.emit("sample", rate=rate, seed=seed, selected=len(keep), of=len(loadable))
            test = unittest.TestSuite(chosen)
        total = test.countTestCases()
        try:
            result = super().run(test)
        except KeyboardInterrupt:
            writer.emit("interrupted")
            raise
        stopped = None
        if result.shouldStop:  # --failfast, or a test called result.stop()
            not_run = total - result.testsRun
            why = ("stopped after the first failure (-f/--failfast)" if self.failfast
                   else "stopped early: the test run was stopped")
            stopped = why + (f"; {not_run} of {total} tests did not run" if not_run > 0 else "")
        writer.emit("finish", exit=0 if result.wasSuccessful() else 1, stopped=stopped)
        return result


def main(argv):
    writer = E.from_env()
    if writer is None:
        sys.exit("clude_unittest: CLUDE_EVENTS_FILE is not set")
    EventResult.writer = writer
    unittest.main(module=None, argv=["python -m unittest"] + argv, testRunner=EventRunner)


if __name__ == "__main__":
    main(sys.argv[1:])
