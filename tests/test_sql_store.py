"""The store on real SQLite and PostgreSQL databases through pyodbc, and mssql-python as far as
no SQL Server allows (driver choice, its bundled driver loading, the managed-identity token path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import mssql_python
import pyodbc
import pytest

from devhost.services import free_port
from shared.errors import ConfigurationError, DatabaseUnavailableError, DriverNotInstalledError
from shared.models import BlobRef, ImageMetadata, ImageRecord
from shared.store import (
    COLUMN_NAMES,
    COLUMNS,
    PostgresDialect,
    SQLiteDialect,
    SqlStore,
    connect,
    ddl,
    driver_for,
    is_transient,
    store_for,
)

LONG_NAME = ("fötö 'quoted' \"double\" ; DROP TABLE ImageMetadata; -- 東京 " * 8)[:310] + ".jpg"


def record(name: str, etag: str, modified: str, status: str = "processed", width: int = 10,
           error: str | None = None) -> ImageRecord:
    blob = BlobRef("images-input", name, etag, size=4096, last_modified=modified)
    return ImageRecord.for_blob(blob, status, metadata=ImageMetadata(width=width, height=5, format="PNG"),
                                error=error, instance_id=f"img-{etag}")


def rows(store: SqlStore) -> list[dict]:
    return store.rows()


def test_retried_write_is_idempotent(any_db_cs):
    store = SqlStore(any_db_cs)
    r = record("a.png", "e1", "2026-01-01T00:00:00+00:00")
    assert store.upsert(r) is True
    assert store.upsert(r) is True
    assert store.upsert(r) is True
    [row] = rows(store)
    assert row["ETag"] == "e1" and row["Width"] == 10 and row["Status"] == "processed"
    assert float(row["FileSizeKB"]) == 4.0


def test_newer_version_replaces_row_and_late_older_result_does_not(any_db_cs):
    store = SqlStore(any_db_cs)
    store.upsert(record("a.png", "v1", "2026-01-01T00:00:00+00:00", width=1))
    assert store.upsert(record("a.png", "v2", "2026-01-01T00:00:05+00:00", width=2)) is True
    assert store.upsert(record("a.png", "v1", "2026-01-01T00:00:00+00:00", width=1)) is False
    [row] = rows(store)
    assert (row["ETag"], row["Width"]) == ("v2", 2)


def test_failed_write_never_downgrades_a_processed_row_of_the_same_version(any_db_cs):
    store = SqlStore(any_db_cs)
    store.upsert(record("a.png", "v1", "2026-01-01T00:00:00+00:00"))
    assert store.upsert(record("a.png", "v1", "2026-01-01T00:00:00+00:00", status="failed",
                               error="timeout")) is False
    store.upsert(record("b.png", "v1", "2026-01-01T00:00:00+00:00", status="failed", error="x"))
    assert store.upsert(record("b.png", "v1", "2026-01-01T00:00:00+00:00")) is True
    assert {r["BlobName"]: r["Status"] for r in rows(store)} == {"a.png": "processed", "b.png": "processed"}


def test_unicode_quote_laden_300_char_names_round_trip(any_db_cs):
    store = SqlStore(any_db_cs)
    assert len(LONG_NAME) > 300
    store.upsert(record(LONG_NAME, "e1", "2026-01-01T00:00:00+00:00",
                        status="rejected", error="it's \"bad\" — ünïcode"))
    store.upsert(record(LONG_NAME, "e1", "2026-01-01T00:00:00+00:00",
                        status="rejected", error="it's \"bad\" — ünïcode"))
    [row] = rows(store)
    assert row["BlobName"] == LONG_NAME
    assert row["FileName"] == LONG_NAME
    assert row["Error"] == "it's \"bad\" — ünïcode"


def test_concurrent_writers_leave_one_row_per_blob(any_db_cs):
    SqlStore(any_db_cs).ensure_schema()
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        try:
            store = store_for(any_db_cs)
            for i in range(20):
                store.upsert(record(f"img-{i}.png", f"e{i}", "2026-01-01T00:00:00+00:00", width=worker))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    result = rows(SqlStore(any_db_cs))
    assert len(result) == 20
    assert sorted(r["BlobName"] for r in result) == sorted(f"img-{i}.png" for i in range(20))


def test_additive_migration_keeps_existing_rows(any_db_cs):
    conn = pyodbc.connect(any_db_cs, autocommit=True)
    conn.execute("CREATE TABLE ImageMetadata (Id INTEGER PRIMARY KEY, BlobKey CHAR(64) UNIQUE, "
                 "Container VARCHAR(63), BlobName VARCHAR(1024), FileName VARCHAR(1024), ETag VARCHAR(128), "
                 "FileSizeBytes BIGINT, FileSizeKB NUMERIC(18,2), Width INTEGER, Height INTEGER, "
                 "Format VARCHAR(16), Status VARCHAR(16), Error VARCHAR(2000), InstanceId VARCHAR(256), "
                 "BlobLastModified VARCHAR(40), ProcessedAt VARCHAR(40))")
    conn.execute("INSERT INTO ImageMetadata (Id, BlobKey, Container, BlobName, Status, Width) "
                 "VALUES (1, 'k', 'images-input', 'old.jpg', 'processed', 7)")
    conn.close()
    store = SqlStore(any_db_cs)
    store.ensure_schema()
    assert {c.lower() for c in COLUMN_NAMES} <= store.existing_columns()
    [row] = rows(store)
    assert row["BlobName"] == "old.jpg" and row["Width"] == 7 and row["CameraMake"] is None


def test_connection_is_reused_across_invocations(sqlite_cs):
    store = store_for(sqlite_cs)
    store.upsert(record("a.png", "e1", "2026-01-01T00:00:00+00:00"))
    first = store._conn
    store_for(sqlite_cs).upsert(record("b.png", "e1", "2026-01-01T00:00:00+00:00"))
    assert store_for(sqlite_cs) is store and store._conn is first


def test_missing_driver_says_how_to_install_it():
    with pytest.raises(DriverNotInstalledError, match="(?s)apt-get install.*leave Driver out"):
        SqlStore("Driver={ODBC Driver 18 for SQL Server};Server=tcp:x;Database=y;").upsert(
            record("a.png", "e", "2026-01-01T00:00:00+00:00"))


@pytest.mark.parametrize("value, message", [
    ("", "missing or empty"),
    ("Database=y;Encrypt=yes;", "names neither an ODBC Driver"),
    ("Driver={SQLite3;Database=x", "malformed"),
])
def test_bad_connection_strings_say_what_is_wrong(value, message):
    with pytest.raises(ConfigurationError, match=message):
        SqlStore(value).upsert(record("a.png", "e", "2026-01-01T00:00:00+00:00"))


def test_sqlite_missing_folder_is_a_clear_error(tmp_path):
    cs = f"Driver={{SQLite3}};Database={tmp_path / 'no' / 'such' / 'images.db'};"
    with pytest.raises(ConfigurationError, match="could not open the database"):
        SqlStore(cs).upsert(record("a.png", "e", "2026-01-01T00:00:00+00:00"))


def test_azure_sql_transient_error_numbers_are_recognised():
    paused = pyodbc.OperationalError("42000", "[Microsoft][ODBC Driver 18] Database 'db' on server "
                                     "'s' is not currently available. (40613) (SQLExecDirectW)")
    syntax = pyodbc.ProgrammingError("42000", "[Microsoft] Incorrect syntax near 'x'. (102)")
    lost = pyodbc.OperationalError("08S01", "Communication link failure")
    assert is_transient(paused) and is_transient(lost)
    assert not is_transient(syntax)


# The race of issue 7: writers of one new blob collide in the same instant. Each round
# starts every writer on a barrier; many rounds, because one collision is a matter of luck.
RACE_ROUNDS = 200  # the bug collided in ~8% of rounds on this machine: ~16 per run
RACE_WRITERS = 6


def race(upsert: Callable[[int, int], Any], rounds: int = RACE_ROUNDS,
         writers: int = RACE_WRITERS) -> list[BaseException]:
    """Run ``upsert(writer, round)`` from every writer at once, round after round; return errors."""
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        for n in range(rounds):
            try:
                barrier.wait(timeout=30)
                upsert(w, n)
            except threading.BrokenBarrierError:
                return
            except BaseException as exc:  # noqa: BLE001 - collected and asserted on
                errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def _version(w: int, n: int) -> ImageRecord:
    """Writer w's version of blob n: a later writer holds a later upload."""
    return record(f"race/{n}.png", f"v{w}", f"2026-01-01T00:00:{w:02d}+00:00", width=w)


