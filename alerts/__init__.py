"""alerts domain (built by later issues)."""
