"""The ImageMetadata table through pyodbc: schema, additive migrations, idempotent upserts.

One SQL dialect per engine, chosen from the live connection (``SQL_DBMS_NAME``):
T-SQL for Azure SQL / SQL Server, PostgreSQL, and SQLite for local development.
Every statement is parameterised; identifiers come only from the column table
below, never from data.

Rows are keyed by ``BlobKey`` = SHA-256 of ``container/blob name``: SQL Server
limits an index key to 1,700 bytes, which a unique index on a 1,024-character
NVARCHAR blob name would exceed, so the unique constraint sits on the hash (and,
where the engine allows it, on (Container, BlobName) too).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyodbc

from shared.errors import ConfigurationError, DatabaseUnavailableError, DriverNotInstalledError
from shared.models import STATUS_DELETED, STATUS_PROCESSED, ImageRecord
from shared.settings import check_sql_connection_string

TABLE = "ImageMetadata"


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # key | text | int | bigint | decimal | float | bool | datetime
    size: int = 0
    value: Callable[[ImageRecord], Any] | None = None


def _meta(attr: str) -> Callable[[ImageRecord], Any]:
    return lambda r: getattr(r.metadata, attr)


def blob_key(container: str, blob_name: str) -> str:
    return hashlib.sha256(f"{container}/{blob_name}".encode()).hexdigest()


def _parse_time(value: str | None) -> datetime | None:
    """ISO text to naive UTC (the form every dialect stores), or None."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _limit(size: int) -> Callable[[Any], Any]:
    return lambda v: v[:size] if isinstance(v, str) else v


# The table, in order. Columns after Status were added by later versions: on an
# existing table they arrive through additive ALTER TABLE ... ADD, keeping rows.
COLUMNS: tuple[Column, ...] = (
    Column("BlobKey", "key", 64, lambda r: blob_key(r.container, r.blob_name)),
    Column("Container", "text", 63, lambda r: r.container),
    Column("BlobName", "text", 1024, lambda r: r.blob_name),
    Column("FileName", "text", 1024, lambda r: r.file_name),
    Column("ETag", "text", 128, lambda r: r.etag),
    Column("FileSizeBytes", "bigint", value=lambda r: r.size_bytes),
    Column("FileSizeKB", "decimal", value=lambda r: r.size_kb),
    Column("Width", "int", value=_meta("width")),
    Column("Height", "int", value=_meta("height")),
    Column("Format", "text", 16, _meta("format")),
    Column("Status", "text", 16, lambda r: r.status),
    Column("Error", "text", 2000, lambda r: _limit(2000)(r.error)),
    Column("InstanceId", "text", 256, lambda r: r.instance_id),
    Column("BlobLastModified", "datetime", value=lambda r: _parse_time(r.blob_last_modified)),
    Column("ProcessedAt", "datetime", value=lambda r: datetime.now(UTC).replace(tzinfo=None)),
    Column("ContentType", "text", 64, _meta("content_type")),
    Column("ColorMode", "text", 16, _meta("mode")),
    Column("BitDepth", "int", value=_meta("bit_depth")),
    Column("HasAlpha", "bool", value=_meta("has_alpha")),
    Column("Animated", "bool", value=_meta("animated")),
    Column("FrameCount", "int", value=_meta("frame_count")),
    Column("Orientation", "int", value=_meta("orientation")),
    Column("DisplayWidth", "int", value=_meta("display_width")),
    Column("DisplayHeight", "int", value=_meta("display_height")),
    Column("CameraMake", "text", 128, _meta("camera_make")),
    Column("CameraModel", "text", 128, _meta("camera_model")),
    Column("LensModel", "text", 128, _meta("lens_model")),
    Column("Software", "text", 128, _meta("software")),
    Column("CapturedAt", "datetime", value=lambda r: _parse_time(r.metadata.captured_at)),
    Column("CapturedAtOffset", "text", 8, _meta("captured_at_offset")),
    Column("ExposureTime", "float", value=_meta("exposure_time")),
    Column("FNumber", "float", value=_meta("f_number")),
    Column("ISO", "int", value=_meta("iso")),
    Column("FocalLength", "float", value=_meta("focal_length")),
    Column("GpsLatitude", "float", value=_meta("gps_latitude")),
    Column("GpsLongitude", "float", value=_meta("gps_longitude")),
    Column("GpsAltitude", "float", value=_meta("gps_altitude")),
    Column("DpiX", "float", value=_meta("dpi_x")),
    Column("DpiY", "float", value=_meta("dpi_y")),
    Column("IccProfile", "text", 128, _meta("icc_profile")),
    Column("BytesRead", "bigint", value=_meta("bytes_read")),
    Column("Sequencer", "text", 64, lambda r: r.sequencer),
    Column("DeletedAt", "datetime", value=lambda r: None),
)
COLUMN_NAMES = tuple(c.name for c in COLUMNS)
_UPDATED = tuple(c for c in COLUMNS if c.name != "BlobKey")
# What a deletion writes (a tombstone when no row exists yet); Status is always 'deleted'.
DELETE_COLUMNS = ("BlobKey", "Container", "BlobName", "FileName", "ETag", "Sequencer", "DeletedAt",
                  "ProcessedAt")


