"""catalog domain (built by later issues)."""
