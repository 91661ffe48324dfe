"""`clude team logs analyze` on generated events and logs: crash loops, repeated errors, over-claimed
tasks, time per task; and the `watch` loop of `clude team status --watch`."""

from __future__ import annotations

import io
import json
import time
from datetime import datetime
from pathlib import Path

from click.testing import CliRunner
from rich.console import Console
from rich.text import Text

from clude.cli.team_logs_cmd import logs_group, status_view, watch
from clude.team.logs.analyze import analyze, classify_reason, normalize_error, read_inputs
from clude.team.logs.events import EventLog

T0 = 1_795_000_000.0  # 2026-11-18
MISSING_KEY = ("the agent needs OPENAI_API_KEY, which is not set in its environment: "
               "export it where the workers run")


def ev(at: float, agent: str, kind: str, level: str = "INFO", **details) -> dict:
    return {"at": T0 + at, "agent": agent, "kind": kind, "level": level, **details}


def healthy_worker(agent: str, start: float, tasks: list[str]) -> list[dict]:
    out = [ev(start, agent, "worker_started", backend="clude", pid=100)]
    t = start
    for task in tasks:
        out += [ev(t + 1, agent, "claimed", task=task, attempt=1),
                ev(t + 2, agent, "agent_started", task=task, attempt=1),
                ev(t + 20, agent, "agent_finished", task=task, attempt=1, exit_code=0),
                ev(t + 30, agent, "done", task=task, attempt=1, commit="abc1234")]
        t += 30
    return out


def crash_loop_a4(start: float = 5.0, claims: bool = True) -> list[dict]:
    out = [ev(start, "a4", "worker_started", backend="codex", pid=4)]
    for i in range(3):
        if claims:
            out.append(ev(start + 1 + i, "a4", "claimed", task=f"TASK-00{i + 5}", attempt=1))
        out.append(ev(start + 1.5 + i, "a4", "infra", "ERROR", task=f"TASK-00{i + 5}", cause="missing_env",
                      reason=MISSING_KEY))
    out.append(ev(start + 4, "a4", "worker_blocked", "ERROR", cause="missing_env", reason=MISSING_KEY))
    return out


# -- crash loops ------------------------------------------------------------------------------------------
def test_crash_loop_of_infra_failures_names_the_agent_the_count_and_the_variable():
    for claims in (True, False):
        events = healthy_worker("a1", 0, ["TASK-001", "TASK-002"]) + crash_loop_a4(claims=claims)
        events.sort(key=lambda e: e["at"])
        report = analyze(events, [])
        assert [(c.agent, c.count, c.reason) for c in report.crash_loops] == [
            ("a4", 3, "missing environment variable OPENAI_API_KEY")]
        loop = report.crash_loops[0]
        assert (loop.first, loop.last) == (T0 + 6.5, T0 + 8.5)


def test_crash_loop_of_failed_starts_and_of_silent_crashes():
    starts = []
    for i in range(3):
        starts += [ev(i * 10, "a2", "worker_started"),
                   ev(i * 10 + 1, "a2", "worker_blocked", "ERROR", cause="missing_env", reason=MISSING_KEY)]
        if i:
            starts.insert(-2, ev(i * 10 - 1, "a2", "worker_restarted", "WARNING", by="monitor", restarts=i))
    starts.append(ev(31, "a2", "worker_blocked", "ERROR", by="monitor",
                     reason="crash loop: 3 starts failed before doing any work: " + MISSING_KEY))
    silent = [ev(i * 5, "a3", "worker_started") for i in range(3)]
    silent.append(ev(16, "a3", "worker_blocked", "ERROR", by="monitor",
                     reason="crash loop: 3 starts failed before doing any work: bash: codex: command not found"))
    report = analyze(sorted(starts + silent, key=lambda e: e["at"]), [])
    assert [(c.agent, c.count, c.reason) for c in report.crash_loops] == [
        ("a2", 3, "missing environment variable OPENAI_API_KEY"), ("a3", 3, "command not found: codex")]


def test_no_crash_loop_when_work_is_done_between_failures_or_they_are_far_apart():
    recovering = [ev(0, "a1", "worker_started")]
    for i in range(4):  # infra, then an attempt that ran: the streak starts again each time
        recovering += [ev(i * 10 + 1, "a1", "claimed", task=f"T{i}"),
                       ev(i * 10 + 2, "a1", "infra", "ERROR", task=f"T{i}", cause="rate_limited", reason="429"),
                       ev(i * 10 + 3, "a1", "claimed", task=f"T{i}"),
                       ev(i * 10 + 9, "a1", "failed_attempt", "WARNING", task=f"T{i}", reason="1 test failed")]
    slow = [ev(0, "a5", "worker_started")] + [
        ev(1 + i * 1000, "a5", "infra", "ERROR", task="T9", cause="network", reason="Could not resolve host")
        for i in range(3)]
    assert analyze(recovering + slow, []).crash_loops == []
    assert [c.reason for c in analyze(slow, [], window_s=5000).crash_loops] == ["network unreachable"]


