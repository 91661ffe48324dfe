"""JUnit XML from real pytest runs and in other producers' variants; hostile files never crash or lie."""

import subprocess
import sys
import textwrap

import pytest

from clude.config import TestConfig
from clude.harness import Status, run_tests
from clude.harness.junit import UnreadableResults, read_junit
from conftest import project_env


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_real_pytest_junit_xunit1_gives_ids_files_lines_reasons_and_xfail(tmp_path):
    write(tmp_path / "tests" / "test_a.py", """\
        import pytest

        def test_ok():
            assert True

        def test_bad():
            assert 1 + 1 == 3

        class TestK:
            @pytest.mark.parametrize("x", ["a::b", "[c]"])
            def test_p(self, x):
                assert x

        @pytest.mark.xfail(reason="known")
        def test_known():
            assert False

        @pytest.mark.skip(reason="later")
        def test_later():
            pass
        """)
    xml = tmp_path / "junit.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    f"--junitxml={xml}", "-o", "junit_family=xunit1"], cwd=tmp_path,
                   capture_output=True, env=project_env())
    facts = read_junit(xml, tmp_path)
    assert facts.outcomes == {
        "tests/test_a.py::test_ok": "passed",
        "tests/test_a.py::test_bad": "failed",
        "tests/test_a.py::TestK::test_p[a::b]": "passed",
        "tests/test_a.py::TestK::test_p[[c]]": "passed",
        "tests/test_a.py::test_known": "xfailed",
        "tests/test_a.py::test_later": "skipped",
    }
    [failure] = facts.failures
    assert (failure.file, failure.line, failure.kind) == ("tests/test_a.py", 7, "failure")
    assert failure.reason.startswith("assert (1 + 1) == 3")


def test_xmlrunner_style_lines_are_one_based(tmp_path):
    xml = write(tmp_path / "r.xml", """\
        <?xml version="1.0" encoding="UTF-8"?>
        <testsuites>
          <testsuite name="tests.test_m.TestM-20261123" tests="2" errors="1" failures="0">
            <testcase classname="tests.test_m.TestM" name="test_ok" file="tests/test_m.py" line="5"/>
            <testcase classname="tests.test_m.TestM" name="test_boom" file="tests/test_m.py" line="8">
              <error type="KeyError" message="'missing'"><![CDATA[Traceback (most recent call last):
          File "/elsewhere/lib/python3.11/unittest/case.py", line 57, in testPartExecutor
          File "tests/test_m.py", line 9, in test_boom
            {}["missing"]
        KeyError: 'missing'
        ]]></error>
            </testcase>
          </testsuite>
        </testsuites>
        """)
    facts = read_junit(xml, tmp_path)
    assert facts.outcomes == {"tests/test_m.py::TestM::test_ok": "passed",
                              "tests/test_m.py::TestM::test_boom": "error"}
    [failure] = facts.failures
    assert (failure.file, failure.line, failure.kind, failure.reason) == \
        ("tests/test_m.py", 9, "error", "'missing'")


def test_same_named_cases_each_count_and_a_javascript_frame_locates_the_failure(tmp_path):
    """mocha-junit-reporter's shape (deep-diff): two tests of one suite share a title, and a failure's
    text is a JavaScript stack whose frame in the project is relative."""
    xml = write(tmp_path / "r.xml", """\
        <?xml version="1.0" encoding="UTF-8"?>
        <testsuites name="Mocha Tests" tests="3" failures="1">
          <testsuite name="regression tests for issue 102" tests="3" failures="1">
            <testcase name="deep-diff regression should not throw" classname="should not throw"/>
            <testcase name="deep-diff regression should not throw" classname="should not throw"/>
            <testcase name="deep-diff regexes can compare" classname="can compare">
              <failure message="Cannot read properties of undefined (reading 'length')" type="TypeError"><![CDATA[TypeError: Cannot read properties of undefined (reading 'length')
            at Context.<anonymous> (test/tests.js:474:21)
            at process.processImmediate (node:internal/timers:483:21)]]></failure>
            </testcase>
          </testsuite>
        </testsuites>
        """)
    facts = read_junit(xml, tmp_path)
    assert facts.outcomes == {"should not throw::deep-diff regression should not throw": "passed",
                              "should not throw::deep-diff regression should not throw #2": "passed",
                              "can compare::deep-diff regexes can compare": "failed"}
    [failure] = facts.failures
    assert (failure.file, failure.line) == ("test/tests.js", 474)


