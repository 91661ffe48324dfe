"""Go and cargo adapters: sampling by test id on real toolchains, gotestsum JUnit, detection."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from clude.config import TestConfig
from clude.harness import run_tests
from clude.harness.frameworks import detect, for_command
from clude.harness.frameworks.cargo import CargoTest
from clude.harness.frameworks.go import GoTest
from clude.harness.inject.clude_sample import sample
from conftest import project_env

SUITE = 40
RATE = 0.3
needs_go = pytest.mark.skipif(shutil.which("go") is None, reason="go is not installed")
needs_cargo = pytest.mark.skipif(shutil.which("cargo") is None, reason="cargo is not installed")


def _env() -> dict[str, str]:
    return project_env(GOPROXY="off", GOFLAGS="-mod=mod", CARGO_NET_OFFLINE="true")


def _run(root: Path, seed: str | None = None, rate: float | None = RATE):
    return run_tests(root, TestConfig(timeout=180), rate=rate, seed=seed, use_cache=False,
                     env=_env())


@pytest.fixture(scope="module")
def go_project(tmp_path_factory) -> Path:
    """40 top-level Go tests in two packages; one of them has subtests."""
    root = tmp_path_factory.mktemp("go") / "suite"
    (root / "alpha").mkdir(parents=True)
    (root / "beta").mkdir()
    (root / "go.mod").write_text("module example.com/suite\n\ngo 1.19\n")
    for pkg, first, last in (("alpha", 0, 25), ("beta", 25, SUITE - 1)):
        body = "".join(f"func TestCase{i:02d}(t *testing.T) {{}}\n\n" for i in range(first, last))
        (root / pkg / f"{pkg}_test.go").write_text(f'package {pkg}\n\nimport "testing"\n\n{body}')
    (root / "beta" / "table_test.go").write_text(
        'package beta\n\nimport "testing"\n\nfunc TestTable(t *testing.T) {\n'
        '\tfor _, n := range []string{"a", "b"} {\n\t\tt.Run(n, func(t *testing.T) {})\n\t}\n}\n')
    return root


@pytest.fixture(scope="module")
def cargo_project(tmp_path_factory) -> Path:
    """40 cargo tests: 30 unit tests in src/lib.rs, 10 integration tests in tests/more.rs."""
    root = tmp_path_factory.mktemp("cargo") / "suite"
    (root / "src").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "Cargo.toml").write_text('[package]\nname = "suite"\nversion = "0.1.0"\n'
                                     'edition = "2021"\n\n[dependencies]\n')
    units = "".join(f"    #[test]\n    fn case_{i:02d}() {{}}\n" for i in range(30))
    (root / "src" / "lib.rs").write_text(
        f"//! Many tests.\n\n#[cfg(test)]\nmod tests {{\n{units}}}\n")
    (root / "tests" / "more.rs").write_text(
        "".join(f"#[test]\nfn more_{i:02d}() {{}}\n" for i in range(10)))
    return root


def _top_level_go(test_id: str) -> str:
    """The top-level test of an id (subtests "pkg/TestX/a" belong to "pkg/TestX")."""
    pkg, rest = test_id.split("/Test", 1)
    return f"{pkg}/Test{rest.split('/')[0]}"


@needs_go
def test_go_sampling_is_fixed_by_the_seed(go_project):
    full = _run(go_project, rate=None)
    assert full.status.value == "passed", full.public()
    assert full.counts.total == SUITE + 1  # TestTable counts as its two subtests
    every = sorted({_top_level_go(t) for t in full.outcomes})
    assert len(every) == SUITE

    first, second = _run(go_project, "agent-1"), _run(go_project, "agent-1")
    assert first.status.value == "passed", first.public()
    assert first.outcomes == second.outcomes
    picked = sorted({_top_level_go(t) for t in first.outcomes})
    assert picked == sorted(sample(every, "agent-1", RATE))
    assert first.sample is not None
    assert (first.sample.rate, first.sample.seed) == (RATE, "agent-1")
    assert (first.sample.selected, first.sample.of) == (len(picked), SUITE)
    assert 0 < len(picked) < SUITE

    other = _run(go_project, "agent-2")
    assert sorted({_top_level_go(t) for t in other.outcomes}) != picked
    assert other.sample.of == SUITE


@needs_cargo
def test_cargo_sampling_is_fixed_by_the_seed(cargo_project):
    full = _run(cargo_project, rate=None)
    assert full.status.value == "passed", full.public()
    assert full.counts.total == SUITE
    assert "tests/more.rs::more_03" in full.outcomes
    assert "src/lib.rs::tests::case_07" in full.outcomes

    first, second = _run(cargo_project, "agent-1"), _run(cargo_project, "agent-1")
    assert first.status.value == "passed", first.public()
    assert first.outcomes == second.outcomes
    assert sorted(first.outcomes) == sorted(sample(list(full.outcomes), "agent-1", RATE))
    assert first.sample is not None
    assert (first.sample.rate, first.sample.seed) == (RATE, "agent-1")
    assert (first.sample.selected, first.sample.of) == (len(first.outcomes), SUITE)
    assert 0 < first.counts.total < SUITE

    other = _run(cargo_project, "agent-2")
    assert sorted(other.outcomes) != sorted(first.outcomes)


@needs_go
def test_go_sampling_a_project_that_does_not_build_is_an_error(tmp_path):
    (tmp_path / "go.mod").write_text("module example.com/bad\n\ngo 1.19\n")
    (tmp_path / "bad_test.go").write_text(
        'package bad\n\nimport "testing"\n\nfunc TestX(t *testing.T) { var n int = "s"; _ = n }\n')
    verdict = _run(tmp_path, "s")
    assert verdict.status.value == "error", verdict.public()
    assert verdict.failures[0].file == "bad_test.go" and verdict.failures[0].line == 5
    assert "collection error in bad_test.go" in verdict.reason


@needs_cargo
def test_cargo_sampling_a_crate_that_does_not_compile_is_an_error(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "Cargo.toml").write_text('[package]\nname = "bad"\nversion = "0.1.0"\n'
                                         'edition = "2021"\n')
    (tmp_path / "src" / "lib.rs").write_text("pub fn f() -> u8 {\n    \"x\"\n}\n")
    verdict = _run(tmp_path, "s")
    assert verdict.status.value == "error", verdict.public()
    assert (verdict.failures[0].file, verdict.failures[0].line) == ("src/lib.rs", 2)
    assert "error[E0308]" in verdict.reason


def test_commands_are_recognized(tmp_path):
    assert GoTest().recognizes(["go", "test", "./..."], tmp_path)
    assert GoTest().recognizes(["/usr/bin/go", "test", "-v", "./pkg"], tmp_path)
    assert not GoTest().recognizes(["go", "build"], tmp_path)
    assert CargoTest().recognizes(["cargo", "test", "--lib"], tmp_path)
    assert CargoTest().recognizes(["cargo", "+nightly", "test"], tmp_path)
    assert not CargoTest().recognizes(["cargo", "build"], tmp_path)
    assert for_command(["cargo", "test"], tmp_path, {}).name == "cargo"
    assert for_command(["go", "test", "./..."], tmp_path, {}).name == "go"


def test_projects_are_detected_by_their_manifest(tmp_path):
    go, rust = tmp_path / "go", tmp_path / "rust"
    go.mkdir()
    rust.mkdir()
    (go / "go.mod").write_text("module example.com/x\n\ngo 1.19\n")
    (rust / "Cargo.toml").write_text('[package]\nname = "x"\nversion = "0.1.0"\n')
    assert [(a.name, argv) for a, argv in [detect(go, {})]] == [("go", ["go", "test", "./..."])]
    assert [(a.name, argv) for a, argv in [detect(rust, {})]] == [("cargo", ["cargo", "test"])]


# What `gotestsum --junitfile report.xml` writes for the tests of tests/corpus/go/failures (plus one
# subtest table), in gotestsum's layout: one testsuite per package, parents and subtests as cases.
GOTESTSUM_XML = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="5" failures="3" errors="0" time="0.004000">
  <testsuite tests="5" failures="3" time="0.004000" name="example.com/failures/calc">
    <properties><property name="go.version" value="go1.19.8 linux/amd64"></property></properties>
    <testcase classname="example.com/failures/calc" name="TestAdd" time="0.000000">
      <failure message="Failed" type="">=== RUN   TestAdd
    calc_test.go:7: Add(2, 3) = -1, want 5
--- FAIL: TestAdd (0.00s)
</failure>
    </testcase>
    <testcase classname="example.com/failures/calc" name="TestDiv/whole" time="0.000000"></testcase>
    <testcase classname="example.com/failures/calc" name="TestDiv/rounds_down" time="0.000000">
      <failure message="Failed" type="">=== RUN   TestDiv/rounds_down
    calc_test.go:24: Div(7, 2) = 3, want 4
    --- FAIL: TestDiv/rounds_down (0.00s)
</failure>
    </testcase>
    <testcase classname="example.com/failures/calc" name="TestDiv" time="0.000000">
      <failure message="Failed" type="">=== RUN   TestDiv
--- FAIL: TestDiv (0.00s)
</failure>
    </testcase>
    <testcase classname="example.com/failures/calc" name="TestSub" time="0.000000"></testcase>
  </testsuite>
</testsuites>
"""


