"""`civicsense tenant create`, `civicsense devices import` and `civicsense db upgrade`.

Run through click's CliRunner on the real command with a real database, as a
technician would from a shell with CIVICSENSE_* variables set.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg import sql

from core import crypto
from core.cli import cli
from core.db import with_database
from core.settings import Settings
from devices import service

SECRET_KEY = "q1o4l7oQ5d0sE6S3C0mQbq1a9rZKDw8LMRS0iVt1H6w="
APP_KEY = "00112233445566778899AABBCCDDEEFF"

MIXED = f"""\
dev_eui,model,name,join_eui,app_key,lat,lon,site,bay
24e124136c225107,milesight-em300-sld,Chaufferie,,,45.7640,4.8357,Mairie,
24-E1-24-13-6C-22-51-08,milesight-am103,Salle du conseil,,,,,Mairie,
24e124zz6c225109,milesight-am103,EUI invalide,,,,,,
24e1241300000001,acme-unknown,Modèle inconnu,,,,,,
24e1241300000002,milesight-am103,Trop au nord,,,91,4.8,,
24:e1:24:13:6c:22:51:07,milesight-am103,Doublon,,,,,,
24e1241300000003,bosch-tps110,Place A17,70b3d57ed0000001,{APP_KEY},45.76,4.83,Rue Mercière,A17
"""
MIXED_ERRORS = {
    4: "24e124zz6c225109",
    5: "24e1241300000001",
    6: "24e1241300000002",
    7: "24e124136c225107",
}
MIXED_CREATED = {"24e124136c225107", "24e124136c225108", "24e1241300000003"}

VALID = """\
dev_eui,model,name,site
24e124136c225107,milesight-em300-sld,Chaufferie,Mairie
24e124136c225108,milesight-am103,Salle du conseil,Mairie
"""


@pytest.fixture(autouse=True)
def _no_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from an empty folder: no stray `.env` is read by Settings."""
    monkeypatch.chdir(tmp_path)
    for name in ("CIVICSENSE_DATABASE_URL", "CIVICSENSE_SECRET_KEY", "CIVICSENSE_MQTT_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def run(database_url: str) -> Any:
    """Invoke `civicsense ARGS...` with the test database and secret key in the environment."""

    def invoke(*args: str, secret_key: str | None = SECRET_KEY) -> Result:
        runner = CliRunner(
            env={"CIVICSENSE_DATABASE_URL": database_url, "CIVICSENSE_SECRET_KEY": secret_key}
        )
        return runner.invoke(cli, list(args))

    return invoke


@pytest.fixture
def lyon(run: Any) -> None:
    """Tenant `lyon`, created through the CLI."""
    result = run("tenant", "create", "lyon", "--name", "Ville de Lyon")
    assert result.exit_code == 0, result.output


def _write(folder: Path, name: str, text: str, *, encoding: str = "utf-8") -> str:
    path = folder / name
    path.write_bytes(text.encode(encoding))
    return str(path)


def _devices(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT * FROM devices ORDER BY id").fetchall()


def _by_eui(conn: psycopg.Connection) -> dict[str, dict[str, Any]]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        rows = cur.execute(
            "SELECT d.*, t.slug AS tenant FROM devices d JOIN tenants t ON t.id = d.tenant_id"
        ).fetchall()
    return {row["dev_eui"]: row for row in rows}


def _error_lines(output: str) -> dict[int, str]:
    """line number → the report's text for it."""
    return {int(m[1]): m[2] for m in re.finditer(r"^line (\d+): (.*)$", output, re.MULTILINE)}


# --- tenant create -----------------------------------------------------------


def test_tenant_create_stores_the_tenant(run: Any, conn: psycopg.Connection) -> None:
    result = run("tenant", "create", "lyon", "--name", "Ville de Lyon")
    assert result.exit_code == 0, result.output
    assert "lyon" in result.output
    assert conn.execute("SELECT slug, name, timezone FROM tenants").fetchall() == [
        ("lyon", "Ville de Lyon", "Europe/Paris")
    ]


def test_duplicate_tenant_is_an_error_that_names_it(run: Any, conn: psycopg.Connection) -> None:
    assert run("tenant", "create", "lyon", "--name", "Ville de Lyon").exit_code == 0
    result = run("tenant", "create", "lyon", "--name", "Lyon again")
    assert result.exit_code == 1
    assert "lyon" in result.output and "already exists" in result.output
    assert "Traceback" not in result.output
    assert conn.execute("SELECT name FROM tenants").fetchall() == [("Ville de Lyon",)]


def test_invalid_tenant_slug_is_a_usage_error(run: Any, conn: psycopg.Connection) -> None:
    result = run("tenant", "create", "Ville de Lyon", "--name", "Ville de Lyon")
    assert result.exit_code == 2
    assert conn.execute("SELECT count(*) FROM tenants").fetchone() == (0,)


def test_database_url_option_works_without_the_environment(
    database_url: str, conn: psycopg.Connection
) -> None:
    runner = CliRunner(env={"CIVICSENSE_DATABASE_URL": None})
    result = runner.invoke(
        cli, ["--database-url", database_url, "tenant", "create", "paris", "--name", "Paris"]
    )
    assert result.exit_code == 0, result.output
    assert conn.execute("SELECT slug FROM tenants").fetchall() == [("paris",)]


def test_commands_without_a_database_say_how_to_give_one(tmp_path: Path) -> None:
    runner = CliRunner(env={"CIVICSENSE_DATABASE_URL": None})
    result = runner.invoke(cli, ["tenant", "create", "lyon", "--name", "Lyon"])
    assert result.exit_code == 2
    assert "CIVICSENSE_DATABASE_URL" in result.output


# --- db upgrade --------------------------------------------------------------


def test_db_upgrade_on_a_migrated_database_applies_nothing(
    run: Any, conn: psycopg.Connection
) -> None:
    tables_before = conn.execute(
        "SELECT relname FROM pg_class WHERE relkind IN ('r', 'p') ORDER BY 1"
    ).fetchall()
    result = run("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "applied 0 migration(s)" in result.output
    tables_after = conn.execute(
        "SELECT relname FROM pg_class WHERE relkind IN ('r', 'p') ORDER BY 1"
    ).fetchall()
    assert tables_after == tables_before


def test_db_upgrade_of_an_empty_database_prints_what_it_applied_and_no_sql_rows(
    pg_admin_url: str,
) -> None:
    name = f"cs_empty_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        env = {"CIVICSENSE_DATABASE_URL": with_database(pg_admin_url, name),
               "CIVICSENSE_SECRET_KEY": SECRET_KEY}  # fmt: skip
        result = CliRunner(env=env).invoke(cli, ["db", "upgrade"])
        assert result.exit_code == 0, result.output
        assert re.fullmatch(r"applied [1-9]\d* migration\(s\): [\w, ]+\n", result.stdout), (
            result.stdout
        )
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


# --- devices import ----------------------------------------------------------


@pytest.mark.usefixtures("lyon")
def test_import_registers_valid_lines_and_reports_each_bad_line(
    run: Any, conn: psycopg.Connection, tmp_path: Path
) -> None:
    result = run("devices", "import", _write(tmp_path, "parc.csv", MIXED), "--tenant", "lyon")
    assert result.exit_code == 1, result.output
    errors = _error_lines(result.output)
    assert set(errors) == set(MIXED_ERRORS), result.output
    for line, dev_eui in MIXED_ERRORS.items():
        assert dev_eui in errors[line], errors[line]
    assert "line 2" in errors[7], "the duplicate must name the line it repeats"
    assert "3 created" in result.output and "4 error" in result.output

    devices = _by_eui(conn)
    assert set(devices) == MIXED_CREATED
    assert {d["tenant"] for d in devices.values()} == {"lyon"}
    first = devices["24e124136c225107"]
    assert (first["model"], first["name"], first["site"]) == (
        "milesight-em300-sld",
        "Chaufferie",
        "Mairie",
    )
    assert (first["lat"], first["lon"]) == (45.764, 4.8357)
    assert devices["24e124136c225108"]["name"] == "Salle du conseil"  # separators removed
    bay = devices["24e1241300000003"]
    assert (bay["join_eui"], bay["bay"], bay["site"]) == ("70b3d57ed0000001", "A17", "Rue Mercière")


@pytest.mark.usefixtures("lyon")
def test_error_report_says_what_is_wrong(run: Any, tmp_path: Path) -> None:
    result = run("devices", "import", _write(tmp_path, "parc.csv", MIXED), "--tenant", "lyon")
    errors = _error_lines(result.output)
    assert "16 hexadecimal digits" in errors[4]
    assert "unknown model" in errors[5] and "milesight-am103" in errors[5]  # lists known ones
    assert "lat" in errors[6]
    assert "already" in errors[7]


@pytest.mark.usefixtures("lyon")
def test_app_key_is_stored_encrypted_and_never_printed(
    run: Any, conn: psycopg.Connection, tmp_path: Path
) -> None:
    bad_key = "0123456789abcdef0123456789abcde"  # 31 digits
    text = MIXED + f"24e1241300000004,bosch-tps110,Place A18,,{bad_key},,,,A18\n"
    result = run("devices", "import", _write(tmp_path, "parc.csv", text), "--tenant", "lyon")
    assert _error_lines(result.output).keys() == {*MIXED_ERRORS, 9}
    for secret in (APP_KEY, APP_KEY.lower(), bad_key):
        assert secret not in result.output
    assert result.stderr is not None and APP_KEY.lower() not in result.stderr

    stored = conn.execute(
        "SELECT app_key_encrypted FROM devices WHERE dev_eui = '24e1241300000003'"
    ).fetchone()
    assert stored is not None and stored[0] is not None
    token = bytes(stored[0])
    assert APP_KEY.lower().encode() not in token and APP_KEY.encode() not in token
    assert bytes.fromhex(APP_KEY) not in token
    settings = Settings(_env_file=None, secret_key=SECRET_KEY)  # type: ignore[call-arg]
    assert crypto.decrypt(settings, token) == APP_KEY.lower()
    without_key = conn.execute(
        "SELECT count(*) FROM devices WHERE app_key_encrypted IS NOT NULL"
    ).fetchone()
    assert without_key == (1,)


@pytest.mark.usefixtures("lyon")
def test_app_key_line_without_a_secret_key_is_an_error_for_that_line(
    run: Any, conn: psycopg.Connection, tmp_path: Path
) -> None:
    path = _write(tmp_path, "parc.csv", MIXED)
    result = run("devices", "import", path, "--tenant", "lyon", secret_key=None)
    assert result.exit_code == 1
    errors = _error_lines(result.output)
    assert "CIVICSENSE_SECRET_KEY" in errors[8]
    assert APP_KEY not in result.output and APP_KEY.lower() not in result.output
    assert set(_by_eui(conn)) == MIXED_CREATED - {"24e1241300000003"}


@pytest.mark.usefixtures("lyon")
def test_french_excel_export_with_semicolons_and_bom_is_read(
    run: Any, conn: psycopg.Connection, tmp_path: Path
) -> None:
    text = (
        "\ufeffDev_EUI;Model;Name;Site;Bay\r\n"
        "24-E1-24-13-6C-22-51-07;milesight-em300-sld;Chaufferie;Hôtel de ville;\r\n"
        "24-E1-24-13-6C-22-51-08;milesight-am103;Salle des fêtes, étage;Mairie;\r\n"
    )
    result = run("devices", "import", _write(tmp_path, "export.csv", text), "--tenant", "lyon")
    assert result.exit_code == 0, result.output
    assert "2 created" in result.output
    devices = _by_eui(conn)
    assert devices["24e124136c225107"]["site"] == "Hôtel de ville"
    assert devices["24e124136c225108"]["name"] == "Salle des fêtes, étage"


@pytest.mark.usefixtures("lyon")
def test_french_excel_export_with_decimal_commas_in_coordinates_is_read(
    run: Any, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """French Excel writes 45,764 for 45.764 in its semicolon CSV exports."""
    text = (
        "\ufeffdev_eui;model;name;lat;lon\r\n"
        "24E124136C225107;milesight-em300-sld;Chaufferie;45,7640;4,8357\r\n"
    )
    result = run("devices", "import", _write(tmp_path, "export.csv", text), "--tenant", "lyon")
    assert result.exit_code == 0, result.output
    device = _by_eui(conn)["24e124136c225107"]
    assert (device["lat"], device["lon"]) == (45.764, 4.8357)


@pytest.mark.usefixtures("lyon")
def test_missing_name_column_is_a_clear_error_and_stores_nothing(
    run: Any, conn: psycopg.Connection, tmp_path: Path
) -> None:
    text = "dev_eui,model,site\n24e124136c225107,milesight-em300-sld,Mairie\n"
    result = run("devices", "import", _write(tmp_path, "parc.csv", text), "--tenant", "lyon")
    assert result.exit_code == 1
    assert "name" in result.output and "missing" in result.output
    assert "Traceback" not in result.output
    assert _devices(conn) == []


@pytest.mark.usefixtures("lyon")
def test_unknown_column_is_named(run: Any, conn: psycopg.Connection, tmp_path: Path) -> None:
    text = "dev_eui,model,name,colour\n24e124136c225107,milesight-em300-sld,Chaufferie,red\n"
    result = run("devices", "import", _write(tmp_path, "parc.csv", text), "--tenant", "lyon")
    assert result.exit_code == 1
    assert "colour" in result.output
    assert _devices(conn) == []


@pytest.mark.usefixtures("lyon")
def test_file_that_is_not_utf8_is_a_clear_error(
    run: Any, conn: psycopg.Connection, tmp_path: Path
) -> None:
    text = "dev_eui;model;name\n24e124136c225107;milesight-em300-sld;Salle des fêtes\n"
    path = _write(tmp_path, "export.csv", text, encoding="cp1252")
    result = run("devices", "import", path, "--tenant", "lyon")
    assert result.exit_code == 1
    assert "UTF-8" in result.output
    assert _devices(conn) == []


@pytest.mark.usefixtures("lyon")
def test_line_the_database_cannot_store_is_reported_and_the_rest_imported(
    run: Any, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """A NUL byte (a damaged export) is one bad line, not a crash of the whole import."""
    text = (
        "dev_eui,model,name\n"
        "24e124136c225107,milesight-am103,Salle\x00du conseil\n"
        "24e124136c225108,milesight-am103,Chaufferie\n"
    )
    result = run("devices", "import", _write(tmp_path, "parc.csv", text), "--tenant", "lyon")
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == 1
    assert list(_error_lines(result.output)) == [2]
    assert set(_by_eui(conn)) == {"24e124136c225108"}


@pytest.mark.usefixtures("lyon")
def test_malformed_csv_is_a_clear_error_not_a_crash(
    run: Any, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """A stray quote that swallows the rest of the file makes one enormous field."""
    text = 'dev_eui,model,name\n24e124136c225107,milesight-am103,"Salle du conseil\n' + (
        "24e1241300000001,milesight-am103,Chaufferie\n" * 4000
    )
    result = run("devices", "import", _write(tmp_path, "parc.csv", text), "--tenant", "lyon")
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == 1
    assert "line" in result.output
    assert _devices(conn) == []


def test_import_into_an_unknown_tenant_is_an_error(
    run: Any, conn: psycopg.Connection, tmp_path: Path
) -> None:
    result = run("devices", "import", _write(tmp_path, "parc.csv", VALID), "--tenant", "nowhere")
    assert result.exit_code == 1
    assert "nowhere" in result.output
    assert _devices(conn) == []


@pytest.mark.usefixtures("lyon")
def test_all_valid_file_exits_zero(run: Any, conn: psycopg.Connection, tmp_path: Path) -> None:
    result = run("devices", "import", _write(tmp_path, "parc.csv", VALID), "--tenant", "lyon")
    assert result.exit_code == 0, result.output
    assert "2 created" in result.output
    assert "error" not in result.output
    assert set(_by_eui(conn)) == {"24e124136c225107", "24e124136c225108"}


@pytest.mark.usefixtures("lyon")
@pytest.mark.parametrize("text", [VALID, MIXED], ids=["valid", "mixed"])
def test_importing_the_same_file_again_changes_nothing(
    run: Any, conn: psycopg.Connection, tmp_path: Path, text: str
) -> None:
    path = _write(tmp_path, "parc.csv", text)
    first = run("devices", "import", path, "--tenant", "lyon")
    before = _devices(conn)
    assert before
    again = run("devices", "import", path, "--tenant", "lyon")
    assert again.exit_code == first.exit_code
    assert "created" not in again.output and "updated" not in again.output
    assert f"{len(before)} unchanged" in again.output
    assert _devices(conn) == before  # same rows, same updated_at, same encrypted key


@pytest.mark.usefixtures("lyon")
def test_changed_line_is_reported_updated(
    run: Any, conn: psycopg.Connection, tmp_path: Path
) -> None:
    assert (
        run("devices", "import", _write(tmp_path, "a.csv", VALID), "--tenant", "lyon").exit_code
        == 0
    )
    renamed = VALID.replace("Chaufferie", "Chaufferie centrale")
    result = run("devices", "import", _write(tmp_path, "b.csv", renamed), "--tenant", "lyon")
    assert result.exit_code == 0, result.output
    assert "1 unchanged" in result.output and "1 updated" in result.output
    assert _by_eui(conn)["24e124136c225107"]["name"] == "Chaufferie centrale"


def test_dev_eui_of_another_tenant_is_an_error_for_that_line(
    run: Any, conn: psycopg.Connection, tmp_path: Path
) -> None:
    for slug, name in (("lyon", "Ville de Lyon"), ("paris", "Ville de Paris")):
        assert run("tenant", "create", slug, "--name", name).exit_code == 0
    taken = "dev_eui,model,name\n24e124136c225107,milesight-am103,Salle Paris\n"
    assert (
        run("devices", "import", _write(tmp_path, "p.csv", taken), "--tenant", "paris").exit_code
        == 0
    )
    before = _devices(conn)

    result = run("devices", "import", _write(tmp_path, "l.csv", VALID), "--tenant", "lyon")
    assert result.exit_code == 1
    errors = _error_lines(result.output)
    assert list(errors) == [2]
    assert "24e124136c225107" in errors[2] and "another tenant" in errors[2]
    devices = _by_eui(conn)
    assert devices["24e124136c225107"]["tenant"] == "paris"
    assert devices["24e124136c225107"]["name"] == "Salle Paris"
    assert devices["24e124136c225108"]["tenant"] == "lyon"
    assert [row for row in _devices(conn) if row[0] == before[0][0]] == before


def test_help_lists_the_columns_the_api_import_takes(run: Any) -> None:
    result = run("devices", "import", "--help")
    assert result.exit_code == 0
    listed = re.search(r"\(([a-z_,\[\]\s]+)\)", result.output)
    assert listed is not None
    columns = re.findall(r"[a-z_]+", listed[1])
    assert columns == [*service.CSV_REQUIRED, *service.CSV_OPTIONAL]
    assert "tags" in columns


@pytest.mark.usefixtures("lyon")
def test_tags_column_is_imported_like_through_the_api(
    run: Any, conn: psycopg.Connection, tmp_path: Path
) -> None:
    text = "dev_eui,model,name,tags\n24e124136c225107,milesight-am103,Salle,floor=2;pilot\n"
    result = run("devices", "import", _write(tmp_path, "t.csv", text), "--tenant", "lyon")
    assert result.exit_code == 0, result.output
    assert _by_eui(conn)["24e124136c225107"]["tags"] == {"floor": "2", "pilot": ""}