def test_crash_loop_in_plain_lines_of_one_source():
    lines = ["==> /x/.clude/logs/a7.out <=="]
    for i in range(4):
        lines += [f"2026-11-23 18:00:0{i},000 INFO starting worker pid={100 + i}",
                  f"2026-11-23 18:00:0{i},500 ERROR ERROR: Missing environment variable: `ANTHROPIC_API_KEY`."]
    lines += ["==> /x/.clude/logs/a8.out <==", "bash: codex: command not found"] * 3
    report = analyze([], lines)
    found = {(c.agent, c.count, c.reason) for c in report.crash_loops}
    assert ("a7", 4, "missing environment variable ANTHROPIC_API_KEY") in found
    assert [c for c in report.crash_loops if c.agent == "a8"] == []  # one line per source: not in a row
    a7 = next(c for c in report.crash_loops if c.agent == "a7")
    assert a7.first == datetime(2026, 11, 23, 18, 0, 0, 500000).timestamp()
    assert a7.last == datetime(2026, 11, 23, 18, 0, 3, 500000).timestamp()


def test_classified_reasons():
    assert classify_reason(None, "bash: codex: command not found") == "command not found: codex"
    assert classify_reason("auth", "Invalid API key") == "authentication failed"
    assert classify_reason(None, "Error: 429 Too Many Requests") == "rate limited"
    assert classify_reason("network", "anything") == "network unreachable"
    assert classify_reason("start_failed", "the agent exited with 2 before changing anything: boom") == \
        "the agent exited with 2 before changing anything: boom"


# -- repeated errors ----------------------------------------------------------------------------------------
def test_normalize_error_keeps_names_and_drops_values():
    a = normalize_error("push failed after 2.5s: /tmp/tmpab12cd/up.git exit 128 (pid 4242) commit 3f2a9bc1de "
                        "at 2026-11-23 18:00:01 id 123e4567-e89b-12d3-a456-426614174000 value 'x y'")
    b = normalize_error("push failed after 13s: /tmp/tmpzz99/up.git exit 1 (pid 7) commit 0a1b2c3d4e5f "
                        "at 2026-11-24T01:02:03Z id 00000000-0000-0000-0000-000000000000 value 'a b/c'")
    assert a == b
    assert "OPENAI_API_KEY" in normalize_error("ERROR: Missing environment variable: `OPENAI_API_KEY`.")
    assert "OPENAI_API_KEY" in normalize_error("KeyError: 'OPENAI_API_KEY'")
    assert normalize_error("bash: codex: command not found") == "bash: codex: command not found"
    assert normalize_error("TASK-012 failed") == normalize_error("TASK-7 failed")


def big_log(n_lines: int = 20_000, every: int = 7) -> tuple[list[str], int, float, float]:
    lines = ["==> big.log <=="]
    start = datetime(2026, 11, 23, 18, 0, 0)
    count, first, last = 0, None, None
    for i in range(n_lines):
        at = start.timestamp() + i * 0.25
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) + f",{(i % 4) * 250:03d}"
        if i % every == 3:
            lines.append(f"{stamp} ERROR could not push to /tmp/tmp{i:x}q/upstream.git: exit {i % 3 + 1} "
                         f"after {i / 10:.1f}s (pid {1000 + i})")
            count += 1
            first = at if first is None else first
            last = at
        elif i % 50 == 10:
            lines.append(f"{stamp} WARNING lease renewal slow: {i % 9} s")
        else:
            lines.append(f"{stamp} INFO agent_step n={i} tokens={i * 3}")
    return lines, count, first, last


def test_repeated_error_in_thousands_of_lines_is_one_signature_with_count_and_times():
    lines, count, first, last = big_log()
    report = analyze([], lines)
    assert report.lines == 20_000
    top = report.repeated_errors[0]
    assert top.level == "ERROR" and top.count == count > 2000
    assert top.signature == "could not push to <tmp>: exit <n> after <n>s (pid <n>)"
    assert (top.first, top.last) == (first, last)
    assert "/tmp/tmp3q/upstream.git" in top.example
    warning = report.repeated_errors[1]
    assert warning.level == "WARNING" and warning.signature == "lease renewal slow: <n> s"