@needs_go
def test_gotestsum_junit_gets_go_ids_leaves_and_locations(copy_project):
    root = copy_project("go/failures")
    (root / "gotestsum.xml").write_text(GOTESTSUM_XML)
    verdict = run_tests(root, TestConfig(junit="report.xml", timeout=60),
                        command=["sh", "-c", "cp gotestsum.xml report.xml; exit 1"],
                        use_cache=False, env=_env())
    assert verdict.framework == "go"
    assert verdict.status.value == "failed", verdict.public()
    assert verdict.counts.total == 4 and verdict.counts.failed == 2
    found = {f.id: (f.file, f.line, f.reason) for f in verdict.failures}
    assert found == {
        "example.com/failures/calc/TestAdd": ("calc/calc_test.go", 7, "Add(2, 3) = -1, want 5"),
        "example.com/failures/calc/TestDiv/rounds_down": ("calc/calc_test.go", 24,
                                                           "Div(7, 2) = 3, want 4")}


DOC_LIB = """//! Doc tests whose failures must be located in this file.

/// Adds.
///
/// ```
/// use {crate}::add;
/// let x = 1;
///
/// assert_eq!(add(x, 1), 2);
/// assert_eq!(add(x, 2), 4);
/// assert_eq!(add(x, 3), 4);
/// ```
pub fn add(a: i32, b: i32) -> i32 {{
    a + b
}}

/// Halves, and panics on odd numbers.
///
/// ```
/// # use {crate}::half;
/// fn main() {{
///     let n = half(4);
///     assert!(n == 3, "half of four");
/// }}
/// ```
///
/// ```
/// {crate}::half(3);
/// ```
pub fn half(n: i32) -> i32 {{
    if n % 2 == 1 {{
        panic!("odd number {{n}}");
    }}
    n / 2
}}

/// ```
/// let v: Option<u8> = None;
/// v.unwrap();
/// ```
pub fn nothing() {{}}
"""


