"""The `node --test` adapter: sampling by file, detection, command handling and huge output, on real node."""

from __future__ import annotations

import json
import shutil

import pytest

from clude.config import TestConfig
from clude.harness import Status, run_tests
from clude.harness.frameworks import by_name, detect, for_command
from clude.harness.frameworks.node import is_node_test_file, node_test_files, runs_node_test, split_argv
from clude.harness.inject.clude_sample import sample
from conftest import project_env, write_files

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def _test_file(name: str) -> str:
    return (f"const test = require('node:test');\ntest('{name} a', () => {{}});\n"
            f"test('{name} b', () => {{}});\n")


@needs_node
def test_sampling_picks_the_same_files_on_every_run(copy_project):
    project = copy_project("node/fast-sample")
    runs = [run_tests(project, TestConfig(timeout=60), command=["node", "--test"], rate=0.5,
                      seed="s", use_cache=False, env=project_env()) for _ in range(2)]
    first, second = runs
    assert first.status.value == "passed" and first.sample is not None
    assert first.outcomes == second.outcomes and first.sample == second.sample
    files = node_test_files(project, [])
    chosen = sample(files, "s", 0.5)
    assert first.sample.of == len(files) == 8 and first.sample.selected == len(chosen)
    assert 0 < len(chosen) < len(files)
    ran = {test_id.split("::")[0] for test_id in first.outcomes}
    assert ran == set(chosen)
    assert first.counts.passed == 2 * len(chosen)
    other = run_tests(project, TestConfig(timeout=60), command=["node", "--test"], rate=0.5,
                      seed="another seed", use_cache=False, env=project_env())
    assert {t.split("::")[0] for t in other.outcomes} == set(sample(files, "another seed", 0.5))


@needs_node
def test_sampling_a_package_script_with_a_directory(tmp_path):
    files = {f"spec/unit/part{i}.test.js": _test_file(f"part {i}") for i in range(6)}
    files["spec/unit/helper.js"] = "module.exports = 1;\n"
    files["package.json"] = json.dumps({"scripts": {"test": "node --test spec/"}})
    project = write_files(tmp_path / "p", files)
    verdict = run_tests(project, TestConfig(timeout=60), rate=0.5, seed="x", use_cache=False,
                        env=project_env())
    assert verdict.framework == "node" and verdict.command == ["npm", "test"]
    assert verdict.sample is not None and verdict.sample.of == 6
    assert verdict.counts.passed == 2 * verdict.sample.selected
    assert verdict.status.value == "passed"


@needs_node
def test_huge_output_and_a_huge_error_message(tmp_path):
    project = write_files(tmp_path / "p", {"test/big.test.js": (
        "const test = require('node:test');\n"
        "test('chatty', () => { for (let i = 0; i < 5000; i++) console.log('line ' + i); });\n"
        "test('huge message', () => {\n"
        "  throw new Error('start of a very long message ' + 'y'.repeat(1000000));\n"
        "});\n")})
    verdict = run_tests(project, TestConfig(timeout=60), command=["node", "--test"],
                        use_cache=False, env=project_env())
    assert verdict.status.value == "failed" and verdict.counts.passed == 1
    [failure] = verdict.failures
    assert failure.file == "test/big.test.js" and failure.line == 4
    assert failure.reason.startswith("Error: start of a very long message") or \
        failure.reason.startswith("start of a very long message")
    assert len(failure.reason) <= 300


@needs_node
def test_a_missing_esm_import_is_a_collection_error(tmp_path):
    project = write_files(tmp_path / "p", {
        "test/esm.test.mjs": "import test from 'node:test';\nimport { x } from './gone.mjs';\n"
                             "test('x', () => {});\n",
        "test/ok.test.mjs": "import test from 'node:test';\ntest('fine', () => {});\n"})
    verdict = run_tests(project, TestConfig(timeout=60), command=["node", "--test"],
                        use_cache=False, env=project_env())
    assert verdict.status.value == "error", verdict.public()
    assert "collection error in test/esm.test.mjs" in verdict.reason
    assert "Cannot find module" in verdict.reason and str(project) not in verdict.reason
    assert verdict.counts.passed == 1


