"""Shared test helpers: the corpus of small real projects and how to run clude on a copy of one."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

CORPUS = Path(__file__).parent / "corpus"


def pytest_report_header(config) -> list[str]:
    """Up front: what the suite downloads the first time (the agent CLIs its backends' tests run, from npm
    and PyPI, into tests/.cache), or that all of it is cached."""
    import npm_cli

    return npm_cli.downloads_header()


def pytest_configure(config) -> None:
    """An install (npm_cli.install_once) shows its progress on the terminal even while pytest captures the
    output of the test that needed it."""
    import npm_cli

    def show(line: str) -> None:
        capture = config.pluginmanager.getplugin("capturemanager")
        terminal = config.pluginmanager.getplugin("terminalreporter")
        if capture is None or terminal is None:
            print(line, flush=True)
            return
        with capture.global_and_fixture_disabled():
            terminal.write_line(line)

    npm_cli.show_on = show
    # A suite started in the background of a shell without job control (`cmd &` in a script) inherits
    # SIGINT ignored, and so would every process it starts: the tests of Ctrl-C would wait in vain. The
    # processes the tests start get the default disposition, as from a terminal.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def project_env(**extra: str) -> dict[str, str]:
    """The environment a corpus project runs in: this interpreter's virtualenv looks activated, so
    detection picks the interpreter that has pytest, and no agent id leaks in from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLUDE_", "PYTEST_"))}
    env["VIRTUAL_ENV"] = sys.prefix
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory) -> Path:
    """A virtualenv without pytest (its interpreter is this one's): a project only unittest can run."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    return venv


def write_files(root: Path, files: dict[str, str]) -> Path:
    """Write {relative path: text} under root (folders made as needed) and return root."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def copy_project(tmp_path):
    """Copy a corpus project (by its path under tests/corpus) into a temp dir and return the copy."""

    def _copy(name: str) -> Path:
        dest = tmp_path / Path(name).name
        shutil.copytree(CORPUS / name, dest, ignore=shutil.ignore_patterns("expected.json",
                                                                           "__pycache__"))
        return dest

    return _copy


def exits_within(pid: int, seconds: float) -> bool:
    """True when the process has ended (zombie or gone) within `seconds`: a SIGKILL is delivered
    asynchronously, so wait on a pidfd for the exit itself rather than look once."""
    import select

    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], seconds)[0])
    finally:
        os.close(fd)


def processes_with(marker: str) -> list[int]:
    """The pids of this machine whose command line holds `marker` (what a test started and must see gone)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                continue
    return found


@pytest.fixture
def bare_git_env(monkeypatch, tmp_path):
    """No user or system git config (the code must bring its own identity), and no repository
    above tmp_path can be found by accident."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL",
                "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(autouse=True)
def own_verdict_cache(monkeypatch, tmp_path_factory):
    """Each test has a verdict cache of its own (the machine's is shared by every run on it): no test
    is answered from another's results. Subprocesses inherit it (XDG_CACHE_HOME: the environments the
    tests build for subprocesses drop CLUDE_* variables)."""
    monkeypatch.delenv("CLUDE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


@pytest.fixture(autouse=True)
def priority_restored():
    """A team worker run in this process lowers its main thread (its turns stay ahead) and the commands
    it starts: after the test, both are back where they were, so that a later test (or another test
    process of a parallel run) is not slowed by an earlier one's worker. Raising a priority again needs
    root (or a nice limit): without it the process just stays lower."""
    from clude.harness.process import lower_commands
    from clude.priority import lower_this_thread, thread_level

    level = thread_level()
    yield
    lower_commands(0)
    if thread_level() > level:
        try:
            lower_this_thread(level)
        except OSError:
            pass


WATCHED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1)


@pytest.fixture(autouse=True)
def signals_restored(request):
    """This process's signal handlers are put back after each test (a team worker run in process sets its
    own for the monitor's SIGUSR1). A test that leaves one ignored fails: an ignored signal is inherited by
    every process a later test starts (a `clude` that never stops on Ctrl-C)."""
    before = {s: signal.getsignal(s) for s in WATCHED_SIGNALS}
    yield
    ignored = [signal.Signals(s).name for s, handler in before.items()
               if signal.getsignal(s) is signal.SIG_IGN and handler is not signal.SIG_IGN]
    for s, handler in before.items():
        signal.signal(s, handler)
    assert not ignored, f"{request.node.nodeid} left these signals ignored: {', '.join(ignored)}"
