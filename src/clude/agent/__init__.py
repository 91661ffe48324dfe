"""The single agent: planner, state machine, step loop, tools, sessions (issue 4)."""