def test_default_test_file_patterns():
    yes = ["a.test.js", "src/b.test.mjs", "c-test.cjs", "d_test.js", "test-e.js", "test.js",
           "test/helper.js", "pkg/test/deep/f.mjs"]
    no = ["a.js", "src/index.mjs", "testing/a.js", "a.test.ts", "README.md", "latest.js"]
    assert all(is_node_test_file(f) for f in yes)
    assert not any(is_node_test_file(f) for f in no)


def test_split_argv_drops_reporters_and_keeps_option_values():
    options, files = split_argv(["node", "--test", "--test-reporter", "dot", "--require", "./setup.js",
                                 "--test-reporter-destination=stdout", "--test-name-pattern=x",
                                 "test/a.test.js", "test/b.test.js"])
    assert options == ["node", "--test", "--require", "./setup.js", "--test-name-pattern=x"]
    assert files == ["test/a.test.js", "test/b.test.js"]


def test_detection_and_recognition(tmp_path):
    env = project_env()
    script = write_files(tmp_path / "script", {"package.json": json.dumps(
        {"scripts": {"test": "node --test --test-concurrency=1"}})})
    assert detect(script, env)[0].name == "node"
    assert for_command(["npm", "test"], script, env).name == "node"
    assert for_command(["npm", "run", "test", "--", "x"], script, env).name == "node"
    bare = write_files(tmp_path / "bare", {"test/a.test.js": _test_file("a")})
    assert detect(bare, env) == (by_name("node"), ["node", "--test"])
    placeholder = write_files(tmp_path / "placeholder", {
        "package.json": json.dumps({"scripts": {"test": "echo \"Error: no test specified\" && exit 1"}}),
        "x.test.mjs": "import { test } from 'node:test';\n"})
    assert detect(placeholder, env)[0].name == "node"
    other = write_files(tmp_path / "other", {"package.json": json.dumps({"scripts": {"test": "ava"}}),
                                        "a.test.js": "require('node:test')\n"})
    assert detect(other, env) is None  # the script runs another runner: node's file names do not count
    assert for_command(["node", "--test", "x.js"], other, env).name == "node"
    assert for_command(["node", "x.js"], other, env).name == "generic"


@pytest.mark.parametrize("script, steps", [
    ("eslint . && c8 --reporter=lcov node --test test/", [["eslint", "."], ["node", "--test", "test/"]]),
    ("cross-env NODE_ENV=test nyc node --test", [["node", "--test"]]),
    ("tsc -p . ; NODE_ENV=test jest --ci || exit 1", [["tsc", "-p", "."], ["jest", "--ci"], ["exit", "1"]]),
    ("npm run lint && npx vitest run", [["npm", "run", "lint"], ["vitest", "run"]]),
])
def test_a_compound_script_is_split_into_its_commands(script, steps):
    from clude.harness.frameworks.npm import script_steps
    assert script_steps(script) == steps


def test_a_compound_test_script_is_detected_by_its_test_step(tmp_path):
    env = project_env()
    project = write_files(tmp_path / "p", {"package.json": json.dumps(
        {"scripts": {"test": "eslint . && c8 --reporter=lcov node --test test/"}})})
    assert detect(project, env) == (by_name("node"), ["npm", "test"])
    assert for_command(["npm", "test"], project, env).name == "node"
    assert by_name("node").evidence(project, env) == [
        "package.json's test script runs `node --test test/`: 'eslint . && c8 --reporter=lcov node --test test/'"]
    jest = write_files(tmp_path / "j", {"package.json": json.dumps({"scripts": {"test": "tsc && jest --ci"}})})
    assert detect(jest, env)[0].name == "jest"


@needs_node
def test_a_compound_test_script_is_run_and_read_whole(tmp_path):
    """A lint step, then node --test: the verdict counts node's tests, through the script as written."""
    project = write_files(tmp_path / "p", {
        "package.json": json.dumps({"scripts": {"test": "node -e \"console.log('lint ok')\" && node --test"}}),
        "test/a.test.js": _test_file("a") + "test('a c', () => { throw new Error('broken'); });\n"})
    verdict = run_tests(project, TestConfig(timeout=60), use_cache=False, env=project_env())
    assert verdict.framework == "node" and verdict.command == ["npm", "test"]
    assert (verdict.status.value, verdict.counts.passed, verdict.counts.failed) == ("failed", 2, 1), verdict.public()
    assert "lint ok" in (project / verdict.report_path).read_text()


