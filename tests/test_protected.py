"""Which files of a change judge the work: tests, what configures test runs and what hooks into them."""

import json
import tomllib
from fnmatch import fnmatchcase
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clude.harness.protected import (
    ProtectedChange,
    Touch,
    conflict_markers,
    glob_matches,
    protected_changes,
    protected_reason,
)

DATA = Path(__file__).resolve().parents[1] / "src" / "clude" / "harness" / "data" / "protected.toml"


def changed(path, before, after, extra_globs=()):
    """The one ProtectedChange for a touch of path, or None."""
    def enc(s):
        return s if s is None or isinstance(s, bytes) else s.encode()
    found = protected_changes([Touch(path, enc(before), enc(after))], extra_globs)
    assert len(found) <= 1
    return found[0] if found else None


# ---- whole files -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "test_app.py", "pkg/sub/test_models.py", "app_test.py", "src/pkg/models_test.py", "tests.py",
    "tests/data/input.txt", "a/b/tests/helpers.py", "test/fixture.json", "pkg/test/util.py",
    "tests/integration.rs",  # Rust integration tests
    "src/app.test.ts", "src/app.test.js", "ui/Button.test.tsx", "ui/Button.spec.jsx", "lib/x.spec.mjs",
    "lib/x.test.cjs", "lib/x.spec.mts", "__tests__/a.js", "web/src/__tests__/deep/util.ts",
    "test.js", "test-parse.mjs", "parse-test.js", "parse_test.cjs",  # node --test's own patterns
    "pkg/parse_test.go", "pkg/testdata/golden.txt", "testdata/in/x.bin",
])
def test_test_files_are_protected_as_tests(path):
    reason = protected_reason(path)
    assert reason is not None and reason[0] == "test", reason
    assert changed(path, "old", "new") == ProtectedChange(path, "test", reason[1])


@pytest.mark.parametrize("path", [
    "conftest.py", "a/b/conftest.py", "tests/conftest.py", "pytest.ini", ".pytest.ini", "pytest.toml",
    ".pytest.toml", "noxfile.py", "tox.toml", ".coveragerc", "sitecustomize.py", "lib/usercustomize.py",
    "evil.pth", "src/x.pth", ".venv/bin/python", ".venv/lib/python3.11/site-packages/pytest/__init__.py",
    "venv/bin/python", "clude_events.py", "src/clude_pytest_plugin.py", "clude.toml", ".clude/state.json",
    "node_modules/jest/bin/jest.js", "packages/web/node_modules/x/index.js", "jest.config.js",
    "web/jest.config.ts", "vitest.config.mts", "vitest.workspace.ts", "vite.config.js", ".mocharc.yml",
    ".mocharc.json", ".taprc", ".c8rc.json", ".nycrc", ".nycrc.json", "ava.config.js", "babel.config.cjs",
    ".babelrc", ".babelrc.json", ".npmrc", ".yarnrc", ".yarnrc.yml", "build.rs", "crates/core/build.rs",
    ".cargo/config.toml", "crates/core/.cargo/config",
])
def test_config_files_are_protected_as_config(path):
    reason = protected_reason(path)
    assert reason is not None and reason[0] == "config", reason
    assert changed(path, "old", "new").kind == "config"


@pytest.mark.parametrize("path", [
    "src/app.py", "src/testing.py", "contest.py", "attest.py", "latest_thing.py", "mytests/x.py",
    "src/tests.txt", "app.test.py", "x.test.json", "src/app.ts", "README.md", "Makefile", "benches/b.rs",
    "src/main.rs", "pkg/parse.go", "docs/testing.md", "src/venv_tools/x.py", "a/.venv/bin/python",
    "a/.clude/state", "pytest.ini.bak", "x.pth.txt", "clude.py", "build.rs.orig", "pyproject.toml",
    "package.json", "setup.cfg", "tox.ini", "Cargo.toml",
])
def test_other_files_have_no_whole_file_rule(path):
    assert protected_reason(path) is None


def test_why_is_a_phrase_for_the_user():
    assert protected_reason("conftest.py") == ("config", "a pytest conftest.py (hooks into every test run)")
    # a conftest in tests/ is named as a conftest, not as one more file in tests/
    assert protected_reason("tests/unit/conftest.py")[1].startswith("a pytest conftest.py")
    assert protected_reason("tests/x.py") == ("test", "a file in a tests/ or test/ folder")