@needs_cargo
@pytest.mark.parametrize("edition", ["2021", "2024"])
def test_a_failing_doc_test_is_located_at_its_line_in_the_source(tmp_path, edition):
    """rustdoc compiles a snippet behind lines of its own (2021) or into one generated bundle (2024):
    the failure is the snippet's line in src/lib.rs all the same. A bundle's line says nothing of the
    snippet's: there the one line that holds what the panic names is taken, and with three assert_eq!
    to choose from, the doc test's first line (never a wrong one)."""
    crate = f"docs{edition}"
    (tmp_path / "src").mkdir()
    (tmp_path / "Cargo.toml").write_text(f'[package]\nname = "{crate}"\nversion = "0.1.0"\n'
                                         f'edition = "{edition}"\n\n[dependencies]\n')
    (tmp_path / "src" / "lib.rs").write_text(DOC_LIB.format(crate=crate))
    verdict = run_tests(tmp_path, TestConfig(timeout=300), use_cache=False, env=_env())
    where = {f.id: (f.file, f.line) for f in verdict.failures}
    assert verdict.counts.failed == 4, verdict.public()
    assert where == {"src/lib.rs - add (line 5)": ("src/lib.rs", 10 if edition == "2021" else 5),
                     "src/lib.rs - half (line 19)": ("src/lib.rs", 23),
                     "src/lib.rs - half (line 27)": ("src/lib.rs", 32),
                     "src/lib.rs - nothing (line 37)": ("src/lib.rs", 39)}, verdict.failures


SNIPPET = ["/// Doc.", "/// ```", "/// # use c::f;", "/// let a = f(1);", "/// assert_eq!(a, 2);",
           "/// assert!(a > 5, \"too small\");", "/// a.checked_div(0).unwrap();", "/// ```", "pub fn f() {}"]


@pytest.mark.parametrize("reported, reason, line", [
    (7, "assertion `left == right` failed: left: 1, right: 2", 5),   # 4 lines of preamble + snippet line 3
    (8, "assertion failed: a > 5", 6),
    (8, "too small", 6),                                              # assert!'s own message: its words
    (9, "called `Option::unwrap()` on a `None` value", 7),
    (6, "called `Option::unwrap()` on a `None` value", 7),           # a shorter preamble: the nearest line
    (4, "something else entirely", 2),                                # nothing names it: the fence
    (40, "assertion failed: x", 40),                                  # beyond the snippet: code it called
])
def test_a_doc_test_panic_line_is_mapped_into_the_snippet(reported, reason, line):
    from clude.harness.frameworks.cargo_doc import doc_test_line
    assert doc_test_line(SNIPPET, 2, reported, reason) == line


def test_a_doc_test_panic_in_a_generated_bundle_takes_the_one_line_that_says_it():
    from clude.harness.frameworks.cargo_doc import doc_test_line, doc_test_start, preamble
    assert doc_test_line(SNIPPET, 2, None, "called `Option::unwrap()` on a `None` value") == 7
    assert doc_test_line(SNIPPET, 2, None, "panicked: boom") == 2  # no line holds it: the fence
    assert doc_test_start("src/lib.rs - f (line 2)") == ("src/lib.rs", 2)
    assert doc_test_start("src/lib.rs - f (line 2) - compile fail") == ("src/lib.rs", 2)
    assert doc_test_start("tests::case_01") is None
    assert preamble(["extern crate c;", "fn main() {", "}"]) == 1
    assert preamble(["let a = 1;"]) == 4
