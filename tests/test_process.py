"""Process groups, timeouts and the check that the program a command starts exists."""

import os
import signal
import sys

import pytest

from clude.config import TestConfig
from clude.harness import Status, run_tests
from clude.harness.process import MissingProgram, lower_commands, resolve_program, run_group
from conftest import exits_within, project_env



def test_timeout_kills_the_group(tmp_path):
    done = run_group([sys.executable, "-c", "import time; print('started', flush=True); time.sleep(300)"],
                     tmp_path, dict(os.environ), tmp_path / "out.log", timeout_s=1)
    assert done.timed_out and done.exit_code is None and done.signal == signal.SIGTERM
    assert 1 <= done.duration_s < 60


def test_what_a_command_leaves_running_in_its_group_is_killed(tmp_path):
    """A background process (a test server nobody stopped) does not outlive the test command."""
    script = tmp_path / "leave.sh"
    script.write_text("sleep 300 & echo $! > grandchild.pid\necho done\n")
    done = run_group(["sh", str(script)], tmp_path, dict(os.environ), tmp_path / "out.log",
                     timeout_s=60)
    assert (done.exit_code, done.timed_out) == (0, False)
    assert exits_within(int((tmp_path / "grandchild.pid").read_text()), 30)
    assert (tmp_path / "out.log").read_text() == "done\n"


def test_lowered_commands_start_lower_and_so_does_all_they_start(tmp_path):
    """A worker's agents and test runs run below it from their first instruction, and what they start
    at once runs lower too, even in a session of its own (as a sandbox's children are); where the kernel
    schedules sessions as groups (autogroups), the command's session is lowered too (as root: an
    unprivileged user's change may be refused within a tenth of a second of another)."""
    script = "import os, subprocess; print(os.nice(0), flush=True); subprocess.run(['setsid', 'nice'])"
    log = tmp_path / "o.log"
    level = min(19, os.nice(0) + 3)
    lower_commands(3)
    try:
        done = run_group([sys.executable, "-c", script], tmp_path, dict(os.environ), log, timeout_s=60)
        assert done.exit_code == 0 and log.read_text().split() == [str(level)] * 2
        if os.path.exists("/proc/self/autogroup") and os.geteuid() == 0:
            # the session's value is set once the command has started (it makes the session): read
            # until it is there, a moment later
            look = ("for i in $(seq 1000); do grep -q ' 0$' /proc/self/autogroup || break; done; "
                    "cat /proc/self/autogroup")
            run_group(["sh", "-c", look], tmp_path, dict(os.environ), log, 60)
            assert log.read_text().split()[-2:] == ["nice", str(level)]
    finally:
        lower_commands(0)
    done = run_group([sys.executable, "-c", script], tmp_path, dict(os.environ), log, timeout_s=60)
    assert log.read_text().split() == [str(os.nice(0))] * 2  # back to the same level


def test_exit_code_and_output_file(tmp_path):
    done = run_group([sys.executable, "-c", "import sys; print('x' * 10); sys.exit(7)"], tmp_path,
                     dict(os.environ), tmp_path / "o.log", timeout_s=30)
    assert (done.exit_code, done.signal, done.timed_out) == (7, None, False)
    assert (tmp_path / "o.log").read_text() == "x" * 10 + "\n"


def test_death_by_signal_is_reported_as_the_signal(tmp_path):
    done = run_group([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"],
                     tmp_path, dict(os.environ), tmp_path / "o.log", timeout_s=30)
    assert done.exit_code is None and done.signal == signal.SIGSEGV


def test_missing_relative_interpreter_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(MissingProgram) as err:
        resolve_program([".venv/bin/python", "-m", "pytest"], tmp_path, dict(os.environ))
    message = str(err.value)
    assert ".venv/bin/python does not exist" in message
    assert "python3 -m venv .venv" in message


def test_broken_virtualenv_symlink(tmp_path):
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").symlink_to("/nonexistent/python3.99")
    with pytest.raises(MissingProgram, match="symlink to /nonexistent/python3.99, which does not exist"):
        resolve_program([".venv/bin/python"], tmp_path, dict(os.environ))


def test_script_whose_shebang_interpreter_is_gone(tmp_path):
    script = tmp_path / "venv" / "bin" / "pytest"
    script.parent.mkdir(parents=True)
    script.write_text("#!/gone/venv/bin/python\nprint('hi')\n")
    script.chmod(0o755)
    with pytest.raises(MissingProgram, match="#!/gone/venv/bin/python, which does not exist"):
        resolve_program(["venv/bin/pytest"], tmp_path, dict(os.environ))


def test_program_not_on_path(tmp_path):
    with pytest.raises(MissingProgram, match="no-such-runner is not on PATH"):
        resolve_program(["no-such-runner"], tmp_path, {"PATH": str(tmp_path)})


def test_not_executable(tmp_path):
    (tmp_path / "run").write_text("echo hi\n")
    with pytest.raises(MissingProgram, match="is not executable"):
        resolve_program(["./run"], tmp_path, dict(os.environ))


def test_missing_interpreter_is_an_error_verdict_never_failed(tmp_path):
    (tmp_path / "test_x.py").write_text("def test_x():\n    assert False\n")
    config = TestConfig(command=["venv/bin/python", "-m", "pytest"])
    verdict = run_tests(tmp_path, config, use_cache=False, env=project_env())
    assert verdict.status is Status.ERROR
    assert "venv/bin/python does not exist" in verdict.reason
    assert verdict.report_path and (tmp_path / verdict.report_path).read_text().strip()


def test_a_project_with_nothing_to_run_says_so(tmp_path):
    (tmp_path / "README").write_text("no code\n")
    verdict = run_tests(tmp_path, TestConfig(), use_cache=False, env=project_env())
    assert verdict.status is Status.ERROR
    assert "found no tests to run" in verdict.reason and "[test] command" in verdict.reason


def test_commands_can_be_started_at_a_lower_priority(tmp_path):
    """A team worker starts its agents and tests below itself: its pushes come first on a busy machine."""
    from clude.harness.process import lower_commands
    probe = [sys.executable, "-c", "import os; print(os.nice(0))"]
    own = os.nice(0)
    try:
        lower_commands(5)
        run_group(probe, tmp_path, dict(os.environ), tmp_path / "low.log", timeout_s=60)
    finally:
        lower_commands(0)
    run_group(probe, tmp_path, dict(os.environ), tmp_path / "same.log", timeout_s=60)
    assert int((tmp_path / "low.log").read_text()) == min(19, own + 5)
    assert int((tmp_path / "same.log").read_text()) == own
