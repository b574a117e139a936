"""Folders for the servers the tests start."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def service_dir(name: str) -> Iterator[Path]:
    """A data folder for a server that runs as another user (PostgreSQL and mosquitto
    drop root). Not under pytest's temporary root: every new pytest session of the
    same user makes that folder private again, locking a running server out of its data."""
    folder = Path(tempfile.mkdtemp(prefix=f"civicsense-test-{name}-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
