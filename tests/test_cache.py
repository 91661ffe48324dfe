"""The verification cache: an unchanged tree answers without running; any change runs again."""

import os
import subprocess
import sys

import pytest

from clude.config import TestConfig
from clude.harness import Status, run_tests
from conftest import project_env


@pytest.fixture
def project(tmp_path):
    """A git project whose test appends a line to a log outside the tree each time it really runs."""
    root = tmp_path / "proj"
    root.mkdir()
    runs = tmp_path / "runs.log"
    (root / "test_it.py").write_text(
        "import os\n\ndef test_it():\n"
        f"    open({str(runs)!r}, 'a').write('ran\\n')\n"
        "    assert open('value.txt').read().strip() == 'ok'\n")
    (root / "value.txt").write_text("ok\n")
    (root / ".gitignore").write_text("build/\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    return root, runs


def run(root, **kw):
    config = TestConfig(command=[sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"])
    return run_tests(root, config, env=project_env(), **kw)


def times_run(runs) -> int:
    return len(runs.read_text().splitlines()) if runs.exists() else 0


def test_unchanged_tree_is_answered_from_the_cache(project):
    root, runs = project
    first = run(root)
    second = run(root)
    assert first.status is Status.PASSED and not first.cached
    assert second.cached and second.status is Status.PASSED
    assert second.counts == first.counts and second.report_path == first.report_path
    assert times_run(runs) == 1


@pytest.mark.parametrize("change", [
    lambda r: (r / "value.txt").write_text("ok \n"),  # a tracked file, one byte
    lambda r: (r / "new_untracked.txt").write_text("x"),  # an untracked file git does not ignore
    lambda r: (r / "value.txt").unlink(),  # a deleted file
])
def test_any_change_runs_again(project, change):
    root, runs = project
    run(root)
    change(root)
    again = run(root)
    assert not again.cached
    assert times_run(runs) == 2


def test_ignored_and_generated_files_do_not_invalidate(project):
    root, runs = project
    run(root)
    (root / "build").mkdir()
    (root / "build" / "artifact.bin").write_bytes(b"\0" * 10)
    (root / "__pycache__").mkdir(exist_ok=True)
    (root / "__pycache__" / "junk.pyc").write_bytes(b"x")
    assert run(root).cached
    assert times_run(runs) == 1


def test_no_cache_always_runs(project):
    root, runs = project
    run(root)
    assert not run(root, use_cache=False).cached
    assert times_run(runs) == 2


def test_a_different_sample_or_command_is_a_different_entry(project):
    root, runs = project
    run(root)
    assert not run(root, rate=0.5, seed="a").cached
    assert run(root, rate=0.5, seed="a").cached
    assert not run(root, rate=0.5, seed="b").cached
    assert times_run(runs) == 3


def test_a_corrupt_entry_is_ignored_and_replaced(project):
    root, runs = project
    run(root)
    from clude.harness.cache import machine_cache
    for entry in (machine_cache() / "verdicts").glob("*.json"):
        entry.write_text('{"status": "passed", "counts": ')  # torn write
    again = run(root)
    assert again.status is Status.PASSED and not again.cached
    assert run(root).cached
    assert times_run(runs) == 2


def test_a_failing_verdict_is_cached_too(project):
    root, runs = project
    (root / "value.txt").write_text("bad\n")
    assert run(root).status is Status.FAILED
    again = run(root)
    assert again.cached and again.status is Status.FAILED and again.failures
    assert times_run(runs) == 1


def test_timeouts_are_never_cached(tmp_path):
    (tmp_path / "test_hang.py").write_text("import time\n\ndef test_hang():\n    time.sleep(60)\n")
    config = TestConfig(command=[sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                        timeout=1)
    first = run_tests(tmp_path, config, env=project_env())
    second = run_tests(tmp_path, config, env=project_env())
    assert first.status is Status.TIMEOUT and second.status is Status.TIMEOUT
    assert not second.cached


def test_works_outside_git(tmp_path):
    (tmp_path / "test_a.py").write_text("def test_a():\n    pass\n")
    assert not run(tmp_path).cached
    assert run(tmp_path).cached
    (tmp_path / "test_a.py").write_text("def test_a():\n    pass\n\n")
    assert not run(tmp_path).cached


def test_an_error_is_never_cached(tmp_path):
    (tmp_path / "test_imp.py").write_text("import not_installed_yet\n\ndef test_x():\n    pass\n")
    first = run(tmp_path)
    again = run(tmp_path)
    assert first.status is Status.ERROR and again.status is Status.ERROR
    assert not again.cached


def test_installing_a_package_into_the_project_virtualenv_is_a_miss(project):
    root, runs = project
    site = root / ".venv" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    run(root)
    assert run(root).cached
    (site / "newpkg-1.0.dist-info").mkdir()  # what pip install leaves behind
    assert not run(root).cached
    assert times_run(runs) == 2


def test_a_fifo_in_the_tree_is_not_read(tmp_path):
    (tmp_path / "test_a.py").write_text("def test_a():\n    pass\n")
    os.mkfifo(tmp_path / "pipe")  # opening it for reading would block forever
    assert run(tmp_path).status is Status.PASSED
    assert run(tmp_path).cached


def test_the_same_verdict_asked_at_once_by_several_workers_is_computed_once(project, tmp_path):
    """Four threads (as the workers and the lander of a machine) ask for the verdict of trees with the same
    content at the same time, each from its own copy: the tests run once, the others wait and read it."""
    import shutil
    import threading

    root, runs = project
    (root / "test_it.py").write_text((root / "test_it.py").read_text().replace(
        "def test_it():\n", "def test_it():\n    import time; time.sleep(0.3)\n"))
    copies = [root]
    for n in range(3):
        copies.append(tmp_path / f"copy{n}")
        shutil.copytree(root, copies[-1])
    gate = threading.Barrier(len(copies))
    verdicts = []

    def ask(tree):
        gate.wait()
        verdicts.append(run(tree, state_dir=tree.parent / f"state-{tree.name}"))

    threads = [threading.Thread(target=ask, args=(tree,)) for tree in copies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert times_run(runs) == 1
    assert sorted(v.cached for v in verdicts) == [False, True, True, True]
    assert {v.status for v in verdicts} == {Status.PASSED}


def test_a_hit_from_another_checkout_names_the_report_where_it_is_or_not_at_all(project, tmp_path):
    """The machine's cache answers another checkout of the same tree: its report is named where the run
    that made it left it (an absolute path), and not at all once that report is gone; in process, and by
    `clude test`'s fast answer (given before pydantic is imported)."""
    import shutil

    root, runs = project
    command = [sys.executable, "-m", "clude", "test", "--", sys.executable, "-m", "pytest", "-q", "-p",
               "no:cacheprovider"]
    first = run(root)
    assert subprocess.run(command, cwd=root, env=project_env(), capture_output=True).returncode == 0
    other = tmp_path / "other-checkout"
    shutil.copytree(root, other, ignore=shutil.ignore_patterns(".clude"))
    hit = run(other)
    assert hit.cached and times_run(runs) == 2  # once in process, once by the command (another request)
    assert os.path.isabs(hit.report_path) and os.path.samefile(hit.report_path, root / first.report_path)
    shown = subprocess.run(command, cwd=other, env=project_env(), capture_output=True, text=True).stdout
    assert "cached" in shown and f"report: {root}/.clude/reports/" in shown and times_run(runs) == 2
    shutil.rmtree(root / ".clude")  # the runs that made the verdicts are gone with their reports
    gone = run(other)
    assert gone.cached and gone.report_path is None
    shown = subprocess.run(command, cwd=other, env=project_env(), capture_output=True, text=True).stdout
    assert "cached" in shown and "report:" not in shown, shown
