"""`python -m buildflow` runs the command line."""

from buildflow.cli import main

main()
