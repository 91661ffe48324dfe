"""`clude team`: parallel agents on one git repository — a bare upstream, task and lock files that git
arbitrates, workers that claim, work, verify and push, failure records and attempt limits (docs/team.md)."""