class Dialect:
    """SQL text for one engine. Subclasses differ only where the engines do."""

    name = "generic"
    types: dict[str, str] = {}

    def type_of(self, col: Column) -> str:
        text = self.types[col.kind]
        return text.format(n=col.size) if "{n}" in text else text

    def create_table(self) -> str:
        raise NotImplementedError

    def add_column(self, col: Column) -> str:
        return f"ALTER TABLE {TABLE} ADD COLUMN {col.name} {self.type_of(col)} NULL"

    def probe_columns(self) -> str:
        return f"SELECT * FROM {TABLE} WHERE 1 = 0"

    def ordinal(self, expr: str) -> str:
        """Compare Event Grid sequencers as plain strings (code points), whatever the collation."""
        return expr

    def apply_condition(self, old: str, new: str) -> str:
        """When a run's write may replace the stored row.

        A live row: same version (never downgrading a processed row), or a version at least
        as new as the stored one. A deleted row: only another version, newer than the deleted
        one (a late run of the deleted version must not bring it back). Where both rows carry
        an Event Grid sequencer, an older sequencer never wins.
        """
        o = self.ordinal
        seq_known = f"{old}.Sequencer IS NULL OR {new}.Sequencer IS NULL"
        lm_not_older = (f"({old}.BlobLastModified IS NULL OR {new}.BlobLastModified IS NULL "
                        f"OR {new}.BlobLastModified >= {old}.BlobLastModified)")
        other_version = f"({old}.ETag IS NULL OR {old}.ETag <> {new}.ETag)"
        live = (
            f"({old}.Status <> '{STATUS_DELETED}' "
            f"AND ({seq_known} OR {o(new + '.Sequencer')} >= {o(old + '.Sequencer')}) "
            f"AND (({old}.ETag = {new}.ETag AND ({old}.Status <> '{STATUS_PROCESSED}' "
            f"OR {new}.Status = '{STATUS_PROCESSED}')) OR ({other_version} AND {lm_not_older})))"
        )
        gone = (
            f"({old}.Status = '{STATUS_DELETED}' AND {other_version} AND {lm_not_older} "
            f"AND ({seq_known} OR {o(new + '.Sequencer')} > {o(old + '.Sequencer')}))"
        )
        return f"({live} OR {gone})"

    def delete_condition(self, old: str, new: str) -> str:
        """When a deletion may mark the stored row deleted.

        ``new.ETag`` set (reconciliation): only the version that was seen gone. Both
        sequencers known: only a later event. Otherwise only a live row whose version is not
        newer than the deletion (``new.DeletedAt``).
        """
        o = self.ordinal
        return (
            f"(({new}.ETag IS NULL OR {old}.ETag = {new}.ETag) AND ("
            f"({old}.Sequencer IS NOT NULL AND {new}.Sequencer IS NOT NULL "
            f"AND {o(new + '.Sequencer')} > {o(old + '.Sequencer')}) "
            f"OR (({old}.Sequencer IS NULL OR {new}.Sequencer IS NULL) "
            f"AND {old}.Status <> '{STATUS_DELETED}' AND ({old}.BlobLastModified IS NULL "
            f"OR {new}.DeletedAt IS NULL OR {old}.BlobLastModified <= {new}.DeletedAt))))"
        )

    def mark_deleted(self) -> str:
        """Insert a tombstone, or mark the row deleted when ``delete_condition`` allows it.
        Parameters: the ``DELETE_COLUMNS`` in order."""
        raise NotImplementedError

    def select_by_keys(self, count: int) -> str:
        """The state of up to ``count`` rows, by BlobKey (one reconciliation page)."""
        marks = ", ".join("?" for _ in range(count))
        return (f"SELECT BlobKey, BlobName, ETag, Status, Sequencer FROM {TABLE} "
                f"WHERE BlobKey IN ({marks})")

    def page_after_key(self) -> str:
        """Keyset page of rows not deleted in one container: (Container, after BlobKey, limit)."""
        return (f"SELECT BlobKey, BlobName, ETag, Status FROM {TABLE} WHERE Container = ? "
                f"AND Status <> '{STATUS_DELETED}' AND BlobKey > ? ORDER BY BlobKey LIMIT ?")

    def upsert(self) -> str:
        raise NotImplementedError

    def select_rows(self, where: str = "") -> str:
        return f"SELECT Id, {', '.join(COLUMN_NAMES)} FROM {TABLE} {where} ORDER BY Id".replace("  ", " ")

    def to_db(self, col: Column, value: Any) -> Any:
        return value