def test_racing_writers_of_new_blobs_leave_one_row_each_with_the_newest_version(any_db_cs):
    SqlStore(any_db_cs).ensure_schema()
    stores = [SqlStore(any_db_cs) for _ in range(RACE_WRITERS)]
    errors = race(lambda w, n: stores[w].upsert(_version(w, n)))
    assert errors == []
    result = rows(SqlStore(any_db_cs))
    assert len(result) == RACE_ROUNDS
    newest = f"v{RACE_WRITERS - 1}"
    assert {(r["ETag"], r["Width"]) for r in result} == {(newest, RACE_WRITERS - 1)}


_LEGACY_SECOND_UNIQUE = {
    "sqlite": "CREATE TABLE ImageMetadata (Id INTEGER PRIMARY KEY AUTOINCREMENT, BlobKey TEXT NOT NULL "
              "UNIQUE, Container TEXT, BlobName TEXT, ETag TEXT, Width INTEGER, Status TEXT, "
              "UNIQUE (Container, BlobName))",
    "postgresql": "CREATE TABLE ImageMetadata (Id BIGSERIAL PRIMARY KEY, BlobKey CHAR(64) NOT NULL UNIQUE, "
                  "Container VARCHAR(63), BlobName VARCHAR(1024), ETag VARCHAR(128), Width INTEGER, "
                  "Status VARCHAR(16), UNIQUE (Container, BlobName))",
}


