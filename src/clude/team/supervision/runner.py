"""Local worker processes for `clude team run`: roles, starting one, stopping them all."""

from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

STOP_GRACE_S = 10.0  # SIGTERM, then SIGKILL: a worker releases its lock on SIGTERM
# The signal `team run` sends its workers when every task is settled: they finish (exit 0, "finished"),
# not "interrupted".
FINISH_SIGNAL = signal.SIGUSR1


@dataclass
class WorkerProcess:
    agent_id: str
    role: str | None
    proc: subprocess.Popen
    log: Path
    log_start: int = 0  # where this run's output begins in the log (restarts append)

    @property
    def exit_code(self) -> int | None:
        return self.proc.poll()


def assign_roles(agents: int, roles: dict[str, int]) -> list[tuple[str, str | None]]:
    """(agent id, role) for each worker: the roles in the order given, the rest without a role."""
    named = [role for role, count in roles.items() for _ in range(count)]
    if len(named) > agents:
        raise ValueError(f"--roles asks for {len(named)} workers but --agents is {agents}")
    return [(f"a{i + 1}", named[i] if i < len(named) else None) for i in range(agents)]


def parse_roles(text: str | None) -> dict[str, int]:
    """'implementer=3,docs=1' -> {'implementer': 3, 'docs': 1}; a bad item is a ValueError naming it."""
    roles: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        name, _, count = item.partition("=")
        if not name.strip() or not count.strip().isdigit() or int(count) < 1:
            raise ValueError(f"--roles item {item!r}: write ROLE=COUNT, e.g. implementer=3")
        roles[name.strip()] = roles.get(name.strip(), 0) + int(count)
    return roles


def start_worker(root: Path, upstream: str, agent_id: str, role: str | None, *, backend: str,
                 command: str | None, forever: bool, env: dict[str, str],
                 exit_with_parent: bool = False, sandbox: str = "on") -> WorkerProcess:
    from clude.harness.runner import clude_dir

    state = clude_dir(root)
    (state / "logs").mkdir(exist_ok=True)
    log = state / "logs" / f"{agent_id}.out"
    argv = [sys.executable, "-m", "clude", "team", "worker", "--upstream", upstream, "--agent-id", agent_id,
            "--backend", backend, "--workdir", str(state / "agents" / agent_id), "--state-dir", str(state),
            "-C", str(root)]
    argv += ["--role", role] if role else []
    argv += ["--command", command] if command else []
    argv += ["--forever"] if forever else []
    argv += ["--exit-with-parent"] if exit_with_parent else []
    argv += ["--sandbox", sandbox]
    # A process group of its own (stop signals reach it and what it starts), in the team run's session:
    # where the kernel schedules sessions as groups (autogroups), all the workers of a run are one group,
    # inside which a worker's turn at the upstream runs ahead of every worker's other work (turns.py).
    with open(log, "ab") as out:
        start = out.tell()
        proc = subprocess.Popen(argv, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, process_group=0, preexec_fn=_ignore_finish)
    return WorkerProcess(agent_id, role, proc, log, start)


def _ignore_finish() -> None:
    """In the new worker process, before it runs: the finish signal is ignored until the worker
    installs its own handler (its default action would kill a worker still starting)."""
    signal.signal(FINISH_SIGNAL, signal.SIG_IGN)