def _column_defs(dialect: Dialect) -> str:
    return ",\n    ".join(f"{c.name} {dialect.type_of(c)} NULL" for c in COLUMNS if c.kind != "key")


class SQLiteDialect(Dialect):
    name = "sqlite"
    types = {
        "key": "TEXT", "text": "TEXT", "int": "INTEGER", "bigint": "INTEGER", "decimal": "REAL",
        "float": "REAL", "bool": "INTEGER", "datetime": "TEXT",
    }

    def create_table(self) -> str:
        return (
            f"CREATE TABLE IF NOT EXISTS {TABLE} (\n"
            "    Id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
            "    BlobKey TEXT NOT NULL UNIQUE,\n"
            f"    {_column_defs(self)},\n"
            "    UNIQUE (Container, BlobName)\n)"
        )

    def upsert(self) -> str:
        cols = ", ".join(COLUMN_NAMES)
        marks = ", ".join("?" for _ in COLUMNS)
        sets = ", ".join(f"{c.name} = excluded.{c.name}" for c in _UPDATED)
        return (
            f"INSERT INTO {TABLE} ({cols}) VALUES ({marks}) ON CONFLICT (BlobKey) DO UPDATE SET "
            f"{sets} WHERE {self.apply_condition(TABLE, 'excluded')}"
        )

    def mark_deleted(self) -> str:
        return _insert_or_mark_deleted(self, "excluded")

    def to_db(self, col: Column, value: Any) -> Any:
        # Text in one fixed format keeps ordering right (the driver would cut datetimes to ms).
        if isinstance(value, datetime):
            return value.strftime("%Y-%m-%d %H:%M:%S.%f")
        if isinstance(value, bool):
            return int(value)
        return value


class PostgresDialect(Dialect):
    name = "postgresql"
    types = {
        "key": "CHAR(64)", "text": "VARCHAR({n})", "int": "INTEGER", "bigint": "BIGINT",
        "decimal": "NUMERIC(18, 2)", "float": "DOUBLE PRECISION", "bool": "BOOLEAN",
        "datetime": "TIMESTAMP(6)",
    }

    def create_table(self) -> str:
        return (
            f"CREATE TABLE IF NOT EXISTS {TABLE} (\n"
            "    Id BIGSERIAL PRIMARY KEY,\n"
            "    BlobKey CHAR(64) NOT NULL UNIQUE,\n"
            f"    {_column_defs(self)},\n"
            "    UNIQUE (Container, BlobName)\n)"
        )

    def add_column(self, col: Column) -> str:
        return f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS {col.name} {self.type_of(col)} NULL"

    def upsert(self) -> str:
        cols = ", ".join(COLUMN_NAMES)
        marks = ", ".join("?" for _ in COLUMNS)
        sets = ", ".join(f"{c.name} = EXCLUDED.{c.name}" for c in _UPDATED)
        return (
            f"INSERT INTO {TABLE} ({cols}) VALUES ({marks}) ON CONFLICT (BlobKey) DO UPDATE SET "
            f"{sets} WHERE {self.apply_condition(TABLE, 'EXCLUDED')}"
        )

    def ordinal(self, expr: str) -> str:
        return f'{expr} COLLATE "C"'

    def mark_deleted(self) -> str:
        return _insert_or_mark_deleted(self, "EXCLUDED")