@pytest.mark.parametrize("given_path, normal", [
    ("./tests/test_a.py", "tests/test_a.py"), ("tests\\test_a.py", "tests/test_a.py"),
    (".\\conftest.py", "conftest.py"), ("a//b/./conftest.py", "a/b/conftest.py"),
])
def test_paths_are_normalized(given_path, normal):
    assert protected_reason(given_path) == protected_reason(normal) is not None
    assert changed(given_path, None, "x").path == normal


@pytest.mark.parametrize("path", ["Tests/x.py", "CONFTEST.py", "Test_x.py", "PYTEST.INI", "Node_Modules/x"])
def test_paths_are_matched_case_sensitively(path):
    assert protected_reason(path) is None


@pytest.mark.parametrize("before, after", [(None, "x"), ("x", "y"), ("x", None)])
def test_adding_changing_and_deleting_a_protected_file_count_alike(before, after):
    assert changed("tests/test_a.py", before, after).kind == "test"
    assert changed("conftest.py", before, after).kind == "config"
    assert changed("src/app.py", before, after) is None


def test_changes_come_back_in_order_and_only_the_protected_ones():
    touched = [Touch("src/a.py", b"1", b"2"), Touch("tests/test_a.py", None, b"x"),
               Touch("README.md", b"a", None), Touch("conftest.py", b"a", None)]
    assert [(c.path, c.kind) for c in protected_changes(touched)] == [("tests/test_a.py", "test"),
                                                                       ("conftest.py", "config")]
    assert protected_changes(iter(touched[:1])) == []


# ---- extra globs ([team] protected) ------------------------------------------------------------------------

def test_extra_globs_protect_more_files_as_config():
    assert protected_reason("docs/spec.md") is None
    kind, why = protected_reason("docs/spec.md", ["docs/**"])
    assert kind == "config" and "docs/**" in why and "[team] protected" in why
    assert changed("docs/spec.md", "a", None, ["docs/"]).kind == "config"
    assert protected_reason("sub/Makefile", ["Makefile"])[0] == "config"  # no '/': any depth
    assert protected_reason("sub/Makefile", ["/Makefile"]) is None  # a leading '/': the root only
    assert protected_reason("Makefile", ["/Makefile"])[0] == "config"
    # a built-in rule keeps its own reason
    assert protected_reason("conftest.py", ["*.py"])[1].startswith("a pytest conftest.py")
    assert protected_reason("src/app.py", ["docs/**", ""]) is None


# ---- glob_matches ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("pattern, path, expected", [
    ("conftest.py", "conftest.py", True), ("conftest.py", "a/b/conftest.py", True),
    ("conftest.py", "a/conftest.py.bak", False), ("*.pth", "a/b/c.pth", True), ("*.pth", "a.pth/x", False),
    ("tests/", "tests/a.py", True), ("tests/", "a/tests/b/c.py", True), ("tests/", "tests", False),
    ("tests/", "mytests/a.py", False), (".venv/**", ".venv/bin/python", True), (".venv/**", ".venv", False),
    (".venv/**", "a/.venv/bin/python", False), ("a/*.py", "a/b.py", True), ("a/*.py", "a/b/c.py", False),
    ("a/**/c.py", "a/c.py", True), ("a/**/c.py", "a/b/d/c.py", True), ("a/**/c.py", "xa/c.py", False),
    ("**/x", "x", True), ("**/x", "p/q/x", True), ("**", "any/thing", True), ("/x.py", "x.py", True),
    ("/x.py", "a/x.py", False), ("src/x.py", "a/src/x.py", False), ("?.py", "a.py", True),
    ("?.py", "ab.py", False), ("*.test.[jt]s", "a.test.ts", True), ("*.test.[jt]s", "a.test.cs", False),
    ("x[!0-9].txt", "xa.txt", True), ("x[!0-9].txt", "x5.txt", False), ("x[0-9].txt", "x5.txt", True),
    ("a**b", "axxb", True), ("a**b", "ax/b", False), ("\\*.py", "*.py", True), ("\\*.py", "a.py", False),
    ("[.txt", "[.txt", True), ("./docs/", "docs/a", True), ("", "a", False), ("/", "a", False),
    ("a+b(c).py", "a+b(c).py", True), ("Docs/", "docs/a", False),
])
def test_glob_matches(pattern, path, expected):
    assert glob_matches(pattern, path) is expected


