"""Reversibility: a tenant's complete data exported as documented CSV files, and imported back."""
