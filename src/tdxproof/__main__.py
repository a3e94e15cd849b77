"""`python -m tdxproof` runs the command line."""

from tdxproof.cli import main

main()
