"""tape and mocha, the real ones from npm (installed once into tests/.cache/js-runners): found through a
project's compound test scripts, run alone, counted as the runners count, failures located."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from clude.config import TestConfig
from clude.harness import Status, run_tests
from clude.harness.runner import explain
from conftest import project_env, write_files

RUNNERS = {"tape": "5.9.0", "mocha": "10.8.2"}
CACHE = Path(__file__).parent / ".cache" / "js-runners"


@pytest.fixture(scope="session")
def runners_bin() -> Path:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.skip("node and npm are needed to install tape and mocha")
    bin_dir = CACHE / "node_modules" / ".bin"
    if not all((bin_dir / name).exists() for name in RUNNERS):
        CACHE.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix", str(CACHE),
                               *(f"{n}@{v}" for n, v in RUNNERS.items())],
                              capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            pytest.skip(f"npm install of tape and mocha failed (no registry?): {done.stderr[-500:]}")
    return bin_dir


def _env(bin_dir: Path) -> dict[str, str]:
    env = project_env()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return env


def _package(scripts: dict[str, str]) -> str:
    return json.dumps({"name": "p", "version": "1.0.0", "scripts": scripts})


TAPE_TEST = """var test = require('tape');
var add = require('../add');

test('adds small numbers', function (t) {
    t.equal(add(1, 1), 2);
    t.equal(add(2, 2), 5);
    t.end();
});

test('adds nothing', function (t) {
    t.equal(add(0, 0), 0);
    t.skip('not yet');
    t.end();
});
"""

MOCHA_TEST = """const assert = require('assert');
const add = require('../add');

describe('add', function () {
  it('adds', function () {
    assert.strictEqual(add(1, 1), 2);
  });
  it('adds', function () {
    assert.strictEqual(add(2, 2), 5);
  });
  it.skip('later', function () {});
});
"""


def test_tape_behind_npm_run_and_nyc_is_found_run_alone_and_counted_by_assertion(tmp_path, runners_bin):
    """`npm test` runs a lint step, then `npm run tests-only`, which runs `nyc tape 'test/**/*.js'`: the
    tape step is found, run alone (no lint, no nyc), and its assertions counted as tape counts them."""
    tape = runners_bin.parent.parent  # tape resolves `require('tape')` from the cache's node_modules
    write_files(tmp_path, {
        "package.json": _package({"pretest": "eslint .", "test": "npm run lint && npm run tests-only",
                                  "lint": "eslint .", "tests-only": "nyc tape 'test/**/*.js'"}),
        "add.js": "module.exports = function (a, b) { return a + b; };\n",
        "test/add.js": TAPE_TEST})
    env = {**_env(runners_bin), "NODE_PATH": str(tape / "node_modules")}
    found, said = explain(tmp_path, TestConfig(), None, env)
    assert found and said[1] == "framework: tape", said
    assert "runs `tape test/**/*.js`" in said[3], said
    verdict = run_tests(tmp_path, TestConfig(timeout=120), env=env, use_cache=False)
    assert verdict.status is Status.FAILED, verdict.public()
    assert (verdict.counts.passed, verdict.counts.failed, verdict.counts.skipped) == (2, 1, 1)
    (failure,) = verdict.failures
    assert failure.id == "adds small numbers :: should be strictly equal #2"
    assert (failure.file, failure.line) == ("test/add.js", 6)
    assert failure.reason == "should be strictly equal: expected 5, got 4"


def test_mocha_is_run_with_its_tap_reporter_and_each_same_named_test_counted(tmp_path, runners_bin):
    """A spec reporter in the script is replaced by TAP; two tests of one suite that share a title are
    two tests; the failure is located at its assertion."""
    write_files(tmp_path, {
        "package.json": _package({"test": "mocha --reporter spec 'test/*.js'"}),
        "add.js": "module.exports = (a, b) => a + b;\n",
        "test/add.js": MOCHA_TEST})
    env = _env(runners_bin)
    verdict = run_tests(tmp_path, TestConfig(timeout=120), env=env, use_cache=False)
    assert verdict.framework == "mocha" and verdict.status is Status.FAILED, verdict.public()
    assert (verdict.counts.passed, verdict.counts.failed, verdict.counts.skipped) == (1, 1, 1)
    (failure,) = verdict.failures
    assert failure.id == "add adds #2" and (failure.file, failure.line) == ("test/add.js", 9)
    assert failure.reason.startswith("AssertionError"), failure.reason
    passing = run_tests(tmp_path, TestConfig(timeout=120), command=["npx", "mocha", "-R", "dot", "test/add.js",
                                                                    "--grep", "later|adds$"],
                        env=env, use_cache=False)
    assert passing.framework == "mocha" and passing.counts.total == 3, passing.public()
