"""The store through pyodbc on real SQLite and PostgreSQL databases."""

from __future__ import annotations

import json
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


# ---- Issue 10: descriptive columns, keyword table, extractor version ----------------------

from shared.models import EXTRACTOR_VERSION  # noqa: E402
from shared.sql_store import INDEXES, KEYWORD_TABLE, TABLE  # noqa: E402


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
    from shared.sql_store import COLUMNS, dialect_for

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
    from shared.sql_store import COLUMNS

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


def test_many_processes_migrating_at_once_all_succeed(any_db_cs):
    """On the previous release's table, eight fresh stores run the migration (new columns,
    indexes, keyword trigger) at the same moment, as cold-started instances do; none fails.
    (Creating the table itself from nothing concurrently is older code, not exercised here.)"""
    create_previous_version_table(any_db_cs)
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def migrate() -> None:
        try:
            store = SqlStore(any_db_cs)
            barrier.wait()
            store.ensure_schema()
            store.upsert(described(f"{threading.get_ident()}.jpg", "e1", "2026-01-01T00:00:00+00:00", ["x"]))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(keyword_rows(any_db_cs)) == 8
