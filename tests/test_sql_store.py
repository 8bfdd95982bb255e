"""The store through pyodbc on real SQLite and PostgreSQL databases."""

from __future__ import annotations

import threading

import pyodbc
import pytest

from shared.errors import ConfigurationError, DriverNotInstalledError
from shared.models import BlobRef, ImageMetadata, ImageRecord
from shared.sql_store import COLUMN_NAMES, SqlStore, is_transient, store_for

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
    with pytest.raises(DriverNotInstalledError, match="apt-get install"):
        SqlStore("Driver={ODBC Driver 18 for SQL Server};Server=tcp:x;Database=y;").upsert(
            record("a.png", "e", "2026-01-01T00:00:00+00:00"))


@pytest.mark.parametrize("value, message", [
    ("", "missing or empty"),
    ("Server=tcp:x;Database=y;", "names no ODBC Driver"),
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
