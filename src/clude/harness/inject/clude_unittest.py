"""Runs unittest exactly as `python -m unittest ARGS` would, and reports clude events as it goes.

Usage (by clude, in the user's interpreter): python -m clude_unittest [unittest arguments]
Standard library only.
"""

import os
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


def _where_and_why(test, err):
    exc_type, exc, tb = err
    frames = [(fs.filename, fs.lineno) for fs in traceback.extract_tb(tb)]
    file, line = E.last_project_frame(frames, _ROOT)
    reason = E.one_line("".join(traceback.format_exception_only(exc_type, exc)))
    if file is None:
        module = sys.modules.get(type(test).__module__)
        path = getattr(module, "__file__", None)
        if path:
            file = E.relative(path, _ROOT)
    return file, line, reason


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
            fields.update(reason=reason, kind=kind)
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
            file, line, reason = _where_and_why(test, err)
            name = test.id().rsplit(".", 1)[-1]
            if file is None:
                file = name.replace(".", os.sep) + ".py"
            self.writer.emit("collect_error", id=name, file=file, line=line, reason=reason)
            return
        self._emit(test, "error", err, kind="error")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            failed = issubclass(err[0], test.failureException)
            self._emit(subtest, "failed" if failed else "error", err,
                       kind="failure" if failed else "error")

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
        try:
            result = super().run(test)
        except KeyboardInterrupt:
            writer.emit("interrupted")
            raise
        writer.emit("finish", exit=0 if result.wasSuccessful() else 1, stopped=None)
        return result


def main(argv):
    writer = E.from_env()
    if writer is None:
        sys.exit("clude_unittest: CLUDE_EVENTS_FILE is not set")
    EventResult.writer = writer
    unittest.main(module=None, argv=["python -m unittest"] + argv, testRunner=EventRunner)


if __name__ == "__main__":
    main(sys.argv[1:])