@needs_node
def test_tests_that_share_a_name_in_one_file_each_count(tmp_path):
    project = write_files(tmp_path / "p", {"test/a.test.js": (
        "const test = require('node:test');\n"
        "test('same', () => {});\ntest('same', () => {});\ntest('same', () => { throw new Error('third'); });\n")})
    verdict = run_tests(project, TestConfig(timeout=60), use_cache=False, env=project_env())
    assert (verdict.counts.passed, verdict.counts.failed) == (2, 1), verdict.public()
    assert verdict.outcomes == {"test/a.test.js::same": "passed", "test/a.test.js::same #2": "passed",
                                "test/a.test.js::same #3": "failed"}
    assert [(f.id, f.line) for f in verdict.failures] == [("test/a.test.js::same #3", 4)]


def test_a_test_script_that_runs_other_scripts_is_followed_to_its_test_step(tmp_path):
    """@fastify/error's shape: `npm test` runs `npm run test:unit && npm run test:typescript`, and
    test:unit runs `c8 --100 node --test`; `npm run test:unit` given as the command is node's too."""
    env = project_env()
    project = write_files(tmp_path / "p", {"package.json": json.dumps({"scripts": {
        "test": "npm run test:unit && npm run test:typescript", "test:unit": "c8 --100 node --test",
        "test:typescript": "tstyche", "loop": "npm run loop"}})})
    assert detect(project, env) == (by_name("node"), ["npm", "test"])
    assert by_name("node").evidence(project, env) == [
        "package.json's test script runs `node --test`: 'npm run test:unit && npm run test:typescript'"]
    assert for_command(["npm", "run", "test:unit"], project, env).name == "node"
    assert for_command(["yarn", "test:unit"], project, env).name == "node"
    from clude.harness.frameworks.npm import package_scripts, script_steps
    scripts = package_scripts(project)
    assert script_steps("npm run loop", scripts) == [["npm", "run", "loop"]]  # followed a few levels, no further


def test_a_scripts_test_step_runs_after_what_builds_and_without_checkers_or_what_follows(tmp_path):
    """`npm test` = lint, build, test, type check: the run is the build then the test step (its
    variables kept, its coverage wrapper dropped); a step only a shell understands is not taken apart."""
    from clude.harness.frameworks.npm import test_step
    project = write_files(tmp_path / "p", {"package.json": json.dumps({"scripts": {
        "test": "npm run lint && npm run build && NODE_ENV=test c8 node --test dist/ && tstyche",
        "lint": "eslint . && prettier --check .", "build": "rimraf dist && tsc -p .",
        "odd": "node --test $(ls test)"}})})
    step = test_step("npm test", project, runs_node_test)
    assert step is not None and step.words == ["node", "--test", "dist/"] and step.env == {"NODE_ENV": "test"}
    assert step.before == ("rimraf dist", "tsc -p .")
    assert step.argv(["node", "--test", "x"]) == ["sh", "-c", "rimraf dist && tsc -p . && node --test x"]
    assert test_step("npm run odd", project, runs_node_test) is None
    alone = test_step("eslint . && node --test", project, runs_node_test)
    assert alone is not None and alone.before == () and alone.argv(["node", "--test"]) == ["node", "--test"]


def test_a_build_step_before_node_test_runs_first_and_a_type_check_after_it_does_not(tmp_path):
    """The tests need what the build makes; tstyche after them is not run (it is not installed here,
    and would fail the run if it were started)."""
    project = write_files(tmp_path / "p", {
        "package.json": json.dumps({"scripts": {"build": "node build.js",
                                                "test": "npm run build && node --test && tstyche"}}),
        "build.js": "const fs = require('fs');\nfs.mkdirSync('dist', {recursive: true});\n"
                    "fs.writeFileSync('dist/x.test.js', \"require('node:test')('built', () => {});\\n\");\n"})
    verdict = run_tests(project, TestConfig(timeout=60), env=project_env(), use_cache=False)
    assert verdict.status is Status.PASSED and verdict.counts.passed == 1, verdict.public()
    assert list(verdict.outcomes) == ["dist/x.test.js::built"]
