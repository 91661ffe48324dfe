"""The team board: task and lock files, states, dependency problems, claiming order, failure records, progress."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clude.team.board.board import all_settled, claimable, counts, dependency_problems, read_board
from clude.team.board.locks import (LockFileError, is_live, new_lock, parse_lock, render_lock, renewed,
                              unreadable_lock_live)
from clude.team.board.records import (append_progress, earlier_failures, failure_record, progress_line,
                                progress_notes)
from clude.team.board.tasks import Task, TaskFileError, next_task_id, parse_task, render_task

NOW = datetime(2026, 11, 23, 18, 0, tzinfo=timezone.utc)
LEASE = 60.0


def task(id: str, **fields) -> Task:
    return Task(id=id, title=fields.pop("title", f"do {id}"), **fields)


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def checkout(tmp_path: Path, *tasks: Task, extra: dict[str, str] | None = None) -> Path:
    files = {f"tasks/{t.id}.md": render_task(t) for t in tasks}
    return write(tmp_path, {**files, **(extra or {})})


def lock_text(task_id: str, *, claimed: datetime = NOW, lease_s: float = LEASE, agent: str = "a1") -> str:
    return render_lock(new_lock(task_id, agent, "host", 123, 1, claimed, lease_s))


# tasks.py ------------------------------------------------------------------------------------------------

ids = st.from_regex(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,20}", fullmatch=True)
text = st.text(max_size=40)


@settings(max_examples=150, deadline=None)
@given(id=ids, title=text.filter(str.strip), role=st.none() | text, deps=st.lists(ids, max_size=4),
       priority=st.integers(-10**6, 10**6), max_attempts=st.integers(1, 100),
       status=st.sampled_from(["open", "done", "failed", "blocked"]), tests=st.none() | text,
       blocked_reason=st.none() | st.text(max_size=80), body=st.text(max_size=300))
def test_render_then_parse_gives_the_same_task(id, title, role, deps, priority, max_attempts, status, tests,
                                                blocked_reason, body):
    t = Task(id=id, title=title, role=role, deps=deps, priority=priority, max_attempts=max_attempts,
             status=status, tests=tests, blocked_reason=blocked_reason, body=body)
    rendered = render_task(t)
    assert parse_task(rendered, f"tasks/{id}.md") == t
    assert render_task(parse_task(rendered, f"tasks/{id}.md")) == rendered


def test_a_task_file_as_the_docs_show_it():
    text = """---
