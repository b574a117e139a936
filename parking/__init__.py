"""parking domain (built by later issues)."""