names = st.text(alphabet="abc._-", min_size=1, max_size=6).filter(lambda s: s not in (".", ".."))
paths = st.lists(names, min_size=1, max_size=5)


@given(paths, names)
def test_a_name_matches_the_basename_at_any_depth(segments, name):
    path = "/".join(segments)
    assert glob_matches(name, path) is (segments[-1] == name) is glob_matches("**/" + name, path)


@given(paths, st.text(alphabet="ab.*?", min_size=1, max_size=6))
def test_a_pattern_without_a_slash_is_fnmatch_on_the_basename(segments, pattern):
    assert glob_matches(pattern, "/".join(segments)) is fnmatchcase(segments[-1], pattern)


@given(paths, names)
def test_a_trailing_slash_means_everything_in_such_a_folder(segments, folder):
    path = "/".join(segments)
    assert glob_matches(folder + "/", path) is (folder in segments[:-1])
    assert glob_matches(folder + "/**", path) is (len(segments) > 1 and segments[0] == folder)


@given(paths, paths)
def test_a_path_with_a_slash_matches_only_itself_and_star_stays_in_one_folder(segments, other):
    path, pattern = "/".join(segments), "/".join(other)
    assert glob_matches("**", path)
    if len(other) > 1:
        assert glob_matches(pattern, path) is (path == pattern)
        star = "/".join(other[:-1] + ["*"])
        assert glob_matches(star, path) is (len(segments) == len(other) and segments[:-1] == other[:-1])


@given(paths, st.sampled_from(["*.py", "tests/", "a/**", "**/b", "/a", "a?"]))
def test_a_dotted_or_backslashed_path_matches_as_its_posix_form(segments, pattern):
    path = "/".join(segments)
    assert glob_matches(pattern, "./" + path.replace("/", "\\")) is glob_matches(pattern, path)


# ---- sections of shared files ------------------------------------------------------------------------------

PYPROJECT = """\
[project]
name = "demo"
version = "1.0"
dependencies = ["click", "rich"]

[tool.pytest.ini_options]
addopts = "-ra"
testpaths = ["tests"]

[tool.ruff]
line-length = 100
"""


@pytest.mark.parametrize("after", [
    PYPROJECT,
    PYPROJECT.replace('name = "demo"\nversion = "1.0"', 'version = "1.0"\nname = "demo"'),  # reordered
    PYPROJECT.replace(" = ", "=").replace('["tests"]', '[ "tests", ]') + "\n\n# a comment\n",  # reformatted
    PYPROJECT.replace('addopts = "-ra"\ntestpaths = ["tests"]', 'testpaths = ["tests"]\naddopts = "-ra"'),
    PYPROJECT.replace("[tool.pytest.ini_options]", "[tool]\npytest.ini_options = { addopts = '-ra', "
                      "testpaths = ['tests'] }\n[unused]").replace('addopts = "-ra"\ntestpaths = ["tests"]\n', ""),
    PYPROJECT.replace('"click", "rich"', '"click", "rich", "httpx"'),  # another section
    PYPROJECT.replace("line-length = 100", "line-length = 120"),
])
def test_pyproject_changes_outside_the_test_sections_or_of_formatting_only_are_not_flagged(after):
    tomllib.loads(after)
    assert changed("pyproject.toml", PYPROJECT, after) is None