def _legacy_table(cs: str) -> str:
    """A table as older versions made it: a second unique constraint on (Container, BlobName)."""
    conn = pyodbc.connect(cs, autocommit=True)
    engine = "sqlite" if "SQLite" in cs else "postgresql"
    conn.execute(_LEGACY_SECOND_UNIQUE[engine])
    conn.execute("INSERT INTO ImageMetadata (BlobKey, Container, BlobName, ETag, Width, Status) "
                 "VALUES ('k', 'images-input', 'old.jpg', 'e0', 7, 'processed')")
    conn.close()
    return engine


def test_migration_drops_the_second_unique_constraint_and_keeps_rows(any_db_cs):
    engine = _legacy_table(any_db_cs)
    store = SqlStore(any_db_cs)
    store.ensure_schema()
    dialect = store.dialect
    assert isinstance(dialect, SQLiteDialect if engine == "sqlite" else PostgresDialect)
    conn = pyodbc.connect(any_db_cs, autocommit=True)
    legacy = ddl.SQLITE_LEGACY_UNIQUE if engine == "sqlite" else ddl.POSTGRES_LEGACY_UNIQUE
    assert conn.execute(legacy).fetchall() == []
    conn.close()
    [row] = rows(store)
    assert (row["BlobName"], row["Width"], row["ETag"]) == ("old.jpg", 7, "e0")
    # BlobKey stays unique: a second row with the same key is still refused.
    conn = pyodbc.connect(any_db_cs, autocommit=True)
    with pytest.raises(pyodbc.Error):
        conn.execute("INSERT INTO ImageMetadata (BlobKey, Container, BlobName) VALUES ('k', 'c', 'n')")
    conn.close()
    errors = race(lambda w, n: SqlStore(any_db_cs).upsert(_version(w, n)), rounds=10)
    assert errors == []
    assert len(rows(SqlStore(any_db_cs))) == 11


