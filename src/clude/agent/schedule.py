"""Scheduling a plan: which steps are ready, which can never run (and why), replans, and order."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from clude.agent.plan import Plan, StepStatus, validate_plan


def ready_steps(plan: Plan, statuses: Mapping[str, StepStatus], *, done_ids: Collection[str] = ()) -> list[str]:
    """Pending steps whose dependencies are all done (in statuses or in done_ids), in plan order."""
    done = set(done_ids) | {sid for sid, st in statuses.items() if st == "done"}
    return [s.id for s in plan.steps
            if statuses.get(s.id, "pending") == "pending" and all(d in done for d in s.dependencies)]


def topological_order(plan: Plan) -> list[str]:
    """Step ids with every step after its dependencies; among ready steps, plan order first."""
    order: list[str] = []
    ids, remaining = set(plan.ids), list(plan.steps)
    while remaining:  # a Plan has no cycle, so some remaining step is always ready
        n = next(n for n, s in enumerate(remaining) if all(d in order or d not in ids for d in s.dependencies))
        order.append(remaining.pop(n).id)
    return order


def propagate_blocked(plan: Plan, statuses: Mapping[str, StepStatus], reasons: Mapping[str, str],
                      ) -> dict[str, tuple[StepStatus, str]]:
    """The pending steps that can never run because a dependency (transitively) failed or is blocked,
    each -> ("blocked", "depends on 'b', which is blocked: depends on 'a', which failed: <reason>")."""
    status = {s.id: statuses.get(s.id, "pending") for s in plan.steps}
    why = dict(reasons)
    out: dict[str, tuple[StepStatus, str]] = {}
    for sid in topological_order(plan):
        if status[sid] != "pending":
            continue
        for dep in plan.step(sid).dependencies:
            if status.get(dep) in ("failed", "blocked"):
                reason = f"depends on '{dep}', which {'failed' if status[dep] == 'failed' else 'is blocked'}"
                reason += f": {why[dep]}" if why.get(dep) else ""
                out[sid] = ("blocked", reason)
                status[sid], why[sid] = "blocked", reason
                break
    return out


def _cause(plan: Plan, status: Mapping[str, StepStatus], sid: str) -> str | None:
    """The first dependency of sid that failed or is blocked."""
    return next((d for d in plan.step(sid).dependencies if status.get(d) in ("failed", "blocked")), None)


def deadlock(plan: Plan, statuses: Mapping[str, StepStatus], reasons: Mapping[str, str], *,
             done_ids: Collection[str] = ()) -> str | None:
    """None while a step is in progress or ready, or when all are done; otherwise a report naming each
    step that can never run with the chain that blocks it, ending at the failed step(s) and their reasons:
    "deadlock: 2 steps can never run: 'c' <- 'b' <- 'a' failed: <reason of a>"."""
    status = {s.id: statuses.get(s.id, "pending") for s in plan.steps}
    if all(st == "done" for st in status.values()) or "in_progress" in status.values():
        return None
    if ready_steps(plan, status, done_ids=done_ids):
        return None
    why = dict(reasons)
    for sid, (st, reason) in propagate_blocked(plan, status, reasons).items():
        status[sid] = st
        why.setdefault(sid, reason)
    blocked = [s.id for s in plan.steps if status[s.id] in ("blocked", "pending")]
    chains: list[list[str]] = []
    for sid in blocked:
        chain = [sid]
        while (cause := _cause(plan, status, chain[-1])) is not None and cause not in chain:
            chain.append(cause)
        chains.append(chain)
    inner = {sid for chain in chains for sid in chain[1:]}
    parts = []
    for chain in chains:
        if chain[0] in inner:
            continue
        root = chain[-1]
        verb = {"failed": "failed", "pending": "is waiting"}.get(status[root], "blocked")
        parts.append(" <- ".join(f"'{s}'" for s in chain) + f" {verb}" + (f": {why[root]}" if why.get(root) else ""))
    for s in plan.steps:  # failed steps nothing depends on still explain why the plan cannot finish
        if status[s.id] == "failed" and s.id not in inner:
            parts.append(f"'{s.id}' failed" + (f": {why[s.id]}" if why.get(s.id) else ""))
    n = len(blocked)
    head = f"{n} step{'s' if n != 1 else ''} can never run" if n else "no step can run"
    return f"deadlock: {head}: " + "; ".join(parts)


def merge_replan(old: Plan, statuses: Mapping[str, StepStatus], new: Plan,
                 ) -> tuple[Plan, dict[str, StepStatus]]:
    """The old plan's done steps (first, in their order, done), then the new plan's steps (pending),
    under the new title. Raises PlanError if the new plan reuses a done id or names an unknown step."""
    kept = [s for s in old.steps if statuses.get(s.id, "pending") == "done"]
    kept_ids = {s.id for s in kept}
    kept = [s.model_copy(update={"dependencies": [d for d in s.dependencies if d in kept_ids]}) for s in kept]
    new = validate_plan(new.model_dump(), done_ids=kept_ids)
    merged = Plan(title=new.title, steps=kept + list(new.steps))
    merged_statuses: dict[str, StepStatus] = {s.id: "done" for s in kept}
    merged_statuses.update({s.id: "pending" for s in new.steps})
    return merged, merged_statuses
