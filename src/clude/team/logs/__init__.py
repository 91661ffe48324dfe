"""What a team reports and how it is read back: events.jsonl and the agents' logs (events), reading them
(logread) and `team logs analyze` (analyze)."""