class TSqlDialect(Dialect):
    name = "tsql"
    types = {
        "key": "CHAR(64)", "text": "NVARCHAR({n})", "int": "INT", "bigint": "BIGINT",
        "decimal": "DECIMAL(18, 2)", "float": "FLOAT", "bool": "BIT", "datetime": "DATETIME2(6)",
    }

    def create_table(self) -> str:
        return (
            f"IF OBJECT_ID(N'dbo.{TABLE}', N'U') IS NULL\n"
            f"CREATE TABLE dbo.{TABLE} (\n"
            "    Id BIGINT IDENTITY(1, 1) NOT NULL PRIMARY KEY,\n"
            "    BlobKey CHAR(64) NOT NULL CONSTRAINT UQ_ImageMetadata_BlobKey UNIQUE,\n"
            f"    {_column_defs(self)}\n)"
        )

    def add_column(self, col: Column) -> str:
        return (
            f"IF COL_LENGTH(N'dbo.{TABLE}', N'{col.name}') IS NULL "
            f"ALTER TABLE dbo.{TABLE} ADD {col.name} {self.type_of(col)} NULL"
        )

    def probe_columns(self) -> str:
        return f"SELECT TOP (0) * FROM dbo.{TABLE}"

    def upsert(self) -> str:
        cols = ", ".join(COLUMN_NAMES)
        marks = ", ".join("?" for _ in COLUMNS)
        sets = ", ".join(f"t.{c.name} = s.{c.name}" for c in _UPDATED)
        values = ", ".join(f"s.{c}" for c in COLUMN_NAMES)
        return (
            f"MERGE INTO dbo.{TABLE} WITH (HOLDLOCK) AS t "
            f"USING (VALUES ({marks})) AS s ({cols}) ON t.BlobKey = s.BlobKey "
            f"WHEN MATCHED AND {self.apply_condition('t', 's')} THEN UPDATE SET {sets} "
            f"WHEN NOT MATCHED BY TARGET THEN INSERT ({cols}) VALUES ({values});"
        )

    def ordinal(self, expr: str) -> str:
        return f"{expr} COLLATE Latin1_General_100_BIN2"

    def mark_deleted(self) -> str:
        cols = ", ".join(DELETE_COLUMNS)
        marks = ", ".join("?" for _ in DELETE_COLUMNS)
        values = ", ".join(f"s.{c}" for c in DELETE_COLUMNS)
        return (
            f"MERGE INTO dbo.{TABLE} WITH (HOLDLOCK) AS t "
            f"USING (VALUES ({marks})) AS s ({cols}) ON t.BlobKey = s.BlobKey "
            f"WHEN MATCHED AND {self.delete_condition('t', 's')} THEN UPDATE SET "
            f"t.Status = '{STATUS_DELETED}', t.DeletedAt = s.DeletedAt, "
            "t.Sequencer = COALESCE(s.Sequencer, t.Sequencer) "
            f"WHEN NOT MATCHED BY TARGET THEN INSERT ({cols}, Status) VALUES ({values}, '{STATUS_DELETED}');"
        )

    def page_after_key(self) -> str:
        return (f"SELECT BlobKey, BlobName, ETag, Status FROM dbo.{TABLE} WHERE Container = ? "
                f"AND Status <> '{STATUS_DELETED}' AND BlobKey > ? ORDER BY BlobKey "
                "OFFSET 0 ROWS FETCH NEXT ? ROWS ONLY")


def _insert_or_mark_deleted(dialect: Dialect, new: str) -> str:
    """SQLite and PostgreSQL share the ON CONFLICT form of the deletion."""
    cols = ", ".join(DELETE_COLUMNS)
    marks = ", ".join("?" for _ in DELETE_COLUMNS)
    return (
        f"INSERT INTO {TABLE} ({cols}, Status) VALUES ({marks}, '{STATUS_DELETED}') "
        f"ON CONFLICT (BlobKey) DO UPDATE SET Status = '{STATUS_DELETED}', "
        f"DeletedAt = {new}.DeletedAt, Sequencer = COALESCE({new}.Sequencer, {TABLE}.Sequencer) "
        f"WHERE {dialect.delete_condition(TABLE, new)}"
    )


DIALECTS: dict[str, type[Dialect]] = {
    "sqlite": SQLiteDialect,
    "postgresql": PostgresDialect,
    "microsoft sql server": TSqlDialect,
}

