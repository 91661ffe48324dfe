"""clude's own rewrites of a project's test modules (harness/rewrites.py): made once per machine, outside
the sandbox, and what the sandboxed run executes; nothing a test run writes, and no entry that does not
match its source, ever judges a run."""

from __future__ import annotations

import hashlib
import os
import importlib.util
import marshal
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _pytest.assertion.rewrite import PYC_TAIL

from clude.harness.cache import machine_cache
from clude.harness.rewrites import hooked, prime
from clude.harness.runner import run_tests
from clude.sandbox import Sandbox, problem
from conftest import project_env

TESTS = "import calc\n\n" + "".join(f"def test_{n:03d}():\n    assert calc.double({n}) == {2 * n}\n\n\n"
                                    for n in range(150))


@pytest.fixture(scope="module", autouse=True)
def bubblewrap():
    assert problem() is None, f"these tests need bubblewrap (make test installs it): {problem()}"


def project(root: Path, *, calc: str = "def double(x):\n    return 2 * x\n", ini: str = "") -> Path:
    (root / "tests").mkdir(parents=True)
    (root / "calc.py").write_text(calc)
    (root / "tests" / "test_calc.py").write_text(TESTS)
    (root / "tests" / "conftest.py").write_text("import pathlib, sys\n\n"
                                                "sys.path.insert(0, str(pathlib.Path(__file__).parents[1]))\n")
    (root / "pytest.ini").write_text("[pytest]\n" + ini)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    return root


