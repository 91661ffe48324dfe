"""Teams: board, worker loop, monitor, backends (issues 5 and 6)."""
