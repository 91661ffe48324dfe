"""`clude team run --from-tests`: the upstream's failing tests become the team's tasks, at the start and
whenever the code on main changes (board/from_tests.py groups them by cause and never makes a task twice
for the same tests). The suite runs in the monitor's clone, sandboxed as the workers' tests are, through
the machine's verdict cache: a main the merge queue has just verified costs nothing."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from clude.gitcli import GitError
from clude.harness.verdict import Status
from clude.sandbox import Sandbox, allowed_env
from clude.team.board.board import Board
from clude.team.board.from_tests import new_tasks
from clude.team.board.layout import is_team_path
from clude.team.protocol.admin import add_tasks
from clude.team.protocol.git import Repo, is_local_url
from clude.team.protocol.sync import UpstreamRejected
from clude.team.work.verify import Judge


def monitor_judge(root: Path, settings, url: str, state_dir: Path, sandbox: Sandbox) -> Judge:
    """How the monitor runs the upstream's suite: as the workers do (sandboxed, no secrets, the user's
    repository, the upstream and the workers' folders hidden), its reports in the state dir."""
    upstream = [Path(url).expanduser()] if is_local_url(url) else []
    return Judge(settings.test, allowed_env(os.environ, settings.test.pass_env), sandbox=sandbox,
                 state_dir=state_dir / "team" / "harness-monitor", hidden=(root, *upstream, state_dir / "agents"))


def suite_summary(judge: Judge, checkout: Path) -> str:
    """How the suite stands on a checkout, in a line or a few (for the planner of --forever)."""
    verdict = judge.run(checkout)
    counts = verdict.counts
    line = f"{verdict.status.value}: {counts.passed} passed, {counts.failed} failed, {counts.errors} errors"
    failing = [f"- {f.id}: {f.reason.splitlines()[0][:150] if f.reason.strip() else f.kind}"
               for f in verdict.failures[:15]]
    return "\n".join([line, *failing])


class TestsToTasks:
    """What the monitor asks whenever main moved: make tasks of the failures no task stands for yet."""

    def __init__(self, root: Path, settings, url: str, state_dir: Path, *, sandbox: Sandbox,
                 echo: Callable[[str], None]):
        self.judge = monitor_judge(root, settings, url, state_dir, sandbox)
        self.max_attempts = settings.team.max_attempts
        self.echo = echo
        self.checked: str | None = None  # the last main whose code was looked at
        self.green = False  # the last look found no failing test

    def check(self, repo: Repo, board: Board) -> list[str]:
        """Run the suite on `repo`'s checkout of main (when its code changed since the last look) and add
        a task per new cause of failure in one push: the ids added."""
        head = repo.head()
        if self.checked is not None and all(map(is_team_path, repo.changed_files(self.checked, head))):
            return []
        self.checked = head
        verdict = self.judge.run(repo.path)
        self.green = verdict.status is Status.PASSED
        if verdict.status is Status.PASSED or not verdict.failures:
            if verdict.status not in (Status.PASSED, Status.FAILED):
                self.echo(f"--from-tests: the upstream's suite did not run to a verdict ({verdict.status.value}: "
                          f"{verdict.reason}); no task made from it")
            return []
        fields = new_tasks(verdict.failures, {tid: item.task for tid, item in board.tasks.items()},
                           max_attempts=self.max_attempts)
        if not fields:
            return []
        count = sum(len(f["tests"].split()) for f in fields)
        try:
            tasks, _ = add_tasks(repo, fields, why=f"made from {count} failing test(s) of the upstream's suite "
                                                   f"(--from-tests), one task per cause")
        except (GitError, UpstreamRejected) as error:  # the monitor goes on; asked again at its next look
            self.checked = None
            self.echo(f"--from-tests: the tasks made from failing tests could not be added: {error}")
            return []
        self.echo(f"--from-tests: {len(tasks)} task(s) made from failing tests: {', '.join(t.id for t in tasks)}")
        return [t.id for t in tasks]