def run(root: Path, *args: str):
    """A sandboxed run with clude's own interpreter and pytest (another pytest's files are named otherwise)."""
    return run_tests(root, command=[sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                     use_cache=False, env=project_env(PYTEST_DISABLE_PLUGIN_AUTOLOAD="1"),
                     sandbox=Sandbox(enabled=True, program="bwrap"))


def entries() -> list[Path]:
    return sorted((machine_cache() / "rewrites").rglob("*.pyc"))


def entry_for(source: Path) -> Path:
    return machine_cache() / "rewrites" / PYC_TAIL.strip(".").removesuffix(".pyc") / (
        hashlib.sha256(source.read_bytes()).hexdigest() + ".pyc")


def test_a_test_module_is_rewritten_once_per_machine_and_that_rewrite_is_what_the_run_loads(tmp_path):
    first = project(tmp_path / "one")
    assert run(first).status == "passed"
    made = entries()
    assert [p.name for p in made] == sorted(hashlib.sha256((first / "tests" / n).read_bytes()).hexdigest() + ".pyc"
                                            for n in ("conftest.py", "test_calc.py"))
    placed = first / "tests" / "__pycache__" / ("test_calc" + PYC_TAIL)
    assert placed.read_bytes() == entry_for(first / "tests" / "test_calc.py").read_bytes()
    kept = {p: p.stat().st_mtime_ns for p in made}

    second = tmp_path / "two"  # another tree with the same modules: answered from the cache
    shutil.copytree(first, second, ignore=shutil.ignore_patterns("__pycache__", ".clude"))
    (second / "calc.py").write_text("def double(x):\n    return 2 * x + (x == 7)\n")
    verdict = run(second)
    assert {p: p.stat().st_mtime_ns for p in entries()} == kept
    assert verdict.status == "failed" and [f.id for f in verdict.failures] == ["tests/test_calc.py::test_007"]
    where = verdict.failures[0]
    assert (where.file, where.line) == ("tests/test_calc.py", 32)  # this tree's file, its rewritten assert
    assert "assert 15 == 14" in where.reason


def test_the_run_executes_the_cached_entry_and_never_one_that_does_not_match_its_source(tmp_path):
    root = project(tmp_path / "p", calc="def double(x):\n    return -1\n")  # every test fails
    source = root / "tests" / "test_calc.py"
    entry = entry_for(source)
    entry.parent.mkdir(parents=True)
    green = compile("def test_000():\n    pass\n", str(source), "exec")
    header = importlib.util.MAGIC_NUMBER + b"\x03\x00\x00\x00"
    entry.write_bytes(header + importlib.util.source_hash(source.read_bytes()) + marshal.dumps(green))
    verdict = run(root)  # the machine's cache is clude's own: what it holds is run
    assert verdict.status == "passed" and verdict.counts.passed == 1

    entry.write_bytes(header + importlib.util.source_hash(b"other source") + marshal.dumps(green))
    verdict = run(root)  # an entry whose hash is not the source's: pytest rewrites the module itself
    assert verdict.status == "failed" and verdict.counts.failed == 150


def test_a_test_run_cannot_reach_the_machines_rewrites(tmp_path):
    root = project(tmp_path / "p")
    assert run(root).status == "passed"
    store = entry_for(root / "tests" / "test_calc.py").parent
    (root / "tests" / "test_poison.py").write_text(f'''
import os, pathlib
def test_poison():
    store = pathlib.Path({str(store)!r})
    try:
        for entry in store.glob("*.pyc"):
            entry.write_bytes(b"poison")
        store.mkdir(parents=True, exist_ok=True)
        (store / ("0" * 64 + ".pyc")).write_bytes(b"poison")
    except OSError:
        pass
''')
    assert run(root).status == "passed"
    assert all(p.read_bytes()[:4] == importlib.util.MAGIC_NUMBER for p in entries())
    assert not (store / ("0" * 64 + ".pyc")).exists()


def test_modules_out_of_the_tree_or_rewritten_otherwise_are_left_to_pytest(tmp_path):
    outside = tmp_path / "outside_test.py"
    outside.write_text("def test_outside():\n    assert True\n")
    root = project(tmp_path / "p")
    (root / "tests" / "test_link.py").symlink_to(outside)
    assert run(root).status == "passed"
    assert hashlib.sha256(outside.read_bytes()).hexdigest() + ".pyc" not in [p.name for p in entries()]
    assert not (tmp_path / "__pycache__").exists()

    hooked = project(tmp_path / "hooked", ini="enable_assertion_pass_hook = true\n")
    before = entries()
    assert run(hooked).status == "passed"
    assert entries() == before and not (hooked / "tests" / "__pycache__").exists()


def test_a_module_whose_rewrite_takes_too_long_is_left_to_pytest_and_never_tried_again(tmp_path):
    """pytest's rewrite of one long `assert a and b and ...` grows with the square of its terms: a hostile
    module must not hold the worker that rewrites it outside the sandbox."""
    root = project(tmp_path / "p")
    slow = root / "tests" / "test_a_slow.py"  # listed before test_calc.py: the child goes on after it
    slow.write_text("def test_slow():\n    x = 1\n    assert " + " and ".join(["x == 1"] * 800) + "\n")  # 1.7 s
    files = ["calc.py", "tests/conftest.py", "tests/test_a_slow.py", "tests/test_calc.py"]
    started = time.monotonic()
    assert prime(root, files, machine_cache() / "rewrites", per_module_s=0.3) == 2
    assert time.monotonic() - started < 3
    skip = entry_for(slow).with_suffix(".skip")
    assert skip.exists() and not entry_for(slow).exists() and not list(entry_for(slow).parent.glob("*.busy"))
    assert (root / "tests" / "__pycache__" / ("test_calc" + PYC_TAIL)).exists()
    marked = skip.stat().st_mtime_ns
    assert prime(root, files, machine_cache() / "rewrites", per_module_s=0.3) == 2
    assert skip.stat().st_mtime_ns == marked  # not tried again
    verdict = run(root)
    assert verdict.status == "passed" and verdict.counts.passed == 151


SLOW = "def test_slow():\n    x = 1\n    assert " + " and ".join(["x == 1"] * 800) + "\n"  # 1.7 s to rewrite


def test_the_rewrites_of_a_run_have_a_budget_and_one_cut_short_is_tried_again_later(tmp_path):
    root = project(tmp_path / "p")
    for name in ("test_a_slow.py", "test_b_slow.py"):
        (root / "tests" / name).write_text(SLOW.replace("test_slow", name[:-3]))
    files = ["tests/test_a_slow.py", "tests/test_b_slow.py", "tests/test_calc.py"]
    started = time.monotonic()
    prime(root, files, machine_cache() / "rewrites", budget_s=0.5)
    assert time.monotonic() - started < 1.5
    store = entry_for(root / "tests" / "test_calc.py").parent
    assert not list(store.glob("*.skip")) and not list(store.glob("*.busy"))  # not too slow: cut short
    assert prime(root, files, machine_cache() / "rewrites") == 3  # a later run with time makes them


def test_a_module_whose_rewrite_warns_is_left_to_pytest(tmp_path):
    root = project(tmp_path / "p", ini="filterwarnings =\n    error\n")
    (root / "tests" / "test_tuple.py").write_text("def test_tuple():\n    assert (1 + 1 == 3, 'three')\n")
    verdict = run(root)  # pytest warns while it rewrites ("always true"), an error here
    assert verdict.status == "error" and "PytestAssertRewriteWarning" in verdict.reason
    assert entry_for(root / "tests" / "test_tuple.py").with_suffix(".skip").exists()


@pytest.mark.parametrize("where, text, words", [
    ("pytest.toml", "[pytest]\nenable_assertion_pass_hook = true\n", []),
    (".pytest.toml", "[pytest]\nenable_assertion_pass_hook = true\n", []),
    ("pyproject.toml", '[tool.pytest.ini_options]\n"enable_assertion\\u005fpass_hook" = true\n', []),
    ("tests/pytest.ini", "[pytest]\nenable_assertion_pass_hook = true\n", []),
    ("setup.cfg", "[tool:pytest]\nenable_assertion_pass_hook = true\n", []),
    ("pyproject.toml", "[tool.pytest.ini_options\n", []),  # does not parse: pytest's reading is not known
    ("pytest.ini", "[pytest]\n", ["-o", "enable_assertion_pass_hook=true"]),
    ("pytest.ini", "[pytest]\n", ["-c", "other.ini"]),
    ("pytest.ini", "[pytest]\n", ["--config-file=other.ini"]),
])
def test_the_assertion_pass_hook_set_anywhere_leaves_the_rewrite_to_pytest(tmp_path, where, text, words):
    (tmp_path / where).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / where).write_text(text)
    assert hooked(tmp_path, [where], words)
    (tmp_path / where).write_text(text.replace("enable_assertion", "other"))
    assert hooked(tmp_path, [where], []) == (where == "pyproject.toml" and "ini_options\n" in text)