@pytest.mark.parametrize("after, what", [
    (PYPROJECT.replace('"-ra"', '"-ra -k not_slow"'), "the [tool.pytest.ini_options] section"),
    (PYPROJECT.replace('addopts = "-ra"\n', ""), "the [tool.pytest.ini_options] section"),
    (PYPROJECT.replace('[tool.pytest.ini_options]\naddopts = "-ra"\ntestpaths = ["tests"]\n', ""),
     "the removed [tool.pytest.ini_options] section"),
    (PYPROJECT + "[tool.coverage.run]\nbranch = true\n", "the new [tool.coverage.run] section"),
    (PYPROJECT + "[tool.tox]\nrequires = ['tox>=4']\n", "the new [tool.tox] section"),
    (PYPROJECT + "[tool.clude.test]\ncommand = 'true'\n", "the new [tool.clude.test] section"),
    (PYPROJECT + "[tool.hatch.envs.test.scripts]\ntest = 'true'\n", "the new [tool.hatch.envs.test.scripts] section"),
    (PYPROJECT + "[tool.pytest.other]\nx = 1\n", "the new [tool.pytest.other] section"),
    (PYPROJECT + "[project.entry-points.pytest11]\nmine = 'pkg.plugin'\n",
     "the new [project.entry-points.pytest11] section"),
])
def test_pyproject_test_sections_changed_added_or_removed_are_flagged(after, what):
    change = changed("pyproject.toml", PYPROJECT, after)
    assert change == ProtectedChange("pyproject.toml", "config", f"{what} of pyproject.toml")


def test_pyproject_other_tool_tables_and_nested_files():
    assert changed("pyproject.toml", PYPROJECT, PYPROJECT + "[tool.hatch.build]\nx = 1\n") is None
    assert changed("sub/pkg/pyproject.toml", PYPROJECT, PYPROJECT.replace("-ra", "-q")).kind == "config"
    both = changed("pyproject.toml", PYPROJECT, PYPROJECT.replace("-ra", "-q") + "[tool.coverage.run]\nx=1\n")
    assert both.why == ("the [tool.pytest.ini_options] section and the new [tool.coverage.run] section "
                        "of pyproject.toml")


def test_deleting_or_adding_a_whole_file_counts_only_when_it_has_a_test_section():
    assert "removed [tool.pytest.ini_options]" in changed("pyproject.toml", PYPROJECT, None).why
    assert "new [tool.pytest.ini_options]" in changed("pyproject.toml", None, PYPROJECT).why
    plain = '[project]\nname = "demo"\n'
    assert changed("pyproject.toml", plain, None) is None
    assert changed("pyproject.toml", None, plain) is None
    assert changed("pyproject.toml", PYPROJECT, PYPROJECT) is None  # touched, content unchanged


@pytest.mark.parametrize("before, after, flagged", [
    (PYPROJECT, PYPROJECT + "[[[", "pyproject.toml is no longer valid TOML"),
    ('[project]\nname = "x"\n', '[project]\nname = "x"\n[tool.pytest.ini_options\n', "no longer valid TOML"),
    (None, "[tool.pytest.ini_options\naddopts='-x'", "no longer valid TOML"),
    (PYPROJECT + "[[[", PYPROJECT, "pyproject.toml was not valid TOML"),
    ('[project]\nname = "x"\n', '[project]\nname = "x"\n[[[\n', None),  # no test section either side
    (PYPROJECT, b"\xff\xfe" + PYPROJECT.encode(), "no longer valid TOML"),
])
def test_a_file_that_does_not_parse_counts_when_it_has_or_had_a_test_section(before, after, flagged):
    change = changed("pyproject.toml", before, after)
    if flagged is None:
        assert change is None
    else:
        assert change.kind == "config" and flagged in change.why and "[tool.pytest]" in change.why


SETUP_CFG = """\
[metadata]
name = demo

[tool:pytest]
addopts = -ra
testpaths = tests

[coverage:run]
branch = True
"""


@pytest.mark.parametrize("after", [
    SETUP_CFG.replace("-ra", "-ra -x"), SETUP_CFG.replace("branch = True", "branch = False"),
    SETUP_CFG + "\n[coverage:report]\nfail_under = 0\n", SETUP_CFG.replace("name = demo", "name = other"),
    SETUP_CFG.replace("[tool:pytest]\naddopts = -ra\ntestpaths = tests\n", ""),
    SETUP_CFG + "\n[flake8]\nmax-line-length = 100\n", SETUP_CFG + "[tool:pytest]\nx = 1\n",
])
def test_an_ini_file_that_mentions_a_test_section_is_compared_whole(after):
    """pytest reads INI files its own way, so any change of one that names a test section counts."""
    change = changed("setup.cfg", SETUP_CFG, after)
    assert change.kind == "config" and "setup.cfg, which mentions" in change.why


