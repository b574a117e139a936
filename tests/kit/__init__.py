"""Reusable pieces for the test suite."""
