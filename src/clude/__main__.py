"""`python -m clude` is the `clude` command."""

from clude.cli.main import main

main()