@pytest.mark.parametrize("any_db_cs", ["postgresql"], indirect=True)
def test_race_reproduces_on_an_unmigrated_table(any_db_cs):
    """Negative control: without the migration, the same race fails with 23505 on the
    (Container, BlobName) constraint, as CI saw. So the race above is able to catch it."""
    SqlStore(any_db_cs).ensure_schema()
    conn = pyodbc.connect(any_db_cs, autocommit=True)
    conn.execute("ALTER TABLE ImageMetadata ADD CONSTRAINT legacy_name UNIQUE (Container, BlobName)")
    conn.close()
    store = SqlStore(any_db_cs)
    dialect = store.dialect

    def raw_upsert(w: int, n: int) -> None:
        conn = connections[w]
        params = [dialect.to_db(c, c.value(_version(w, n))) for c in COLUMNS]  # type: ignore[misc]
        try:
            conn.execute(dialect.upsert().sql, params)
            conn.commit()
        except pyodbc.Error:
            conn.rollback()
            raise

    connections = [pyodbc.connect(any_db_cs, autocommit=False) for _ in range(RACE_WRITERS)]
    errors = race(raw_upsert)
    for c in connections:
        c.close()
    assert errors, "the race never collided: the test above could not catch the bug"
    collisions = [e for e in errors if isinstance(e, pyodbc.IntegrityError) and "23505" in str(e)]
    assert any("legacy_name" in str(e) for e in collisions), errors[:3]


# --- mssql-python: what runs without a SQL Server ------------------------------------------
# mssql-python's own parser (mssql_python/constants.py, _RESERVED_PARAMETERS and
# _ALLOWED_CONNECTION_STRING_PARAMS) refuses Driver= and any keyword ODBC Driver 18 does not
# define, such as "Connection Timeout"; so the string itself says which driver it is for.

AZURE_SQL = "Server=tcp:{host},{port};Database=images;Encrypt=yes;TrustServerCertificate=no;"


@pytest.mark.parametrize("value, driver", [
    ("Driver={SQLite3};Database=/tmp/x.db;", "pyodbc"),
    ("Driver={ODBC Driver 18 for SQL Server};Server=tcp:s.database.windows.net,1433;", "pyodbc"),
    ("DSN=images;", "pyodbc"),
    ("Server=tcp:s.database.windows.net,1433;Database=d;Authentication=ActiveDirectoryMSI;", "mssql-python"),
    ("server=s;database=d;", "mssql-python"),
])
def test_driver_is_chosen_from_the_connection_string(value, driver):
    assert driver_for(value) == driver


@pytest.mark.parametrize("keyword", ["Driver={ODBC Driver 18 for SQL Server}", "Connection Timeout=30"])
def test_mssql_python_itself_refuses_driver_and_connection_timeout(keyword):
    """The evidence for the rule above, from the real package (no network needed)."""
    with pytest.raises(mssql_python.ConnectionStringParseError):
        mssql_python.connect(f"Server=tcp:127.0.0.1,1;Database=d;{keyword};", timeout=1)


@pytest.mark.parametrize("keyword", ["Connection Timeout=30", "Connect Timeout=30", "Timeout=5"])
def test_timeout_keywords_for_mssql_python_are_refused_with_the_fix(keyword):
    with pytest.raises(ConfigurationError, match="does not accept.*remove it"):
        connect(AZURE_SQL.format(host="127.0.0.1", port=1) + keyword)


def test_unknown_keyword_for_mssql_python_names_the_keyword_and_the_driverless_form():
    with pytest.raises(ConfigurationError, match=r"(?s)Unknown keyword 'colour'.*leave Driver out"):
        connect(AZURE_SQL.format(host="127.0.0.1", port=1) + "Colour=blue;")


def _bundled_driver_loaded() -> list[str]:
    return sorted({line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines()
                   if "libmsodbcsql" in line})


def test_mssql_python_loads_its_bundled_driver_without_an_odbc_install():
    """No 'ODBC Driver 18 for SQL Server' is installed here; mssql-python still loads Microsoft's
    driver from its own wheel and reaches the network (a closed port: transient, retried)."""
    assert "ODBC Driver 18 for SQL Server" not in pyodbc.drivers()
    with pytest.raises(DatabaseUnavailableError, match="TCP Provider"):
        connect(AZURE_SQL.format(host="127.0.0.1", port=free_port()), timeout=3)
    loaded = _bundled_driver_loaded()
    assert loaded and all("site-packages/mssql_python_odbc/" in path for path in loaded), loaded


