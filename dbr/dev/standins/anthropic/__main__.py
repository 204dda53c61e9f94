"""`python -m dbr.dev.standins.anthropic --port N`."""

from dbr.dev.standins.anthropic.server import main

main()