# Azure SQL errors that clear up by themselves (paused serverless database resuming,
# failover, throttling), from Microsoft's transient-fault list.
TRANSIENT_SQL_ERRORS = frozenset(
    {40613, 40197, 40501, 49918, 49919, 49920, 4060, 4221, 615, 926, 10928, 10929, 40540, 40143,
     10053, 10054, 10060, 233, 64, 20, 121, 1205}
)
_NUMBER_RE = re.compile(r"\((\d{2,6})\)")
_TRANSIENT_STATES = ("08", "HYT", "40001", "57P", "53300", "55P03")
_TRANSIENT_TEXT = ("database is locked", "database is busy", "connection", "timeout", "timed out",
                   "server closed", "could not connect", "terminating connection", "is paused",
                   "not currently available", "SSL SYSCALL")


def is_transient(exc: BaseException) -> bool:
    """Whether a pyodbc error is the kind that clears up if we wait and try again."""
    if not isinstance(exc, pyodbc.Error):
        return False
    state = str(exc.args[0]) if exc.args else ""
    text = " ".join(str(a) for a in exc.args)
    if any(state.startswith(prefix) for prefix in _TRANSIENT_STATES):
        return True
    if any(int(n) in TRANSIENT_SQL_ERRORS for n in _NUMBER_RE.findall(text)):
        return True
    lowered = text.lower()
    return any(word.lower() in lowered for word in _TRANSIENT_TEXT)


def _redact(connection_string: str) -> str:
    return re.sub(r"(?i)(pwd|password|accountkey)\s*=\s*[^;]*", r"\1=***", connection_string)


def connect(connection_string: str, timeout: int = 30) -> pyodbc.Connection:
    """Open a connection, explaining the usual failures in words a user can act on."""
    pairs = check_sql_connection_string(connection_string)
    driver = pairs.get("driver")
    if driver and driver not in pyodbc.drivers():
        installed = ", ".join(pyodbc.drivers()) or "none"
        raise DriverNotInstalledError(
            f"ODBC driver {driver!r} named in SqlConnectionString is not installed (installed: "
            f"{installed}). Locally: 'sudo apt-get install unixodbc libsqliteodbc' for SQLite3, "
            "'odbc-postgresql' for PostgreSQL; for Azure SQL install 'ODBC Driver 18 for SQL "
            "Server' (msodbcsql18), which Azure Functions' Python images already have."
        )
    try:
        return pyodbc.connect(connection_string, autocommit=False, timeout=timeout)
    except pyodbc.InterfaceError as exc:
        raise ConfigurationError(
            f"ODBC could not use SqlConnectionString ({_redact(connection_string)}): {exc}"
        ) from None
    except pyodbc.Error as exc:
        if is_transient(exc):
            raise DatabaseUnavailableError(f"database is unavailable: {exc}") from None
        raise ConfigurationError(
            f"could not open the database named by SqlConnectionString "
            f"({_redact(connection_string)}): {exc}"
        ) from None


def dialect_for(conn: pyodbc.Connection) -> Dialect:
    dbms = str(conn.getinfo(pyodbc.SQL_DBMS_NAME)).strip().lower()
    for prefix, cls in DIALECTS.items():
        if dbms.startswith(prefix):
            return cls()
    raise ConfigurationError(
        f"database engine {dbms!r} is not supported; use Azure SQL / SQL Server, PostgreSQL or SQLite"
    )