class _IdentityEndpoint(BaseHTTPRequestHandler):
    """The App Service / Functions managed-identity endpoint (IDENTITY_ENDPOINT, IDENTITY_HEADER,
    api-version 2019-08-01; Microsoft docs "How to use managed identities for App Service and Azure
    Functions", REST protocol), answering as Azure does or refusing, per ``status``."""

    requests: list[tuple[str, dict[str, str]]] = []
    status = 200

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        type(self).requests.append((self.path, dict(self.headers)))
        body = json.dumps({"access_token": "header.payload.signature", "token_type": "Bearer",
                           "expires_on": str(int(time.time()) + 3600),
                           "resource": "https://database.windows.net"} if self.status == 200 else
                          {"error": "invalid_request", "error_description": "Identity not found"}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def identity_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_IdentityEndpoint]]:
    handler = type("Handler", (_IdentityEndpoint,), {"requests": [], "status": 200})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"http://127.0.0.1:{server.server_port}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", "local-test-header")
    yield handler
    server.shutdown()


def test_active_directory_msi_asks_the_managed_identity_endpoint_for_a_sql_token(identity_endpoint):
    """Authentication=ActiveDirectoryMSI;UID=<client id> goes through azure-identity's
    ManagedIdentityCredential to the Functions identity endpoint for the SQL audience; with the
    token in hand the driver goes on to the server (closed here: transient)."""
    client_id = str(uuid.uuid4())  # mssql-python caches one credential per client id
    cs = AZURE_SQL.format(host="127.0.0.1", port=free_port()) + \
        f"Authentication=ActiveDirectoryMSI;UID={client_id};"
    with pytest.raises(DatabaseUnavailableError):
        connect(cs, timeout=3)
    [(path, headers)] = identity_endpoint.requests
    query = parse_qs(urlsplit(path).query)
    assert query["resource"] == ["https://database.windows.net"]
    assert query["client_id"] == [client_id]
    assert headers["X-IDENTITY-HEADER"] == "local-test-header"


def test_refused_managed_identity_is_a_configuration_error_with_the_fix(identity_endpoint):
    identity_endpoint.status = 400
    cs = AZURE_SQL.format(host="127.0.0.1", port=free_port()) + \
        f"Authentication=ActiveDirectoryMSI;UID={uuid.uuid4()};"
    with pytest.raises(ConfigurationError, match="Entra ID token.*UID in SqlConnectionString is its client id"):
        connect(cs, timeout=3)
    assert identity_endpoint.requests


def test_mssql_python_errors_are_classified_like_pyodbc_ones():
    """mssql-python raises its own DB-API classes with the driver's text (error number in
    parentheses), so a paused database is retried and a syntax error is not, whichever driver."""
    paused = mssql_python.OperationalError(
        "Database 'images' on server 'sql-x' is not currently available.",
        "[Microsoft][ODBC Driver 18 for SQL Server][SQL Server]Database 'images' on server 'sql-x' is not "
        "currently available. Please retry the connection later. (40613)")
    syntax = mssql_python.ProgrammingError("Incorrect syntax near 'x'.", "[SQL Server]Incorrect syntax (102)")
    assert is_transient(paused)
    assert not is_transient(syntax)