@pytest.mark.parametrize("after", [
    "[metadata]\nname = x\n[tool:pytest] ;]\naddopts = -p x\n",      # configparser reads 'tool:pytest] ;'
    "[metadata]\nname = x\r[tool:pytest]\raddopts = -p zz\r",         # pytest splits lines at '\r' too
])
def test_a_test_section_pytest_reads_and_configparser_does_not_is_caught(after):
    assert "mentions pytest" in changed("setup.cfg", "[metadata]\nname = x\n", after).why
    assert "mentions pytest" in changed("tox.ini", "[flake8]\nx = 1\n", after.replace("tool:", "")).why


def test_an_ini_file_without_test_sections_changes_freely():
    assert changed("setup.cfg", "[metadata]\nname = a\n", "[metadata]\nname = b\n[flake8]\nmax = 1\n") is None


TOX_INI = "[tox]\nenvlist = py311\n\n[testenv]\ncommands = pytest\n"


@pytest.mark.parametrize("old, new", [("py311", "py312"), ("commands = pytest", "commands = true")])
def test_tox_ini_is_compared_whole(old, new):
    assert "tox.ini, which mentions" in changed("tox.ini", TOX_INI, TOX_INI.replace(old, new)).why


PACKAGE = {"name": "web", "version": "1.0.0",
           "scripts": {"build": "tsc", "test": "jest", "lint": "eslint ."},
           "jest": {"testEnvironment": "node"}, "devDependencies": {"jest": "^29"}}


@pytest.mark.parametrize("edit, what", [
    (lambda p: p["scripts"].update(test="jest --passWithNoTests"), '"scripts.test" key'),
    (lambda p: p["scripts"].update(pretest="rm -rf tests"), 'the new "scripts.pretest" key'),
    (lambda p: p["scripts"].update(posttest="true"), '"scripts.posttest"'),
    (lambda p: p["scripts"].update({"test:unit": "jest unit"}), '"scripts.test:unit"'),
    (lambda p: p["scripts"].pop("test"), 'the removed "scripts.test" key'),
    (lambda p: p["jest"].update(testEnvironment="jsdom"), '"jest" key'),
    (lambda p: p.update(mocha={"spec": "x"}), '"mocha"'), (lambda p: p.update(ava={}), '"ava"'),
    (lambda p: p.update(c8={"all": True}), '"c8"'), (lambda p: p.update(nyc={}), '"nyc"'),
    (lambda p: p.update(vitest={}), '"vitest"'), (lambda p: p.update(tap={}), '"tap"'),
    (lambda p: p.update(babel={"presets": []}), '"babel"'), (lambda p: p.pop("jest"), 'removed "jest"'),
])
def test_package_json_test_keys(edit, what):
    after = json.loads(json.dumps(PACKAGE))
    edit(after)
    change = changed("package.json", json.dumps(PACKAGE), json.dumps(after, indent=2))
    assert change.kind == "config" and what in change.why and change.why.endswith("of package.json")
    assert changed("packages/web/package.json", json.dumps(PACKAGE), json.dumps(after)).kind == "config"


@pytest.mark.parametrize("edit", [
    lambda p: p["scripts"].update(build="tsc -p ."), lambda p: p.update(version="1.0.1"),
    lambda p: p["devDependencies"].update(vite="^5"), lambda p: p.update(description="x"),
])
def test_package_json_other_keys_are_not_flagged(edit):
    after = json.loads(json.dumps(PACKAGE))
    edit(after)
    assert changed("package.json", json.dumps(PACKAGE), json.dumps(after)) is None


@given(st.randoms(use_true_random=False), st.sampled_from([None, 0, 2, "\t"]))
def test_package_json_reordered_or_reformatted_is_never_flagged(rnd, indent):
    def shuffled(value):
        if not isinstance(value, dict):
            return value
        items = list(value.items())
        rnd.shuffle(items)
        return {k: shuffled(v) for k, v in items}

    assert changed("package.json", json.dumps(PACKAGE), json.dumps(shuffled(PACKAGE), indent=indent)) is None


