"""The TAP parser on real `node --test` output (captured in tap_samples/), whole, cut short and damaged."""

from __future__ import annotations

from pathlib import Path

from clude.harness.tap import leaves, parse_tap, unescape

SAMPLES = Path(__file__).parent / "tap_samples"
MIXED = (SAMPLES / "node20-mixed.tap").read_bytes()  # nested suites, skip, todo, broken files
KILLED = (SAMPLES / "node20-killed.tap").read_bytes()  # node killed by SIGTERM mid-run


def _by_name(doc):
    return {r.name: r for r in doc.in_order}


def test_a_whole_stream():
    doc = parse_tap(MIXED)
    assert doc.version == 13 and doc.complete and doc.plan == 6
    names = [("::".join(r.path + [r.name])) for r in leaves(doc.results)]
    assert "outer::inner::deep fails" in names and "with subtests::sub2" in names
    assert "outer" not in names and "outer::inner" not in names  # suites are not leaves
    results = _by_name(doc)
    assert results["top fails"].diag["error"].startswith("Expected values to be strictly equal")
    assert results["top fails"].diag["location"] == "/tmp/nt/test/a.test.js:5:1"
    assert results["skipped"].directive == "skip" and results["skipped"].directive_reason == "not now"
    assert results["todo fails"].directive == "todo" and not results["todo fails"].ok
    assert results["todo passes"].directive == "todo" and results["todo passes"].ok
    assert [c.name for c in results["outer"].children] == ["inner", "skipped", "todo fails",
                                                           "todo passes"]


def test_a_broken_file_keeps_its_stderr_as_comments():
    broken = _by_name(parse_tap(MIXED))["/tmp/nt/test/b.test.js"]
    assert not broken.ok and broken.diag["exitCode"] == 1
    assert "SyntaxError: Unexpected token ';'" in broken.comments
    assert broken.comments[0] == "/tmp/nt/test/b.test.js:1"


def test_a_stream_killed_mid_run():
    doc = parse_tap(KILLED)
    assert not doc.complete and doc.plan is None
    assert [r.name for r in doc.in_order] == ["quick"] and doc.in_order[0].ok


def test_every_prefix_of_a_stream_parses():
    text = MIXED.decode()
    previous = 0
    for cut in range(0, len(text), 97):
        doc = parse_tap(text[:cut])
        assert len(doc.in_order) >= previous  # cutting never invents or loses earlier results
        previous = len(doc.in_order)
        assert not doc.complete or cut >= text.index("\n1..6")


def test_a_stream_cut_inside_a_diagnostic_block():
    text = MIXED.decode()
    cut = text.index("1 !== 2") + 3
    doc = parse_tap(text[:cut])
    assert doc.unterminated_yaml and not doc.complete
    assert doc.in_order[-1].name == "top fails"
    assert doc.in_order[-1].diag.get("location") == "/tmp/nt/test/a.test.js:5:1"


def test_subtests_of_a_parent_that_never_reported_are_kept():
    text = MIXED.decode()
    doc = parse_tap(text[: text.index("not ok 1 - inner")])
    deep = _by_name(doc)["deep ok"]
    assert deep.path == ["outer", "inner"] and deep in doc.results
    assert doc.running == ["outer", "inner"]


def test_bail_out_ends_the_stream():
    text = MIXED.decode()
    doc = parse_tap(text[: text.index("# Subtest: outer")] + "Bail out! database is down\n")
    assert doc.bailed_out == "database is down" and doc.complete
    assert [r.name for r in doc.in_order] == ["top passes", "top fails"]


def test_bytes_that_are_not_utf8():
    damaged = MIXED.replace(b"ok 1 - top passes", b"ok 1 - top \xff\xfe passes")
    damaged = damaged.replace(b"1 !== 2", b"1 \xc3 2")
    doc = parse_tap(damaged)
    assert doc.complete and "top \ufffd\ufffd passes" in _by_name(doc)
    assert "\ufffd" in _by_name(doc)["top fails"].diag["error"]


def test_a_huge_diagnostic_block_is_read_without_yaml():
    big = "x" * 400_000
    text = ("TAP version 13\n# Subtest: big\nnot ok 1 - big\n  ---\n  location: '/p/a.test.js:3:1'\n"
            f"  error: |-\n    {big}\n    second\n  code: 'ERR_TEST_FAILURE'\n  ...\n1..1\n")
    diag = parse_tap(text).in_order[0].diag
    assert diag["location"] == "/p/a.test.js:3:1" and diag["code"] == "ERR_TEST_FAILURE"
    assert diag["error"].startswith("xxx") and len(diag["error"]) >= 400_000


def test_broken_yaml_falls_back_to_keys():
    text = MIXED.decode().replace("  failureType: 'testCodeFailure'\n", "  failureType: [oops\n", 1)
    top = _by_name(parse_tap(text))["top fails"]
    assert top.diag["location"] == "/tmp/nt/test/a.test.js:5:1"


def test_names_are_unescaped_and_directives_need_a_bare_hash():
    doc = parse_tap("TAP version 13\nok 1 - issue \\#12 fixed\nok 2 - a \\\\ b # SKIP slow\n"
                    "ok 3 - plain # not a directive\n1..3\n")
    first, second, third = doc.in_order
    assert first.name == "issue #12 fixed" and first.directive is None
    assert second.name == "a \\ b" and second.directive == "skip"
    assert third.name == "plain # not a directive" and third.directive is None
    assert unescape("line\\nbreak") == "line\nbreak"


def test_junk_and_empty_input():
    assert parse_tap(b"").in_order == [] and not parse_tap(b"").complete
    doc = parse_tap(b"npm WARN something\n\x00\x01garbage\nok\nnot ok 7\n")
    assert [(r.ok, r.number, r.name) for r in doc.in_order] == [(True, None, ""), (False, 7, "")]
