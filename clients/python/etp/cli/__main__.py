"""`python -m etp.cli` runs the `etp` command."""

from etp.cli.app import main

main()
