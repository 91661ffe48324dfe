"""The run's budgets (tokens, cost, wall time) as one pure rule."""

from __future__ import annotations

from clude.config.settings import AgentConfig
from clude.llm.base import Usage


def over_budget(config: AgentConfig, usage: Usage, elapsed_s: float) -> str | None:
    """Why the run must stop now, or None while it is within every budget it has."""
    tokens = usage.input_tokens + usage.output_tokens
    if config.max_tokens is not None and tokens >= config.max_tokens:
        return f"token budget used: {tokens:,} of {config.max_tokens:,} tokens ([agent] max_tokens)"
    if config.max_cost_usd is not None and (usage.cost_usd or 0.0) >= config.max_cost_usd:
        return (f"cost budget used: ${usage.cost_usd:.4f} of ${config.max_cost_usd:.4f} "
                "([agent] max_cost_usd)")
    if config.max_wall_s is not None and elapsed_s >= config.max_wall_s:
        return f"time budget used: {elapsed_s:.0f} s of {config.max_wall_s:.0f} s ([agent] max_wall_s)"
    return None