def test_package_json_that_does_not_parse():
    assert "package.json is no longer valid JSON" in changed("package.json", json.dumps(PACKAGE),
                                                             json.dumps(PACKAGE)[:-1]).why
    assert "no longer valid JSON" in changed("package.json", json.dumps(PACKAGE), "[1, 2]").why
    assert changed("package.json", '{"name": "x"}', '{"name": "x",}') is None  # no test key either side
    # a BOM is not a change
    assert changed("package.json", json.dumps(PACKAGE), "\ufeff" + json.dumps(PACKAGE)) is None


CARGO = '[package]\nname = "demo"\nversion = "0.1.0"\n\n[lib]\nname = "demo"\n\n[dependencies]\nserde = "1"\n'


@pytest.mark.parametrize("added, what", [
    ('[[test]]\nname = "it"\nharness = false\n', "the new [[test]] tables"),
    ("[profile.test]\nopt-level = 3\n", "the new [profile.test] section"),
    ('[dev-dependencies]\nproptest = "1"\n', "the new [dev-dependencies] section"),
    ("[target.'cfg(unix)'.dev-dependencies]\nlibc = \"0.2\"\n", "[target.cfg(unix).dev-dependencies]"),
])
def test_cargo_toml_test_sections(added, what):
    change = changed("Cargo.toml", CARGO, CARGO + added)
    assert change.kind == "config" and what in change.why and change.why.endswith("of Cargo.toml")


@pytest.mark.parametrize("old, new, flagged", [
    ('[lib]\nname = "demo"\n', '[lib]\nname = "demo"\nharness = false\n', "the new lib.harness setting"),
    ('[lib]\nname = "demo"\n', '[lib]\nname = "demo"\ntest = false\n', "the new lib.test setting"),
    ('[lib]\nname = "demo"\n', '[lib]\nname = "demo"\ndoctest = false\n', "lib.doctest"),
    ('[lib]\nname = "demo"\n', '[lib]\nname = "other"\npath = "src/x.rs"\n', None),
    ('serde = "1"', 'serde = "1.0.200"', None), ('version = "0.1.0"', 'version = "0.2.0"', None),
])
def test_cargo_toml_lib_and_other_sections(old, new, flagged):
    change = changed("crates/demo/Cargo.toml", CARGO, CARGO.replace(old, new))
    assert (change is None) if flagged is None else flagged in change.why


def test_a_protected_file_in_a_tests_folder_is_a_test_whatever_its_sections():
    assert changed("tests/fixtures/pyproject.toml", PYPROJECT, PYPROJECT.replace("-ra", "-q")).kind == "test"
    assert changed("node_modules/x/package.json", "{}", "{}").kind == "config"


# ---- module shadowing --------------------------------------------------------------------------------------

@pytest.mark.parametrize("path, whose", [
    ("json.py", "the standard library module json"), ("json/__init__.py", "the standard library module json"),
    ("types.py", "the standard library module types"), ("unittest.py", "the standard library module unittest"),
    ("site.py", "the standard library module site"), ("os.pyc", "the standard library module os"),
    ("json.cpython-311-x86_64-linux-gnu.so", "the standard library module json"),
    ("pytest.py", "the test runner's module pytest"), ("_pytest/__init__.py", "the test runner's module _pytest"),
    ("pluggy/__init__.py", "the test runner's module pluggy"), ("packaging.py", "the test runner's module"),
])
def test_a_new_root_module_that_shadows_the_standard_library_or_the_runner_is_flagged(path, whose):
    change = changed(path, None, "x = 1\n")
    assert change.kind == "config" and whose in change.why
    assert change.why.startswith(f"adds {path} at the project root")


def test_the_shadowing_why_reads_as_specified():
    assert changed("json.py", None, "").why == \
        "adds json.py at the project root, which shadows the standard library module json"


@pytest.mark.parametrize("path, before, after", [
    ("src/json.py", None, "x"), ("pkg/types.py", None, "x"),  # not at the root
    ("types.py", "a = 1", "a = 2"),  # already there
    ("json.py", "x", None),  # deleted
    ("mymodule.py", None, "x"), ("json.txt", None, "x"), ("json/decoder.py", None, "x"),  # a namespace portion
    ("json.also", None, "x"),
])
def test_other_root_modules_are_not_flagged(path, before, after):
    assert changed(path, before, after) is None


