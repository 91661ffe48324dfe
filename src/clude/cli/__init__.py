"""The command line: parsing, printing and exit codes only. Nothing imports this package."""
