"""jest and vitest adapters on small real projects, with the runners installed once into tests/.cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from clude.config import TestConfig
from clude.harness import run_tests
from clude.harness.inject.clude_sample import sample
from conftest import project_env, write_files

VERSIONS = {"jest": "29.7.0", "vitest": "2.1.9"}
CACHE = Path(__file__).parent / ".cache" / ("js-runners-" + "-".join(
    f"{k}{v}" for k, v in sorted(VERSIONS.items())))


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """node_modules holding the pinned jest and vitest, installed once (reused across sessions)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed")
    done = CACHE / "node_modules"
    if (done / ".bin" / "jest").exists() and (done / ".bin" / "vitest").exists():
        return done
    work = CACHE.with_name(CACHE.name + f".tmp{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "package.json").write_text(json.dumps({"name": "clude-js-runners", "private": True}))
    cmd = ["npm", "install", "--no-audit", "--no-fund", "--no-save", "--loglevel=error"] + [
        f"{name}@{version}" for name, version in VERSIONS.items()]
    try:
        proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        proc = None
    if proc is None or proc.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        why = "timed out" if proc is None else (proc.stderr.strip().splitlines() or ["?"])[-1]
        pytest.skip(f"cannot install jest and vitest with npm ({why})")
    shutil.rmtree(CACHE, ignore_errors=True)
    work.rename(CACHE)
    return done


def _project(root: Path, node_modules: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    (root / "node_modules").symlink_to(node_modules, target_is_directory=True)
    return write_files(root, files)


def _run(project: Path, **kw):
    return run_tests(project, TestConfig(timeout=120), use_cache=False, env=project_env(), **kw)


MATH_TESTS = """\
describe('add', () => {
  test('small numbers', () => {
    expect(add(1, 2)).toBe(3);
  });
  test('is wrong on purpose', () => {
    expect(add(2, 2)).toBe(5);
  });
  test.skip('skipped', () => {});
  test.todo('negative numbers');
});

test('throws from the code under test', () => {
  add(null, 1);
});
"""
JEST_MATH = "const { add } = require('../src/add');\n\n" + MATH_TESTS
ADD_CJS = "exports.add = (a, b) => {\n  if (a === null) throw new TypeError('a is null');\n  return a + b;\n};\n"


def test_jest_passing_failing_and_a_broken_file(tmp_path, node_modules):
    project = _project(tmp_path / "jest", node_modules, {
        "package.json": json.dumps({"name": "j", "private": True, "scripts": {"test": "jest"}}),
        "src/add.js": ADD_CJS,
        "test/math.test.js": JEST_MATH,
        "test/broken.test.js": "const gone = require('./gone');\ntest('never', () => {});\n"})
    verdict = _run(project)
    shown = json.dumps(verdict.public(), indent=1)
    assert verdict.framework == "jest" and verdict.command == ["npm", "test"], shown
    assert verdict.status.value == "error", shown
    assert "collection error in test/broken.test.js" in verdict.reason, shown
    assert "Cannot find module './gone'" in verdict.reason, shown
    c = verdict.counts
    assert (c.passed, c.failed, c.errors, c.skipped) == (1, 2, 1, 2), shown
    by_id = {f.id: f for f in verdict.failures}
    wrong = by_id["test/math.test.js::add::is wrong on purpose"]
    assert (wrong.file, wrong.line, wrong.kind) == ("test/math.test.js", 8, "failure")
    assert "expect(received).toBe(expected)" in wrong.reason and "Expected: 5" in wrong.reason
    thrown = by_id["test/math.test.js::throws from the code under test"]
    assert (thrown.file, thrown.line) == ("test/math.test.js", 15)
    assert thrown.reason == "TypeError: a is null"
    broken = by_id["test/broken.test.js"]
    assert (broken.file, broken.line, broken.kind) == ("test/broken.test.js", 1, "error")
    assert verdict.outcomes["test/math.test.js::add::negative numbers"] == "skipped"


def test_jest_all_pass_and_sampling_by_file(tmp_path, node_modules):
    files = {f"__tests__/part{i}.js": f"test('part {i}', () => {{ expect({i}).toBe({i}); }});\n"
             for i in range(6)}
    files["package.json"] = json.dumps({"name": "j", "private": True, "scripts": {"test": "jest"}})
    project = _project(tmp_path / "jest-pass", node_modules, files)
    whole = _run(project)
    assert whole.status.value == "passed" and whole.counts.passed == 6, whole.public()
    sampled = _run(project, rate=0.5, seed="s")
    chosen = sample(sorted(f for f in files if f.endswith(".js")), "s", 0.5)
    assert sampled.sample is not None and (sampled.sample.selected, sampled.sample.of) == \
        (len(chosen), 6)
    assert {t.split("::")[0] for t in sampled.outcomes} == set(chosen), sampled.public()


VITEST_MATH = ("import { describe, test, expect } from 'vitest';\n"
               "import { add } from '../src/add.js';\n\n" + MATH_TESTS)
ADD_ESM = "export function add(a, b) {\n  if (a === null) throw new TypeError('a is null');\n  return a + b;\n}\n"


def test_vitest_passing_failing_and_a_broken_file(tmp_path, node_modules):
    project = _project(tmp_path / "vitest", node_modules, {
        "package.json": json.dumps({"name": "v", "private": True, "type": "module",
                                    "scripts": {"test": "vitest"}}),
        "src/add.js": ADD_ESM,
        "test/math.test.js": VITEST_MATH,
        "test/broken.test.js": "import { gone } from './gone.js';\nimport { test } from 'vitest';\n"
                               "test('never', () => gone());\n"})
    verdict = _run(project)
    shown = json.dumps(verdict.public(), indent=1)
    assert verdict.framework == "vitest", shown
    assert verdict.status.value == "error", shown
    assert "collection error in test/broken.test.js" in verdict.reason, shown
    c = verdict.counts
    assert (c.passed, c.failed, c.errors, c.skipped) == (1, 2, 1, 2), shown
    by_id = {f.id: f for f in verdict.failures}
    wrong = by_id["test/math.test.js::add::is wrong on purpose"]
    assert (wrong.file, wrong.line, wrong.kind) == ("test/math.test.js", 9, "failure"), shown
    assert "expected 4 to be 5" in wrong.reason, shown
    thrown = by_id["test/math.test.js::throws from the code under test"]
    assert (thrown.file, thrown.line) == ("test/math.test.js", 16), shown
    assert thrown.reason == "TypeError: a is null", shown
    assert by_id["test/broken.test.js"].file == "test/broken.test.js"


def test_vitest_all_pass(tmp_path, node_modules):
    project = _project(tmp_path / "vitest-pass", node_modules, {
        "package.json": json.dumps({"name": "v", "private": True, "type": "module",
                                    "scripts": {"test": "vitest run"}}),
        "a.test.js": "import { test, expect } from 'vitest';\n"
                     "test.each([1, 2, 3])('square %i', (n) => { expect(n * n).toBeGreaterThan(0); });\n"})
    verdict = _run(project)
    assert verdict.status.value == "passed" and verdict.counts.passed == 3, verdict.public()
    assert "a.test.js::square 2" in verdict.outcomes