def test_gotestsum_style_single_testsuite_root(tmp_path):
    xml = write(tmp_path / "go.xml", """\
        <testsuites tests="3" failures="1" errors="0">
          <testsuite tests="3" failures="1" time="0.01" name="example.com/calc">
            <testcase classname="example.com/calc" name="TestAdd" time="0.00"></testcase>
            <testcase classname="example.com/calc" name="TestSub" time="0.00">
              <failure message="Failed" type="">=== RUN   TestSub
            calc_test.go:12: got 1, want 2
        --- FAIL: TestSub (0.00s)
        </failure>
            </testcase>
            <testcase classname="example.com/calc" name="TestSkip" time="0.00"><skipped message="=== RUN TestSkip"></skipped></testcase>
          </testsuite>
        </testsuites>
        """)
    facts = read_junit(xml, tmp_path)
    assert facts.outcomes == {"example.com/calc::TestAdd": "passed",
                              "example.com/calc::TestSub": "failed",
                              "example.com/calc::TestSkip": "skipped"}
    assert facts.failures[0].reason == "Failed"


@pytest.mark.parametrize("content,words", [
    ("", "is empty"),
    ('<testsuites><testsuite name="x"><testcase name="a"', "truncated or malformed"),
    ("\x00\x01 not xml at all", "truncated or malformed"),
    ("""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<testsuites><testsuite><testcase name="&lol3;"/></testsuite></testsuites>""", "refused as hostile"),
])
def test_unreadable_files_raise_a_clear_error(tmp_path, content, words):
    xml = tmp_path / "bad.xml"
    xml.write_text(content, encoding="utf-8")
    with pytest.raises(UnreadableResults, match=words):
        read_junit(xml, tmp_path)


def test_a_missing_file_is_unreadable(tmp_path):
    with pytest.raises(UnreadableResults, match="was not written"):
        read_junit(tmp_path / "none.xml", tmp_path)


def _generic(tmp_path, script: str, junit="out/junit.xml"):
    write(tmp_path / "run.py", script)
    config = TestConfig(command=[sys.executable, "run.py"], framework="generic", junit=junit)
    return run_tests(tmp_path, config, use_cache=False, env=project_env())


def test_a_configured_command_with_junit_gives_an_exact_verdict(tmp_path):
    verdict = _generic(tmp_path, """\
        import os, sys
        os.makedirs("out", exist_ok=True)
        open("out/junit.xml", "w").write('<testsuite name="suite"><testcase classname="c" name="a"/>'
            '<testcase classname="c" name="b"><failure message="b broke">at b.py:3</failure></testcase>'
            '</testsuite>')
        sys.exit(1)
        """)
    assert verdict.status is Status.FAILED
    assert (verdict.counts.passed, verdict.counts.failed) == (1, 1)
    assert verdict.failures[0].reason == "b broke"


def test_a_stale_junit_file_is_never_read(tmp_path):
    write(tmp_path / "out" / "junit.xml", '<testsuite name="s"><testcase classname="c" name="a"/></testsuite>')
    verdict = _generic(tmp_path, "import sys; sys.exit(0)\n")
    assert verdict.status is Status.ERROR
    assert "was not written" in verdict.reason


def test_truncated_junit_from_a_command_is_an_error_not_a_pass(tmp_path):
    verdict = _generic(tmp_path, """\
        import os
        os.makedirs("out", exist_ok=True)
        open("out/junit.xml", "w").write('<testsuite name="s"><testcase classname="c" name="a"/><test')
        """)
    assert verdict.status is Status.ERROR
    assert "truncated" in verdict.reason


def test_a_command_without_machine_readable_results_says_how_to_fix_it(tmp_path):
    write(tmp_path / "run.py", "print('3 passed')\n")
    verdict = run_tests(tmp_path, TestConfig(command=[sys.executable, "run.py"]), use_cache=False,
                        env=project_env())
    assert verdict.status is Status.ERROR
    assert "[test] junit" in verdict.reason
