"""Keeping a team running: `team run`'s worker processes (runner), the monitor that restarts them, and
the crash-loop rules (pure)."""