def test_a_big_log_and_many_events_are_analyzed_in_linear_time():
    lines, _, _, _ = big_log()
    events = []
    for w in range(10):
        events += healthy_worker(f"w{w}", w, [f"TASK-{w}{i:03d}" for i in range(125)])
    events = events[:5000]
    started = time.perf_counter()
    report = analyze(events, lines)
    elapsed = time.perf_counter() - started
    print(f"analyzed {len(events)} events and {len(lines)} lines in {elapsed:.2f} s")
    assert report.events == 5000 and len(report.task_times) > 1000


def test_events_and_their_log_mirror_count_once_and_a_log_alone_is_read_as_events(tmp_path):
    state = tmp_path / ".clude"
    agent = f"mirror-{tmp_path.name}"  # loggers are per process: a name no other test uses
    log = EventLog(state, agent, env={})
    try:
        log.emit("worker_started", backend="codex")
        for i in range(3):
            log.emit("claimed", task=f"TASK-00{i}", attempt=1)
            log.emit("infra", "ERROR", task=f"TASK-00{i}", cause="missing_env", reason=MISSING_KEY)
        log.emit("worker_blocked", "ERROR", cause="missing_env", reason=MISSING_KEY)
    finally:
        for handler in list(log.logger.handlers):
            handler.close()
            log.logger.removeHandler(handler)
    both = analyze(*read_inputs([], root=tmp_path))
    assert [(c.agent, c.count, c.reason) for c in both.crash_loops] == [
        (agent, 3, "missing environment variable OPENAI_API_KEY")]
    assert [(e.count, e.signature[:6]) for e in both.repeated_errors] == [(3, "infra:"), (1, "worker")]
    alone = analyze(*read_inputs([state / "logs" / f"{agent}.log"]))
    assert alone.events == 0 and alone.lines == 8
    assert [(c.agent, c.count, c.reason) for c in alone.crash_loops] == [
        (agent, 3, "missing environment variable OPENAI_API_KEY")]
    assert [(e.count, e.signature[:6]) for e in alone.repeated_errors] == [(3, "infra:"), (1, "worker")]
    assert [o.task for o in alone.over_claimed] == []


# -- tasks ----------------------------------------------------------------------------------------------
def test_a_task_claimed_more_often_than_its_attempts_explain():
    events = [ev(0, "a1", "worker_started"), ev(0, "a2", "worker_started"), ev(0, "a3", "worker_started"),
              ev(1, "a1", "claimed", task="TASK-001", attempt=1),
              ev(50, "a1", "failed_attempt", "WARNING", task="TASK-001", attempt=1, reason="2 tests failed"),
              ev(60, "a2", "claimed", task="TASK-001", attempt=2),
              ev(900, "a3", "claimed", task="TASK-001", attempt=2, broke_lock_of="a2"),
              ev(901, "a3", "worker_stopped", "WARNING", reason="interrupted"),
              # fine: one claim, one outcome; and one claim still being worked on
              ev(2, "a2", "claimed", task="TASK-002"), ev(40, "a2", "done", task="TASK-002"),
              ev(950, "a1", "claimed", task="TASK-003")]
    report = analyze(sorted(events, key=lambda e: e["at"]), [])
    assert [(o.task, o.claims, o.accounted, o.agents) for o in report.over_claimed] == [
        ("TASK-001", 3, 1, ["a1", "a2", "a3"])]


def test_time_per_task_from_first_claim_to_done_or_last_failure():
    events = [ev(100, "a1", "claimed", task="A"), ev(160, "a1", "done", task="A"),
              ev(100, "a2", "claimed", task="B"), ev(130, "a2", "failed_attempt", "WARNING", task="B", final=False),
              ev(140, "a2", "claimed", task="B"), ev(200, "a2", "failed_attempt", "WARNING", task="B", final=True),
              ev(100, "a3", "claimed", task="C"), ev(110, "a3", "done", task="C"),
              ev(300, "a3", "claimed", task="D"),
              # E failed once and is open again: never called failed; F was blocked
              ev(100, "a1", "claimed", task="E"), ev(150, "a1", "failed_attempt", "WARNING", task="E", final=False),
              ev(100, "a2", "claimed", task="F"), ev(105, "a2", "infra", "ERROR", task="F"),
              ev(105, "a2", "task_blocked", "WARNING", task="F")]
    report = analyze(sorted(events, key=lambda e: e["at"]), [])
    assert [(t.task, t.seconds, t.outcome, t.attempts) for t in report.task_times] == [
        ("B", 100, "failed", 2), ("A", 60, "done", 1), ("C", 10, "done", 1), ("F", 5, "blocked", 0)]
    assert report.time_summary() == {"tasks": 4, "min": 5, "median": 35, "max": 100}


