"""`python -m js2mail` runs the CLI."""

from js2mail.cli import main

main()
