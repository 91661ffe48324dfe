"""What the upstream holds, read and written as files: the layout, tasks, locks, the board (task states,
claim order), failure records and PROGRESS.md, and what settling an attempt writes."""
