"""`python -m core` runs the civicsense command."""

from core.cli import main

main()