def test_a_driver_mssql_python_cannot_load_fails_with_the_fix_not_as_a_lost_connection(tmp_path):
    """Run in a child process whose mssql_python_odbc package has no driver binaries (what a
    broken install looks like to mssql-python's native loader, which finds the driver next to
    that package's __file__): the first connection raises DriverNotInstalledError with the fix,
    not a transient error that would be retried for minutes."""
    fake = tmp_path / "mssql_python_odbc"
    fake.mkdir()
    (fake / "__init__.py").write_text('__version__ = "18.6.2.2"\n')
    code = (
        "from shared.store import connect\n"
        "from shared.errors import DriverNotInstalledError\n"
        "try:\n"
        "    connect('Server=tcp:127.0.0.1,1;Database=d;Encrypt=yes;', timeout=1)\n"
        "except DriverNotInstalledError as exc:\n"
        "    print('DriverNotInstalledError:', exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(__file__).parent.parent)])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.startswith("DriverNotInstalledError:"), out.stdout + out.stderr
    assert "pip install --force-reinstall mssql-python" in out.stdout and "libltdl7" in out.stdout


# ---- Issue 10: descriptive columns, keyword table, extractor version ----------------------

from shared.models import EXTRACTOR_VERSION  # noqa: E402
from shared.store import INDEXES, KEYWORD_TABLE, TABLE  # noqa: E402


def described(name: str, etag: str, modified: str, keywords: list[str] | None) -> ImageRecord:
    meta = ImageMetadata(width=10, height=5, format="JPEG", title="First dance", description="Anna & Ben",
                         keywords=keywords, rating=5, artist="Jane Doe", copyright="© 2023 Jane Doe",
                         captured_at="2023-08-12T18:45:10", captured_at_offset="+02:00",
                         captured_at_source="xmp", captured_at_utc="2023-08-12T16:45:10",
                         captured_at_utc_source="xmp-zone", time_zone="Europe/Paris",
                         gps_date_time="2023-08-12T16:45:08", country="France", region="Île-de-France",
                         city="Paris", extractor_version=EXTRACTOR_VERSION,
                         warnings=["xmp: DTDForbidden"])
    blob = BlobRef("images-input", name, etag, size=4096, last_modified=modified)
    return ImageRecord.for_blob(blob, "processed", metadata=meta, instance_id=f"img-{etag}")


def keyword_rows(cs: str) -> set[tuple[str, int]]:
    conn = pyodbc.connect(cs, autocommit=True)
    try:
        return {(k, int(i)) for k, i in conn.execute(f"SELECT Keyword, ImageId FROM {KEYWORD_TABLE}").fetchall()}
    finally:
        conn.close()


def test_descriptive_columns_round_trip(any_db_cs):
    store = SqlStore(any_db_cs)
    store.upsert(described("a.jpg", "e1", "2026-01-01T00:00:00+00:00", ["Wedding", "Küste", 'say "cheese"']))
    [row] = rows(store)
    assert (row["Title"], row["Description"], row["Rating"]) == ("First dance", "Anna & Ben", 5)
    assert (row["Artist"], row["Copyright"]) == ("Jane Doe", "© 2023 Jane Doe")
    assert json.loads(row["Keywords"]) == ["Wedding", "Küste", 'say "cheese"']
    assert str(row["CapturedAtUtc"]).startswith("2023-08-12 16:45:10")
    assert (row["CapturedAtSource"], row["CapturedAtUtcSource"], row["TimeZone"]) == (
        "xmp", "xmp-zone", "Europe/Paris")
    assert (row["Country"], row["Region"], row["City"]) == ("France", "Île-de-France", "Paris")
    assert row["ExtractorVersion"] == EXTRACTOR_VERSION
    assert json.loads(row["MetadataWarnings"]) == ["xmp: DTDForbidden"]


def test_rejected_rows_record_the_extractor_version_too(any_db_cs):
    store = SqlStore(any_db_cs)
    store.upsert(record("bad.jpg", "e1", "2026-01-01T00:00:00+00:00", status="rejected", error="not an image"))
    [row] = rows(store)
    assert row["ExtractorVersion"] == EXTRACTOR_VERSION and row["Keywords"] is None


def test_keyword_table_follows_the_row(any_db_cs):
    """One lower-cased row per keyword, replaced when a newer version changes the list."""
    store = SqlStore(any_db_cs)
    store.upsert(described("a.jpg", "v1", "2026-01-01T00:00:00+00:00", ["Wedding", "Beach"]))
    store.upsert(described("b.jpg", "v1", "2026-01-01T00:00:00+00:00", ["wedding"]))
    ids = {r["BlobName"]: int(r["Id"]) for r in rows(store)}
    assert keyword_rows(any_db_cs) == {("wedding", ids["a.jpg"]), ("beach", ids["a.jpg"]),
                                       ("wedding", ids["b.jpg"])}
    store.upsert(described("a.jpg", "v2", "2026-01-01T00:00:05+00:00", ["Sea"]))
    assert keyword_rows(any_db_cs) == {("sea", ids["a.jpg"]), ("wedding", ids["b.jpg"])}
    store.upsert(described("a.jpg", "v1", "2026-01-01T00:00:00+00:00", ["stale"]))  # older: not applied
    store.upsert(described("b.jpg", "v2", "2026-01-01T00:00:05+00:00", None))
    assert keyword_rows(any_db_cs) == {("sea", ids["a.jpg"])}


def test_keyword_list_too_long_for_its_column_drops_whole_keywords(sqlite_cs):
    store = SqlStore(sqlite_cs)
    many = [f"keyword-{i:03d}-" + "x" * 180 for i in range(40)]
    store.upsert(described("a.jpg", "e1", "2026-01-01T00:00:00+00:00", many))
    [row] = rows(store)
    stored = json.loads(row["Keywords"])
    assert len(row["Keywords"]) <= 4000 and stored == many[: len(stored)] and 10 < len(stored) < 40


def create_previous_version_table(cs: str):  # noqa: ANN201 - the dialect
    """ImageMetadata as the release before issue 10 created it (columns through BytesRead)."""
    from shared.store import COLUMNS, dialect_for

    previous = COLUMNS[: [c.name for c in COLUMNS].index("BytesRead") + 1]
    conn = pyodbc.connect(cs, autocommit=True)
    dialect = dialect_for(conn)
    defs = ", ".join(f"{c.name} {dialect.type_of(c)}{' UNIQUE' if c.kind == 'key' else ''}" for c in previous)
    identity = "INTEGER PRIMARY KEY AUTOINCREMENT" if dialect.name == "sqlite" else "BIGSERIAL PRIMARY KEY"
    conn.execute(f"CREATE TABLE {TABLE} (Id {identity}, {defs}, UNIQUE (Container, BlobName))")
    conn.close()
    return dialect


def test_migration_from_the_previous_version_adds_columns_and_indexes(any_db_cs):
    """A table as the previous release created it (through BytesRead) gains the new columns,
    the indexes and the keyword table; its rows are kept."""
    from shared.store import COLUMNS

    dialect = create_previous_version_table(any_db_cs)
    conn = pyodbc.connect(any_db_cs, autocommit=True)
    conn.execute(f"INSERT INTO {TABLE} (BlobKey, Container, BlobName, Status, Width) "
                 "VALUES ('k', 'images-input', 'old.jpg', 'processed', 7)")
    conn.close()
    store = SqlStore(any_db_cs)
    store.ensure_schema()
    assert {c.name.lower() for c in COLUMNS} <= store.existing_columns()
    [row] = rows(store)
    assert row["BlobName"] == "old.jpg" and row["Width"] == 7 and row["Keywords"] is None
    assert row["ExtractorVersion"] is None  # written by the older extractor: reconciliation can find it
    conn = pyodbc.connect(any_db_cs, autocommit=True)
    if dialect.name == "sqlite":
        names = {r[0].lower() for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    else:
        names = {r[0].lower() for r in conn.execute("SELECT indexname FROM pg_indexes")}
    conn.close()
    assert {name.lower() for name, _ in INDEXES} | {f"ix_{KEYWORD_TABLE}_imageid".lower()} <= names


def all_at_once(work: Callable[[], Any], count: int = 8) -> list[BaseException]:
    """Run ``work`` in ``count`` threads released together, as cold-started instances; the errors."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run() -> None:
        try:
            barrier.wait()
            work()
        except BaseException as exc:  # noqa: BLE001 - collected and asserted on
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_many_processes_migrating_at_once_all_succeed(any_db_cs):
    """On the previous release's table, eight fresh stores run the migration (new columns,
    indexes, keyword trigger) at the same moment, as cold-started instances do; none fails."""
    create_previous_version_table(any_db_cs)

    def migrate() -> None:
        store = SqlStore(any_db_cs)
        store.ensure_schema()
        store.upsert(described(f"{threading.get_ident()}.jpg", "e1", "2026-01-01T00:00:00+00:00", ["x"]))

    assert all_at_once(migrate) == []
    assert len(keyword_rows(any_db_cs)) == 8


def test_instances_starting_together_on_an_empty_database_all_create_and_write(any_db_cs):
    """Eight stores create the schema from nothing at the same moment (cold-started instances on a
    new database): the migration's schema lock makes them take turns, and none fails. Without it,
    PostgreSQL's concurrent CREATE TABLE IF NOT EXISTS fails ("relation already exists")."""

    def start() -> None:
        SqlStore(any_db_cs).upsert(described(f"{threading.get_ident()}.jpg", "e1", "2026-01-01T00:00:00+00:00",
                                             ["y"]))

    assert all_at_once(start) == []
    assert len(rows(SqlStore(any_db_cs))) == 8
