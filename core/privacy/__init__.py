"""Data protection: retention, plate pseudonyms, the register of processing activities and
data-subject requests, each package declaring its part through `Privacy` (contract.py)."""

from .contract import Context, Found, Privacy, Processing, Subject, UserColumn

__all__ = ["Context", "Found", "Privacy", "Processing", "Subject", "UserColumn"]