# ---- conflict markers --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, lines", [
    ("a\n<<<<<<< HEAD\nours\n=======\ntheirs\n>>>>>>> branch\nb\n", [2, 4, 6]),
    ("<<<<<<<\nx\n=======\ny\n>>>>>>>\n", [1, 3, 5]),
    ("<<<<<<< ours\na\n||||||| base\nb\n=======\nc\n>>>>>>> theirs\n", [1, 3, 5, 7]),  # diff3
    ("<<<<<<< a\r\nx\r\n=======\r\ny\r\n>>>>>>> b\r\n", [1, 3, 5]),
    ("<<<<<<< a\n=======\n>>>>>>> b\n\n<<<<<<< c\nx\n=======\n>>>>>>> d", [1, 2, 3, 5, 7, 8]),
    ("Title\n=======\n\ntext\n", []),  # an RST heading underline
    ("Title\n=======\n<<<<<<< a\nx\n=======\ny\n>>>>>>> b\n", [3, 5, 7]),
    ("<<<<<<< a\nx\n=======\ny\n", []),  # never closed
    ("<<<<<<< a\nx\n>>>>>>> b\n", []),  # no separator
    ("=======\n<<<<<<< a\n>>>>>>> b\n", []),  # separator before the start
    ("<<<<<<<x\n=======\n>>>>>>> b\n", []), ("<<<<<<<< a\n=======\n>>>>>>> b\n", []),
    ("  <<<<<<< a\n=======\n>>>>>>> b\n", []), ("<<<<<<< a\n =======\n>>>>>>> b\n", []),
    ("<<<<<<< a\n=======\n>>>>>>>> b\n", []), ("<<<<<<< a\n========\n>>>>>>> b\n", []),
    ("<<<<<<< a\nx\n<<<<<<< c\n=======\n>>>>>>> d\n", [3, 4, 5]),  # an unclosed start gives way
    ("<<<<<<< a\n=======\nx\n=======\n>>>>>>> b\n", [1, 2, 5]),
    ("", []),
])
def test_conflict_markers(text, lines):
    assert conflict_markers(text) == lines


plain_lines = st.lists(st.text(alphabet="<=>|ab \t\r", max_size=10).filter(lambda s: "\n" not in s), max_size=12)


@given(plain_lines)
def test_text_without_a_start_marker_has_no_markers(lines):
    lines = [line for line in lines if not line.startswith("<<<<<<<")]
    assert conflict_markers("\n".join(lines)) == []


@given(plain_lines, plain_lines, st.integers(min_value=0, max_value=12))
def test_a_conflict_block_is_found_in_any_text_around_it(ours, theirs, at):
    body = [line for line in ours + theirs if not line.startswith(("<<<<<<<", "=======", ">>>>>>>", "|||||||"))]
    at = min(at, len(body))
    text = body[:at] + ["<<<<<<< HEAD", "ours", "=======", "theirs", ">>>>>>> other"] + body[at:]
    assert conflict_markers("\n".join(text)) == [at + 1, at + 3, at + 5]


# ---- the data file -----------------------------------------------------------------------------------------

def test_each_framework_is_its_own_table_of_well_formed_rules():
    data = tomllib.loads(DATA.read_text(encoding="utf-8"))
    assert data.pop("shadowing")["modules"]
    assert {"pytest", "jest", "vitest", "go", "cargo", "npm", "clude"} <= data.keys()
    for framework, tables in data.items():
        assert tables.keys() <= {"files", "sections"}, framework
        for rule in tables.get("files", ()):
            assert rule["kind"] in ("test", "config") and rule["why"] and rule["globs"], framework
            for glob in rule["globs"]:  # each glob protects something: a path made from it
                sample = glob.replace("*", "x").replace("[jt]", "j").replace("[cm]", "m")
                assert protected_reason(sample + "x" if sample.endswith("/") else sample), glob
        for rule in tables.get("sections", ()):
            assert rule["format"] in ("toml", "ini", "json") and rule["keys"], framework