class SqlStore:
    """A connection with its dialect; one per thread, reused across invocations."""

    def __init__(self, connection_string: str) -> None:
        self.connection_string = connection_string
        self._conn: pyodbc.Connection | None = None
        self._dialect: Dialect | None = None
        self._schema_ready = False

    @property
    def dialect(self) -> Dialect:
        self._connection()
        assert self._dialect is not None
        return self._dialect

    def _connection(self) -> pyodbc.Connection:
        if self._conn is None:
            self._conn = connect(self.connection_string)
            self._dialect = dialect_for(self._conn)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except pyodbc.Error:
                pass
        self._conn = None

    def _run(self, work: Callable[[pyodbc.Cursor], Any]) -> Any:
        """Run work in one transaction; on a lost connection drop it so the next try reconnects."""
        conn = self._connection()
        try:
            cursor = conn.cursor()
            result = work(cursor)
            conn.commit()
            return result
        except pyodbc.Error as exc:
            try:
                conn.rollback()
            except pyodbc.Error:
                pass
            if is_transient(exc):
                self.close()
                raise DatabaseUnavailableError(f"database is unavailable: {exc}") from None
            raise

    def existing_columns(self) -> set[str]:
        def probe(cursor: pyodbc.Cursor) -> set[str]:
            cursor.execute(self.dialect.probe_columns())
            return {d[0].lower() for d in cursor.description}

        return self._run(probe)

    def ensure_schema(self) -> None:
        """Create the table, then add any column a newer version knows (rows are kept)."""
        if self._schema_ready:
            return
        dialect = self.dialect
        self._run(lambda cur: cur.execute(dialect.create_table()))
        present = self.existing_columns()
        for col in COLUMNS:
            if col.name.lower() not in present:
                try:
                    self._run(lambda cur, c=col: cur.execute(dialect.add_column(c)))
                except pyodbc.Error:
                    # Another writer may have added it first; only a still-missing column is an error.
                    if col.name.lower() not in self.existing_columns():
                        raise
        self._schema_ready = True

    def upsert(self, record: ImageRecord) -> bool:
        """Write the row for this blob version; False when a newer version's row was kept."""
        self.ensure_schema()
        dialect = self.dialect
        params = [dialect.to_db(c, c.value(record)) for c in COLUMNS]  # type: ignore[misc]

        def write(cursor: pyodbc.Cursor) -> bool:
            cursor.execute(dialect.upsert(), params)
            return cursor.rowcount != 0

        return self._run(write)

    def mark_deleted(
        self, container: str, blob_name: str, *, deleted_at: datetime, sequencer: str | None = None,
        etag: str | None = None,
    ) -> bool:
        """Record that the blob is gone; False when a newer state was kept (see delete_condition).

        ``etag`` limits the deletion to that version (reconciliation saw exactly it gone);
        ``sequencer`` orders it against Event Grid events of the same blob.
        """
        self.ensure_schema()
        dialect = self.dialect
        when = deleted_at.astimezone(UTC).replace(tzinfo=None) if deleted_at.tzinfo else deleted_at
        now = datetime.now(UTC).replace(tzinfo=None)
        params = [blob_key(container, blob_name), container, blob_name,
                  blob_name.rsplit("/", 1)[-1] or blob_name, etag, sequencer,
                  dialect.to_db(COLUMNS[0], when), dialect.to_db(COLUMNS[0], now)]

        def write(cursor: pyodbc.Cursor) -> bool:
            cursor.execute(dialect.mark_deleted(), params)
            return cursor.rowcount != 0

        return self._run(write)

    def rows_by_keys(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """BlobKey -> {BlobName, ETag, Status, Sequencer} for the rows that exist among ``keys``."""
        self.ensure_schema()
        if not keys:
            return {}
        sql = self.dialect.select_by_keys(len(keys))

        def read(cursor: pyodbc.Cursor) -> dict[str, dict[str, Any]]:
            cursor.execute(sql, keys)
            return {row[0].strip(): {"BlobName": row[1], "ETag": row[2], "Status": row[3], "Sequencer": row[4]}
                    for row in cursor.fetchall()}

        return self._run(read)

    def page_live_rows(self, container: str, after_key: str, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` rows not deleted, BlobKey after ``after_key`` (keyset paging, index-backed)."""
        self.ensure_schema()
        sql = self.dialect.page_after_key()

        def read(cursor: pyodbc.Cursor) -> list[dict[str, Any]]:
            cursor.execute(sql, (container, after_key, limit))
            return [{"BlobKey": r[0].strip(), "BlobName": r[1], "ETag": r[2], "Status": r[3]}
                    for r in cursor.fetchall()]

        return self._run(read)

    def rows(self, where: str = "", params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Read rows as dicts keyed by the column names above (for tools and tests)."""
        self.ensure_schema()
        sql = self.dialect.select_rows(where)

        def read(cursor: pyodbc.Cursor) -> list[dict[str, Any]]:
            cursor.execute(sql, params)
            names = ["Id", *COLUMN_NAMES]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

        return self._run(read)


_local = threading.local()


def store_for(connection_string: str) -> SqlStore:
    """The calling thread's store for this connection string (connections are not thread-safe)."""
    stores: dict[str, SqlStore] = getattr(_local, "stores", None) or {}
    _local.stores = stores
    store = stores.get(connection_string)
    if store is None:
        store = stores[connection_string] = SqlStore(connection_string)
    return store