def test_a_configuration_file_that_is_a_fifo_or_a_link_is_never_read(tmp_path):
    os.mkfifo(tmp_path / "pytest.ini")  # opening it would block the worker
    (tmp_path / "setup.cfg").symlink_to("/dev/zero")  # reading it would fill the memory
    assert hooked(tmp_path, ["pytest.ini"], []) and hooked(tmp_path, ["setup.cfg"], [])
    assert not hooked(tmp_path, ["tox.ini"], [])  # absent


def test_a_pycache_linked_to_forged_bytecode_never_judges_a_run(tmp_path):
    """The agent's tree breaks calc.py and links tests/__pycache__ to a folder of its own holding a
    forged file under the rewrite's name (checked-hash header of the unchanged test module, code that
    passes), itself a link to a file not named .pyc: both links go with the scrub."""
    root = project(tmp_path / "p", calc="def double(x):\n    return -1\n")
    source = (root / "tests" / "test_calc.py").read_bytes()
    green = compile("def test_000():\n    pass\n", str(root / "tests" / "test_calc.py"), "exec")
    (root / "assets").mkdir()
    (root / "assets" / "blob.dat").write_bytes(importlib.util.MAGIC_NUMBER + b"\x03\x00\x00\x00"
                                               + importlib.util.source_hash(source) + marshal.dumps(green))
    (root / "assets" / ("test_calc" + PYC_TAIL)).symlink_to("blob.dat")
    (root / "tests" / "__pycache__").symlink_to("../assets")
    verdict = run(root)
    assert verdict.status == "failed" and verdict.counts.failed == 150
    assert (root / "tests" / "__pycache__").is_dir() and not (root / "tests" / "__pycache__").is_symlink()


def test_the_machines_rewrites_are_kept_within_their_count_and_size(tmp_path):
    from clude.harness import rewrites

    store = tmp_path / "store"
    store.mkdir()
    for n in range(10):  # sparse: their size is what counts
        with open(store / f"{n:064x}.pyc", "wb") as f:
            f.truncate(rewrites.STORE_BYTES // 10)
        os.utime(store / f"{n:064x}.pyc", (1000 + n, 1000 + n))
    rewrites._prune(store)  # within KEEP and STORE_BYTES: nothing goes
    assert len(list(store.iterdir())) == 10
    (store / "new.skip").write_bytes(b"x" * 1000)
    os.utime(store / "new.skip", (2000, 2000))
    rewrites._prune(store)  # over the size: the oldest go first, down to nine tenths
    assert sorted(p.name for p in store.iterdir()) == [f"{n:064x}.pyc" for n in range(2, 10)] + ["new.skip"]
