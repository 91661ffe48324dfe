"""A worker's turns at the upstream run ahead of the rest of its work (protocol/turns.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread priorities are Linux's")
def test_a_turn_runs_at_the_workers_priority_and_the_rest_lower(tmp_path):
    """keep_turns_ahead: the turn's work at the priority the process started with; the loop 5 levels
    lower (LOOP_NICE); a command the loop starts 10 below that; a turn asked for from inside a turn is the same one."""
    script = textwrap.dedent(f"""
        import os, subprocess, sys, threading
        from pathlib import Path
        from clude.harness.process import lower_commands, run_group
        from clude.team.protocol.turns import LOOP_NICE, in_turn, keep_turns_ahead
        me = lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        start = me()
        keep_turns_ahead()
        lower_commands(10)
        got, level = in_turn(Path({str(tmp_path)!r}), me)
        nested = in_turn(Path({str(tmp_path)!r}), lambda: in_turn(Path({str(tmp_path)!r}), me))[1]
        helper = []
        thread = threading.Thread(target=lambda: helper.append(me()))
        thread.start(); thread.join()
        run_group([sys.executable, "-c", "import os; print(os.nice(0))"], Path.cwd(), dict(os.environ),
                  Path({str(tmp_path / "o.log")!r}), 60)
        said = open({str(tmp_path / "o.log")!r}).read().strip()
        print(start, me(), got, level, f"{{nested[0]}}:{{nested[1]}}", helper[0], said)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    start, loop, got, turn, nested, helper, command = out.stdout.split()
    s = int(start)
    from clude.team.protocol.turns import LOOP_NICE
    low = min(19, s + LOOP_NICE)
    assert (int(loop), got, int(turn), nested, int(helper)) == (low, "True", s, f"True:{s}", low)
    assert int(command) == min(19, low + 10)
