import subprocess
import sys
from pathlib import Path

import pytest

INNER = Path(__file__).parent / "inner" / "check_inner.py"


def test_a_nested_pytest_run_reports_its_own_failure():
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(INNER)], capture_output=True, text=True)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed, 1 passed" in done.stdout


def test_an_in_process_pytest_run_reports_its_own_failure():
    assert pytest.main(["-q", "-p", "no:cacheprovider", str(INNER)]) == 1


def test_after_the_nested_runs():
    assert True
