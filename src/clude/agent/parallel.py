"""Independent ready steps at once: each in its own git worktree and thread, merged back one by one."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from clude.agent.step import StepOutcome
from clude.agent.merge import merge_back
from clude.agent.worktrees import create_worktree, prune_worktrees, remove_worktree, snapshot, worktree_changes

if TYPE_CHECKING:
    from clude.agent.loop import AgentRun


def run_batch(run: "AgentRun", step_ids: list[str]) -> list[tuple[str, StepOutcome]]:
    """Run `step_ids` concurrently from one snapshot of the project; a step whose changes conflict
    with what the project holds when it is merged back fails (and the project keeps its files)."""
    root = run.root
    folder = run.session.path / "worktrees"
    if folder.exists():  # left by a killed batch
        prune_worktrees(root, folder)
        shutil.rmtree(folder, ignore_errors=True)
    base = snapshot(root)
    paths = {step_id: folder / step_id for step_id in step_ids}
    for step_id, path in paths.items():
        run.state.steps[step_id].worktree = str(path)
    run.session.save()

    def work(step_id: str) -> StepOutcome:
        # made in the step's own thread: the checkouts of a batch run at the same time
        workdir = create_worktree(root, base, paths[step_id])  # root's place in the worktree
        return run.run_one(step_id, workdir)

    outcomes: list[tuple[str, StepOutcome]] = []
    try:
        with ThreadPoolExecutor(max_workers=len(step_ids), thread_name_prefix="step") as pool:
            futures = {step_id: pool.submit(work, step_id) for step_id in step_ids}
            try:
                results = {step_id: future.result() for step_id, future in futures.items()}
            except BaseException:
                run.stopping = True  # the other steps stop at their next turn
                raise
        for step_id in step_ids:
            outcome = results[step_id]
            if outcome.status == "done":
                merged = merge_back(root, base, worktree_changes(paths[step_id], base))
                if not merged.ok:
                    outcome = StepOutcome("failed", "its changes conflict with a step that ran at "
                                                    f"the same time: {merged.describe()}",
                                          outcome.iterations)
                else:  # recorded at once: a kill now must not run (and merge) it a second time
                    record = run.state.steps[step_id]
                    record.status, record.summary, record.worktree = "done", outcome.reason, None
                    run.session.save()
            outcomes.append((step_id, outcome))
    finally:
        for path in paths.values():
            remove_worktree(root, path)
    return outcomes
