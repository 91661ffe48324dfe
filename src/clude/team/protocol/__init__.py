"""How workers change the upstream: clones and classified pushes (git), one change that lands whole or
is retried (sync), push turns, task leases, team init (upstream) and the command line's private view (admin)."""