# -- inputs and the command -----------------------------------------------------------------------------------
def write_team_logs(root: Path) -> None:
    state = root / ".clude"
    (state / "logs").mkdir(parents=True)
    events = healthy_worker("a1", 0, ["TASK-001", "TASK-002"]) + crash_loop_a4()
    text = "".join(json.dumps(e) + "\n" for e in sorted(events, key=lambda e: e["at"]))
    (state / "events.jsonl").write_text(text + '{"torn": \n', encoding="utf-8")
    lines, _, _, _ = big_log(2000)
    (state / "logs" / "a9.log").write_text("\n".join(lines[1:]) + "\n", encoding="utf-8")


def test_read_inputs_defaults_and_bad_lines(tmp_path):
    write_team_logs(tmp_path)
    events, lines = read_inputs([], root=tmp_path)
    assert len(events) == 17 and events.skipped == 1
    assert lines[0] == f"==> {tmp_path / '.clude' / 'logs' / 'a9.log'} <==" and len(lines) == 2001
    assert analyze(events, lines).skipped == 1
    assert read_inputs([tmp_path / "missing.log"]) == ([], [])


def test_cli_report_and_json(tmp_path):
    write_team_logs(tmp_path)
    runner = CliRunner()
    result = runner.invoke(logs_group, ["analyze", "-C", str(tmp_path)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "crash loops" in out and "a4: 3 in a row" in out
    assert "missing environment variable OPENAI_API_KEY" in out
    assert "most repeated errors" in out and "could not push to <tmp>" in out
    assert "time per task" in out and "2 tasks: min 29s" in out
    assert "1 unreadable event lines skipped" in out
    assert len(out.splitlines()) <= 45

    result = runner.invoke(logs_group, ["analyze", "--json", "-C", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {(c["agent"], c["count"]) for c in data["crash_loops"]} >= {("a4", 3)}
    assert data["events"] == 17 and data["lines"] == 2000 and data["skipped"] == 1
    assert data["time_summary"]["tasks"] == 2

    result = runner.invoke(logs_group, ["analyze", str(tmp_path / ".clude" / "logs" / "a9.log")])
    assert result.exit_code == 0 and "analyzed 0 events and 2000 log lines" in result.output
    relative = runner.invoke(logs_group, ["analyze", "-C", str(tmp_path), ".clude/events.jsonl"])
    assert relative.exit_code == 0 and "analyzed 17 events and 0 log lines" in relative.output


def test_cli_on_nothing_says_so_and_exits_0(tmp_path):
    runner = CliRunner()
    result = runner.invoke(logs_group, ["analyze", "-C", str(tmp_path)])
    assert result.exit_code == 0 and "nothing to analyze: no .clude/events.jsonl" in result.output
    result = runner.invoke(logs_group, ["analyze", str(tmp_path / "gone.log")])
    assert result.exit_code == 0
    assert "no such file" in result.output and "nothing to analyze: no events or log lines" in result.output
    (tmp_path / "empty.jsonl").write_text("", encoding="utf-8")
    result = runner.invoke(logs_group, ["analyze", "--json", str(tmp_path / "empty.jsonl")])
    assert result.exit_code == 0 and json.loads(result.output)["message"].startswith("no events")


# -- watch ------------------------------------------------------------------------------------------------
def console() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=80)


def test_watch_refreshes_until_stopped_and_survives_a_failed_refresh():
    calls = []

    def render():
        calls.append(1)
        if len(calls) == 2:
            raise OSError("fetch failed")
        return Text(f"view {len(calls)}")

    out = console()
    sleeps = []
    watch(render, 0.5, stop=lambda: len(calls) >= 4, console=out, sleep=sleeps.append)
    assert len(calls) == 4 and sleeps == [0.5, 0.5, 0.5]
    text = out.file.getvalue()
    assert "could not refresh: fetch failed" in text and "view 4" in text


def test_watch_ends_cleanly_on_ctrl_c():
    calls = []

    def render():
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return Text("tables")

    watch(render, console=console(), sleep=lambda s: None)  # returns: no exception
    assert len(calls) == 3

    def interrupted_sleep(seconds):
        raise KeyboardInterrupt

    watch(lambda: Text("tables"), console=console(), sleep=interrupted_sleep)


def test_status_view_renders_the_tables():
    class EmptyBoard:
        tasks: dict = {}
        problems = ["tasks/x.md: no title"]

    out = console()
    out.print(status_view(EmptyBoard(), [{"agent": "a1", "state": "blocked", "task": None, "attempt": None,
                                          "since": "18:00:00", "uptime_s": None, "restarts": 2,
                                          "error": "missing environment variable OPENAI_API_KEY"}]))
    text = out.file.getvalue()
    assert "no tasks yet" in text and "tasks/x.md: no title" in text and "a1" in text and "blocked" in text
