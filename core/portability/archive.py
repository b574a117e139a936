"""The export archive: one tar.gz holding a folder of CSV files, their schemas, a README
and manifest.json, which lists every other file with its SHA-256.

Reading verifies before anything is used: the manifest's format, every listed file present
with its size and digest, nothing else in the archive. A truncated or altered archive is
refused with `ArchiveError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

FORMAT = "civicsense-tenant-export"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_CHUNK = 1 << 20


class ArchiveError(ValueError):
    """The archive is unreadable, incomplete, altered or of another format."""


@dataclass
class FileEntry:
    """One file of the archive; data files name their table, columns and row count."""

    path: str
    sha256: str
    bytes: int
    table: str | None = None
    columns: list[str] | None = None
    rows: int | None = None
    schema: str | None = None


@dataclass
class Manifest:
    """What manifest.json holds."""

    civicsense_version: str
    tenant: dict[str, Any]
    exported_at: str
    files: list[FileEntry] = field(default_factory=list)
    excluded_columns: dict[str, list[str]] = field(default_factory=dict)
    excluded_tables: dict[str, str] = field(default_factory=dict)
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    @property
    def data_files(self) -> list[FileEntry]:
        """The CSV files, in loading order."""
        return [entry for entry in self.files if entry.table is not None]

    def to_json(self) -> bytes:
        """The manifest as written in the archive."""
        return json.dumps(asdict(self), indent=2, ensure_ascii=False).encode() + b"\n"

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        """Parse and check the format; ArchiveError when it is not ours."""
        try:
            data = json.loads(raw)
            if data.get("format") != FORMAT:
                raise ArchiveError(f"not a civicsense tenant export ({MANIFEST} format)")
            if data.get("format_version") != FORMAT_VERSION:
                raise ArchiveError(
                    f"export format version {data.get('format_version')} is not supported"
                    f" (this civicsense reads version {FORMAT_VERSION})"
                )
            files = [FileEntry(**entry) for entry in data.pop("files")]
            return cls(files=files, **data)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            if isinstance(exc, ArchiveError):
                raise
            raise ArchiveError(f"{MANIFEST} is malformed: {exc}") from None


def copy_hashing(source: IO[bytes], target: IO[bytes]) -> tuple[str, int]:
    """Copy a stream; its SHA-256 (hex) and size."""
    digest, size = hashlib.sha256(), 0
    while chunk := source.read(_CHUNK):
        digest.update(chunk)
        target.write(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def file_sha256(path: Path) -> str:
    """The SHA-256 (hex) of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write(folder: Path, manifest: Manifest, output: Path) -> None:
    """Pack `folder` (manifest first) as `output`, which appears only once complete."""
    (folder / MANIFEST).write_bytes(manifest.to_json())
    root = PurePosixPath(output.name.split(".")[0])
    partial = output.with_name(output.name + ".partial")
    with tarfile.open(partial, "w:gz") as tar:
        for name in [MANIFEST, *(entry.path for entry in manifest.files)]:
            tar.add(folder / name, arcname=str(root / name), recursive=False)
    os.replace(partial, output)


def unpack(archive: Path, folder: Path) -> Manifest:
    """Verify `archive` and extract the files its manifest lists into `folder`."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = {_relative(m.name): m for m in tar.getmembers() if m.isfile()}
            manifest_member = members.pop(MANIFEST, None)
            if manifest_member is None:
                raise ArchiveError(f"no {MANIFEST} in the archive")
            manifest = Manifest.from_json(_read(tar, manifest_member))
            listed = {entry.path for entry in manifest.files}
            if unexpected := sorted(set(members) - listed):
                raise ArchiveError(f"files not in the manifest: {', '.join(unexpected)}")
            for entry in manifest.files:
                _extract_checked(tar, members.get(entry.path), entry, folder)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise ArchiveError(f"the archive cannot be read (truncated or damaged?): {exc}") from None
    return manifest


def _relative(name: str) -> str:
    """A member's path below the archive's top folder."""
    parts = PurePosixPath(name).parts
    return str(PurePosixPath(*parts[1:])) if len(parts) > 1 else name


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    stream = tar.extractfile(member)
    assert stream is not None
    return stream.read()


def _extract_checked(
    tar: tarfile.TarFile, member: tarfile.TarInfo | None, entry: FileEntry, folder: Path
) -> None:
    if member is None:
        raise ArchiveError(f"{entry.path} is listed in the manifest but missing")
    path = PurePosixPath(entry.path)
    if path.is_absolute() or ".." in path.parts:
        raise ArchiveError(f"unsafe path in the manifest: {entry.path}")
    target = folder / path
    target.parent.mkdir(parents=True, exist_ok=True)
    stream = tar.extractfile(member)
    assert stream is not None
    with target.open("wb") as out:
        sha256, size = copy_hashing(stream, out)
    if size != entry.bytes or sha256 != entry.sha256:
        raise ArchiveError(f"{entry.path} does not match its checksum in the manifest")
