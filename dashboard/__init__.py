"""dashboard domain (built by later issues)."""