id: TASK-001
title: Fix mean()
role: implementer          # optional; null = any worker
deps: [TASK-000]
priority: 0                # higher first
max_attempts: 3
status: open               # open | done | failed | blocked
tests: tests/test_calc.py::test_mean   # acceptance selector (optional)
blocked_reason: null
---
The body: what to do.
"""
    t = parse_task(text, "tasks/TASK-001.md")
    assert (t.id, t.title, t.role, t.deps, t.tests, t.body) == (
        "TASK-001", "Fix mean()", "implementer", ["TASK-000"], "tests/test_calc.py::test_mean",
        "The body: what to do.")
    assert render_task(t).splitlines()[1:10] == [
        "id: TASK-001", "title: Fix mean()", "role: implementer", "deps: [TASK-000]", "priority: 0",
        "max_attempts: 3", "status: open", "tests: tests/test_calc.py::test_mean", "blocked_reason: null"]


def test_a_minimal_task_file_takes_its_id_from_the_file_name():
    t = parse_task("---\ntitle: 2024\n---\n\nBody\n", "tasks/TASK-007.md")
    assert (t.id, t.title, t.status, t.max_attempts, t.body) == ("TASK-007", "2024", "open", 3, "Body")


@pytest.mark.parametrize("text, says", [
    ("just a body\n", "no front matter"),
    ("", "no front matter"),
    ("---\ntitle: x\n", "front matter not closed"),
    ("---\ntitle: x\n  bad: [\n---\n", "bad YAML in the front matter at line 3"),
    ("---\n- a list\n---\n", "front matter must be YAML fields"),
    ("---\ntitle: x\npriority: high\n---\n", "priority: got 'high'; must be an integer"),
    ("---\ntitle: x\npriority: yes\n---\n", "priority: got True; must be an integer"),
    ("---\ntitle: x\nmax_attempts: 0\n---\n", "max_attempts: got 0; must be between 1 and 100"),
    ("---\ntitle: x\nmax_attempts: 101\n---\n", "max_attempts: got 101; must be between 1 and 100"),
    ("---\ntitle: x\nstatus: closed\n---\n", "status: got 'closed'; must be one of open, done, failed, blocked"),
    ("---\ntitle: x\ndeps: [TASK 1]\n---\n", "deps[0]: got 'TASK 1'; must be a task id"),
    ("---\ntitle: x\ndeps: {a: 1}\n---\n", "deps: got {'a': 1}; must be a list of task ids"),
    ("---\ntitle: '  '\n---\n", "title: must not be empty"),
    ("---\nid: TASK-001\n---\n", "title: field required"),
    ("---\ntitle: x\nprio: 1\n---\n", "unknown field 'prio'"),
    ("---\nid: TASK-002\ntitle: x\n---\n", "id 'TASK-002' differs from the file name"),
    ("---\nid: ../x\ntitle: x\n---\n", "id: got '../x'; must be a task id"),
])
def test_every_broken_task_file_is_named_with_what_is_wrong(text, says):
    with pytest.raises(TaskFileError) as err:
        parse_task(text, "tasks/TASK-001.md")
    assert str(err.value).startswith("tasks/TASK-001.md: ")
    assert says in str(err.value)
    assert err.value.path == "tasks/TASK-001.md"


def test_all_field_errors_are_reported_at_once():
    with pytest.raises(TaskFileError) as err:
        parse_task("---\ntitle: x\npriority: high\nstatus: closed\n---\n", "tasks/TASK-001.md")
    assert [e.split(":")[0] for e in err.value.errors] == ["priority", "status"]


def test_windows_line_ends_and_a_byte_order_mark_are_read():
    t = parse_task("\ufeff---\r\ntitle: x\r\n---\r\nline 1\r\nline 2\r\n", "tasks/TASK-001.md")
    assert (t.title, t.body) == ("x", "line 1\nline 2")


def test_deps_written_as_text_are_a_list():
    assert parse_task("---\ntitle: x\ndeps: TASK-001, TASK-002\n---\n", "t/TASK-003.md").deps == [
        "TASK-001", "TASK-002"]


def test_next_task_id():
    assert next_task_id([]) == "TASK-001"
    assert next_task_id(["TASK-001", "TASK-010", "notes", "TASK-x"]) == "TASK-011"
    assert next_task_id(["TASK-999"]) == "TASK-1000"


# locks.py ------------------------------------------------------------------------------------------------

def test_lock_round_trip_with_z_times():
    lock = new_lock("TASK-001", "a1", "box", 123, 2, NOW, 60)
    text = render_lock(lock)
    assert '"claimed_at": "2026-11-23T18:00:00Z"' in text and '"lease_until": "2026-11-23T18:01:00Z"' in text
    assert parse_lock(text) == lock
    later = renewed(lock, NOW + timedelta(seconds=50), 60)
    assert later.lease_until == NOW + timedelta(seconds=110) and later.claimed_at == lock.claimed_at


def test_lease_rules():
    lock = new_lock("TASK-001", "a1", "box", 123, 1, NOW, 60)
    assert is_live(lock, NOW + timedelta(seconds=59))
    assert not is_live(lock, NOW + timedelta(seconds=60))
    assert not is_live(None, NOW)
    written = NOW.timestamp()
    assert unreadable_lock_live(written, NOW + timedelta(seconds=30), 60)
    assert not unreadable_lock_live(written, NOW + timedelta(seconds=61), 60)
    assert unreadable_lock_live(None, NOW + timedelta(days=9), 60)
    with pytest.raises(ValueError):
        is_live(lock, datetime(2026, 11, 23))  # naive: which zone?


@pytest.mark.parametrize("text", ["", "{not json", "[1]", '{"task": "TASK-001"}'])
def test_unreadable_lock_text(text):
    with pytest.raises(LockFileError):
        parse_lock(text)


# board.py ------------------------------------------------------------------------------------------------

def test_broken_task_file_is_listed_and_skipped(tmp_path):
    root = checkout(tmp_path, task("TASK-001"), extra={"tasks/TASK-007.md": "---\ntitle: [\n---\n",
                                                       "tasks/.gitkeep": "", "tasks/failures/.gitkeep": ""})
    board = read_board(root, now=NOW, lease_s=LEASE)
    assert list(board.tasks) == ["TASK-001"]
    assert len(board.problems) == 1 and board.problems[0].startswith("tasks/TASK-007.md: bad YAML")
    assert claimable(board, role=None, now=NOW) == ["TASK-001"]


def test_a_missing_layout_is_an_empty_settled_board(tmp_path):
    board = read_board(tmp_path, now=NOW, lease_s=LEASE)
    assert board.tasks == {} and board.problems == [] and all_settled(board)


def test_live_lock_claims_and_expired_lock_frees(tmp_path):
    root = checkout(tmp_path, task("TASK-001"), task("TASK-002"), extra={
        "current_tasks/TASK-001.lock": lock_text("TASK-001"),
        "current_tasks/TASK-002.lock": lock_text("TASK-002", claimed=NOW - timedelta(seconds=120))})
    board = read_board(root, now=NOW, lease_s=LEASE)
    assert board.tasks["TASK-001"].state == "claimed" and board.tasks["TASK-001"].lock.agent == "a1"
    assert board.tasks["TASK-002"].state == "open" and board.tasks["TASK-002"].lock is not None
    assert claimable(board, role=None, now=NOW) == ["TASK-002"]
    assert claimable(board, role=None, now=NOW + timedelta(seconds=61)) == ["TASK-001", "TASK-002"]


def test_unreadable_lock_is_held_within_its_lease_and_free_after(tmp_path):
    root = checkout(tmp_path, task("TASK-001"), extra={"current_tasks/TASK-001.lock": "{garbage"})
    written = {"current_tasks/TASK-001.lock": NOW.timestamp()}
    within = read_board(root, now=NOW + timedelta(seconds=30), lease_s=LEASE, lock_written_at=written.get)
    item = within.tasks["TASK-001"]
    assert (item.state, item.lock, item.lock_unreadable) == ("claimed", None, True)
    assert within.problems and within.problems[0].startswith("current_tasks/TASK-001.lock: unreadable lock")
    assert claimable(within, role=None, now=NOW + timedelta(seconds=30)) == []
    after = read_board(root, now=NOW + timedelta(seconds=61), lease_s=LEASE, lock_written_at=written.get)
    assert after.tasks["TASK-001"].state == "open"
    assert claimable(after, role=None, now=NOW + timedelta(seconds=61)) == ["TASK-001"]
    unknown = read_board(root, now=NOW + timedelta(days=1), lease_s=LEASE)
    assert unknown.tasks["TASK-001"].state == "claimed"


def test_a_lock_naming_another_task_is_unreadable(tmp_path):
    root = checkout(tmp_path, task("TASK-001"), extra={"current_tasks/TASK-001.lock": lock_text("TASK-002"),
                                                       "current_tasks/TASK-404.lock": lock_text("TASK-404")})
    board = read_board(root, now=NOW, lease_s=LEASE, lock_written_at=lambda rel: 0.0)
    assert board.tasks["TASK-001"].lock_unreadable and board.tasks["TASK-001"].state == "open"
    assert any("TASK-404.lock: lock of a task that does not exist" in p for p in board.problems)


def test_attempts_are_counted_from_failure_records(tmp_path):
    root = checkout(tmp_path, task("TASK-001"), task("TASK-002", max_attempts=2), task("TASK-010"), extra={
        "tasks/failures/TASK-001_attempt_1.md": "x", "tasks/failures/TASK-002_attempt_1.md": "x",
        "tasks/failures/TASK-002_attempt_2.md": "x", "tasks/failures/TASK-0010_attempt_1.md": "x",
        "tasks/failures/notes.txt": "x"})
    board = read_board(root, now=NOW, lease_s=LEASE)
    assert {i: t.attempts for i, t in board.tasks.items()} == {"TASK-001": 1, "TASK-002": 2, "TASK-010": 0}
    assert board.tasks["TASK-001"].state == "open"
    assert (board.tasks["TASK-002"].state, board.tasks["TASK-002"].reason) == ("failed", "used all 2 attempts")
    assert claimable(board, role=None, now=NOW) == ["TASK-001", "TASK-010"]


def test_attempts_shown_count_the_one_that_landed_or_runs_and_none_where_none_was_used(tmp_path):
    from clude.cli.team_view import attempts_cell
    from clude.team.board.board import attempts_used

    root = checkout(tmp_path, task("TASK-001", status="done"), task("TASK-002", status="done"), task("TASK-003"),
                    task("TASK-004"), task("TASK-005"), task("TASK-006", max_attempts=2), extra={
        "tasks/failures/TASK-002_attempt_1.md": "x", "tasks/failures/TASK-004_attempt_1.md": "x",
        "tasks/failures/TASK-005_attempt_1.md": "x", "current_tasks/TASK-005.lock": lock_text("TASK-005"),
        "tasks/failures/TASK-006_attempt_1.md": "x", "tasks/failures/TASK-006_attempt_2.md": "x"})
    board = read_board(root, now=NOW, lease_s=LEASE)
    shown = {i: (t.state, t.attempts, attempts_used(t), attempts_cell(t)) for i, t in board.tasks.items()}
    assert shown == {
        "TASK-001": ("done", 0, 1, "1/3"),     # done at its first attempt
        "TASK-002": ("done", 1, 2, "2/3"),     # one failed, the second landed
        "TASK-003": ("open", 0, 0, ""),        # nothing used: nothing shown
        "TASK-004": ("open", 1, 1, "1/3"),     # one failed, two left
        "TASK-005": ("claimed", 1, 2, "2/3"),  # its second attempt under way
        "TASK-006": ("failed", 2, 2, "2/2"),
    }


def test_states_from_the_file_and_counts(tmp_path):
    root = checkout(tmp_path, task("TASK-001", status="done"), task("TASK-002", status="failed"),
                    task("TASK-003", status="blocked", blocked_reason="needs a GPU"), task("TASK-004"),
                    extra={"current_tasks/TASK-004.lock": lock_text("TASK-004")})
    board = read_board(root, now=NOW, lease_s=LEASE)
    assert board.tasks["TASK-003"].reason == "needs a GPU"
    assert counts(board) == {"open": 0, "claimed": 1, "queued": 0, "done": 1, "done-unverified": 0, "failed": 1,
                             "blocked": 1}
    assert not all_settled(board)
    (root / "current_tasks/TASK-004.lock").unlink()
    (root / "tasks/TASK-004.md").write_text(render_task(task("TASK-004", status="done")), encoding="utf-8")
    assert all_settled(read_board(root, now=NOW, lease_s=LEASE))


def test_dependency_problems_missing_cycle_and_transitive():
    tasks = {t.id: t for t in [
        task("A", deps=["NOPE"]),
        task("B", deps=["C"]), task("C", deps=["D"]), task("D", deps=["B"]),  # a 3-cycle
        task("E", deps=["B"]),
        task("F", status="failed"), task("G", deps=["F"]), task("H", deps=["G"]),
        task("I", status="blocked"), task("J", deps=["I"]),
        task("K", status="done"), task("L", deps=["K"]),
        task("S", deps=["S"]),
        task("M", status="blocked", blocked_reason="dependency: ...", deps=["NOPE"]),
    ]}
    assert dependency_problems(tasks) == {
        "A": "depends on NOPE, which does not exist",
        "B": "dependency cycle: B -> C -> D -> B",
        "C": "dependency cycle: C -> D -> B -> C",
        "D": "dependency cycle: D -> B -> C -> D",
        "E": "depends on B, which is blocked",
        "G": "depends on F, which failed",
        "H": "depends on G, which is blocked",
        "J": "depends on I, which is blocked",
        "M": "depends on NOPE, which does not exist",  # still true once blocked: a re-check keeps it
        "S": "dependency cycle: S -> S",
    }


def test_board_marks_tasks_that_can_never_run_blocked(tmp_path):
    root = checkout(tmp_path, task("TASK-001", max_attempts=1), task("TASK-002", deps=["TASK-001"]),
                    task("TASK-003", deps=["TASK-009"]), task("TASK-004", deps=["TASK-007"]),
                    extra={"tasks/failures/TASK-001_attempt_1.md": "x", "tasks/TASK-007.md": "oops"})
    board = read_board(root, now=NOW, lease_s=LEASE)
    assert {i: (t.state, t.reason) for i, t in board.tasks.items()} == {
        "TASK-001": ("failed", "used all 1 attempts"),
        "TASK-002": ("blocked", "depends on TASK-001, which failed"),
        "TASK-003": ("blocked", "depends on TASK-009, which does not exist"),
        "TASK-004": ("blocked", "depends on TASK-007, whose task file is broken"),
    }
    assert all_settled(board) and claimable(board, role=None, now=NOW) == []


def test_claimable_waits_for_deps_and_orders_by_priority_then_id(tmp_path):
    root = checkout(tmp_path, task("TASK-1"), task("TASK-2", priority=5), task("TASK-10", priority=5),
                    task("TASK-3", priority=-1), task("TASK-4", deps=["TASK-5"]), task("TASK-5", status="done"),
                    task("TASK-6", deps=["TASK-1"]))
    board = read_board(root, now=NOW, lease_s=LEASE)
    assert claimable(board, role=None, now=NOW) == ["TASK-2", "TASK-10", "TASK-1", "TASK-4", "TASK-3"]
    assert board.tasks["TASK-6"].state == "open"  # waits for TASK-1, which can still run


def test_claimable_role_rules(tmp_path):
    root = checkout(tmp_path, task("T-any"), task("T-impl", role="implementer"), task("T-docs", role="docs"))
    board = read_board(root, now=NOW, lease_s=LEASE)
    assert claimable(board, role=None, now=NOW) == ["T-any", "T-impl"]
    assert claimable(board, role="implementer", now=NOW) == ["T-any", "T-impl"]
    assert claimable(board, role="docs", now=NOW) == ["T-any", "T-docs"]
    assert claimable(board, role="critic", now=NOW) == ["T-any"]


# records.py ----------------------------------------------------------------------------------------------

def test_failure_record_content():
    failures = [f"tests/test_calc.py:{n} tests/test_calc.py::test_{n} — assert {n} == 0" for n in range(25)]
    record = failure_record(task("TASK-001", title="Fix mean()"), 2, agent="a1",
                            verdict_summary="ERROR tests/test_calc.py:0 ...\n1 passed, 25 failed, 0 errors, 0 skipped",
                            failures=failures, agent_summary="I tried X.\n" + "y" * 5000 + "\nThen Z. sk-" + "a" * 30,
                            log_path="box:/w/runs/TASK-001_attempt_2.log", when=NOW)
    assert record.startswith("# TASK-001 attempt 2 of 3 failed: Fix mean()\n")
    assert "- agent: a1" in record and "- when: 2026-11-23 18:00Z" in record
    assert "- log: box:/w/runs/TASK-001_attempt_2.log" in record
    assert "1 passed, 25 failed, 0 errors, 0 skipped" in record
    assert "- tests/test_calc.py:19 tests/test_calc.py::test_19 — assert 19 == 0" in record
    assert "test_20 " not in record and "… and 5 more (see the log)" in record
    assert "I tried X." in record and "Then Z." in record and "characters cut" in record
    assert "sk-aaaa" not in record and "[redacted]" in record
    assert len(record) < 5000


def test_progress_lines_and_notes(tmp_path):
    line = progress_line("done", "TASK-001", "mean fixed\nand tested", agent="a1", when=NOW)
    assert line == "- 2026-11-23 18:00Z done TASK-001 (a1): mean fixed and tested"
    bare = progress_line("released", "TASK-002", "", agent="a2", when=NOW)
    assert bare == "- 2026-11-23 18:00Z released TASK-002 (a2)"
    (tmp_path / "PROGRESS.md").write_text("# Progress\n\nA human note.", encoding="utf-8")  # no final newline
    append_progress(tmp_path, line)
    append_progress(tmp_path, progress_line("failed", "TASK-002", "parser rewrite did not work", agent="a2", when=NOW))
    append_progress(tmp_path, progress_line("note", "TASK-003", "use the C tokenizer", agent="a1", when=NOW))
    lines = (tmp_path / "PROGRESS.md").read_text(encoding="utf-8").splitlines()
    assert lines[2:] == ["A human note.", line, "- 2026-11-23 18:00Z failed TASK-002 (a2): parser rewrite did not work",
                         "- 2026-11-23 18:00Z note TASK-003 (a1): use the C tokenizer"]
    notes = progress_notes(tmp_path)
    assert "A human note." in notes and "parser rewrite" in notes and "C tokenizer" in notes
    assert "mean fixed" not in notes  # done lines: the code shows them
    cut = progress_notes(tmp_path, limit_chars=70)
    assert cut.endswith("use the C tokenizer") and "earlier lines of PROGRESS.md cut" in cut
    assert progress_notes(tmp_path / "missing") == ""


def test_progress_notes_leave_out_the_header_team_init_writes(tmp_path):
    from clude.team.protocol.upstream import PROGRESS_HEADER
    (tmp_path / "PROGRESS.md").write_text(PROGRESS_HEADER, encoding="utf-8")
    assert progress_notes(tmp_path) == ""
    append_progress(tmp_path, progress_line("note", "TASK-001", "flaky network test", agent="a1", when=NOW))
    assert progress_notes(tmp_path) == "- 2026-11-23 18:00Z note TASK-001 (a1): flaky network test"


def test_append_progress_makes_the_file(tmp_path):
    append_progress(tmp_path, "- one")
    assert (tmp_path / "PROGRESS.md").read_text(encoding="utf-8") == "- one\n"


def test_earlier_failures_newest_last_and_cut(tmp_path):
    assert earlier_failures(tmp_path, "TASK-001") == ""
    for n in (1, 2, 10):
        write(tmp_path, {f"tasks/failures/TASK-001_attempt_{n}.md": f"# attempt {n}\n" + "x" * 100 + "\n"})
    write(tmp_path, {"tasks/failures/TASK-0011_attempt_1.md": "other"})
    everything = earlier_failures(tmp_path, "TASK-001")
    assert everything.index("# attempt 1") < everything.index("# attempt 2") < everything.index("# attempt 10")
    assert "other" not in everything
    newest = earlier_failures(tmp_path, "TASK-001", limit_chars=250)
    assert "# attempt 10" in newest and "# attempt 2" in newest and "# attempt 1\n" not in newest
    assert newest.startswith("(1 earlier failure record left out)")


# a lock whose lease lies far in the future -----------------------------------------------------------------

def _commit_at(root: Path, when: datetime, message: str) -> None:
    import os
    import subprocess
    stamp = f"@{int(when.timestamp())} +0000"
    env = {**os.environ, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
    for args in (["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)


def test_a_lease_far_in_the_future_ends_one_lease_after_the_lock_was_last_written(tmp_path):
    import subprocess

    from clude.team.protocol.git import Repo
    root = checkout(tmp_path, task("TASK-001"), task("TASK-002"), extra={
        "current_tasks/TASK-001.lock": lock_text("TASK-001", lease_s=10 * 365 * 86400, agent="greedy"),
        "current_tasks/TASK-002.lock": lock_text("TASK-002", agent="honest")})
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    _commit_at(root, NOW, "claims")
    repo = Repo(root)
    asked: list[str] = []

    def written_at(rel: str) -> float | None:
        asked.append(rel)
        return repo.commit_time(rel)

    within = read_board(root, now=NOW + timedelta(seconds=30), lease_s=LEASE, lock_written_at=written_at)
    assert within.tasks["TASK-001"].state == "claimed" and within.tasks["TASK-002"].state == "claimed"
    assert within.tasks["TASK-001"].lease_end == NOW + timedelta(seconds=LEASE)
    assert asked == ["current_tasks/TASK-001.lock"]  # a lock with a normal lease costs no git call
    assert claimable(within, role=None, now=NOW + timedelta(seconds=30)) == []
    later = NOW + timedelta(seconds=LEASE + 1)
    after = read_board(root, now=later, lease_s=LEASE, lock_written_at=written_at)
    assert after.tasks["TASK-001"].state == "open" and after.tasks["TASK-001"].lock.agent == "greedy"
    assert claimable(after, role=None, now=later) == ["TASK-001", "TASK-002"]
    # a renewal (the lock file written again) holds the task one more lease from then
    renewal = NOW + timedelta(seconds=50)
    (root / "current_tasks/TASK-001.lock").write_text(
        lock_text("TASK-001", claimed=renewal, lease_s=10 * 365 * 86400, agent="greedy"), encoding="utf-8")
    _commit_at(root, renewal, "renew")
    renewed_board = read_board(root, now=later, lease_s=LEASE, lock_written_at=written_at)
    assert renewed_board.tasks["TASK-001"].state == "claimed"
    assert renewed_board.tasks["TASK-001"].lease_end == renewal + timedelta(seconds=LEASE)
    assert read_board(root, now=renewal + timedelta(seconds=LEASE), lease_s=LEASE,
                      lock_written_at=written_at).tasks["TASK-001"].state == "open"


def test_a_failed_attempt_clears_the_notes_that_the_tasks_agent_died_at_start(tmp_path):
    """Its agent ran and its work was judged: the notes of dying at start are old news, so an outage
    that noted it once cannot add up with a later one to block it."""
    from datetime import datetime, timezone

    from clude.team.board.books import write_failure, write_start_failure
    from clude.team.board.layout import task_path
    from clude.team.board.tasks import Task, parse_task, render_task

    (tmp_path / "tasks").mkdir()
    (tmp_path / task_path("T1")).write_text(render_task(Task(id="T1", title="t")))
    when = datetime(2026, 12, 6, tzinfo=timezone.utc)
    assert not write_start_failure(tmp_path, "T1", "exit 2", agent="a1", when=when)
    assert parse_task((tmp_path / task_path("T1")).read_text(), "T1").failed_at_start == ["a1"]
    write_failure(tmp_path, "T1", 1, "record", "tests fail", title="t", max_attempts=3, agent="a2", when=when)
    assert parse_task((tmp_path / task_path("T1")).read_text(), "T1").failed_at_start == []
    assert not write_start_failure(tmp_path, "T1", "exit 2", agent="a1", when=when)  # one note again, not two
