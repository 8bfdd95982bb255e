"""The ImageMetadata table: schema, additive migrations, idempotent upserts.

Two DB-API drivers, chosen from the connection string: Microsoft's
``mssql-python`` (its wheel bundles the SQL Server driver, so it works on any
Linux image, Flex Consumption included) when the string names a ``Server`` and
no ``Driver``; pyodbc with the ODBC driver it names otherwise (SQLite,
PostgreSQL, or SQL Server through ODBC Driver 18).

One SQL dialect per engine, chosen from the live connection (``SQL_DBMS_NAME``):
T-SQL for Azure SQL / SQL Server (either driver, same statements, ``?``
parameters), PostgreSQL, and SQLite for local development. Every statement is
parameterised; identifiers come only from the column table below, never from data.

Rows are keyed by ``BlobKey`` = SHA-256 of ``container/blob name``, the one
uniqueness every dialect's upsert arbitrates. SQL Server limits an index key to
1,700 bytes, which a unique index on a 1,024-character NVARCHAR blob name would
exceed. A second unique constraint on (Container, BlobName), which older
versions created on SQLite and PostgreSQL, is redundant (container names hold
no '/', so the hash input is unambiguous) and harmful: PostgreSQL's
``ON CONFLICT (BlobKey)`` absorbs conflicts on its arbiter index only, so two
writers racing on a new blob could fail with a unique violation on the other
one. ``ensure_schema`` drops it from existing tables.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyodbc

from shared.errors import ConfigurationError, DatabaseUnavailableError, DriverNotInstalledError
from shared.models import EXTRACTOR_VERSION, STATUS_DELETED, STATUS_PROCESSED, ImageRecord
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


def _json_list(attr: str, size: int) -> Callable[[ImageRecord], str | None]:
    """A list as a JSON array of strings that fits the column: whole items are dropped from
    the end rather than cutting the JSON (SQLite json_each, PostgreSQL jsonb, T-SQL OPENJSON
    all read it)."""

    def value(r: ImageRecord) -> str | None:
        items = list(getattr(r.metadata, attr) or [])
        while items:
            text = json.dumps(items, ensure_ascii=False)
            if len(text) <= size:
                return text
            items.pop()
        return None

    return value


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
    # ---- Issue 10: descriptive metadata, capture instant, places, extractor version ----
    Column("CapturedAtSource", "text", 16, _meta("captured_at_source")),
    Column("CapturedAtUtc", "datetime", value=lambda r: _parse_time(r.metadata.captured_at_utc)),
    Column("CapturedAtUtcSource", "text", 16, _meta("captured_at_utc_source")),
    Column("TimeZone", "text", 64, _meta("time_zone")),
    Column("GpsDateTime", "datetime", value=lambda r: _parse_time(r.metadata.gps_date_time)),
    Column("Title", "text", 512, _meta("title")),
    Column("Description", "text", 2000, _meta("description")),
    Column("Keywords", "text", 4000, _json_list("keywords", 4000)),
    Column("Rating", "int", value=_meta("rating")),
    Column("Artist", "text", 256, _meta("artist")),
    Column("Copyright", "text", 512, _meta("copyright")),
    Column("Country", "text", 128, _meta("country")),
    Column("Region", "text", 128, _meta("region")),
    Column("City", "text", 128, _meta("city")),
    Column("ExtractorVersion", "int",
           value=lambda r: r.metadata.extractor_version or EXTRACTOR_VERSION),
    Column("MetadataWarnings", "text", 2000, _json_list("warnings", 2000)),
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
        return (f"SELECT BlobKey, BlobName, ETag, Status, Sequencer, ExtractorVersion FROM {TABLE} "
                f"WHERE BlobKey IN ({marks})")

    def page_after_key(self) -> str:
        """Keyset page of rows not deleted in one container: (Container, after BlobKey, limit)."""
        return (f"SELECT BlobKey, BlobName, ETag, Status FROM {TABLE} WHERE Container = ? "
                f"AND Status <> '{STATUS_DELETED}' AND BlobKey > ? ORDER BY BlobKey LIMIT ?")

    def schema_lock(self) -> str | None:
        """A statement that makes concurrent migrators (cold-started instances) take turns until
        their transaction ends; None where the engine serialises DDL itself (SQLite's write lock)."""
        return None

    def legacy_unique_indexes(self) -> str | None:
        """A query naming unique constraints other than BlobKey's; None when none can exist."""
        return None

    def drop_unique(self, table_columns: list[str], name: str = "") -> list[str]:
        """Statements that remove one such constraint (keeping every row)."""
        return []

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
            f"    {_column_defs(self)}\n)"
        )

    def legacy_unique_indexes(self) -> str:
        """Unique indexes other than BlobKey's (older versions made one on (Container, BlobName))."""
        return (
            f"SELECT il.name FROM pragma_index_list('{TABLE}') AS il WHERE il.\"unique\" = 1 AND EXISTS "
            "(SELECT 1 FROM pragma_index_info(il.name) AS ii WHERE lower(ii.name) <> 'blobkey')"
        )

    def drop_unique(self, table_columns: list[str], name: str = "") -> list[str]:
        """SQLite cannot drop a table constraint: rebuild the table without it, keeping every row."""
        kept = ", ".join(["Id", *(c for c in table_columns if c.lower() != "id")])
        return [
            f"ALTER TABLE {TABLE} RENAME TO {TABLE}_unique_migration",
            self.create_table(),
            f"INSERT INTO {TABLE} ({kept}) SELECT {kept} FROM {TABLE}_unique_migration",
            f"DROP TABLE {TABLE}_unique_migration",
        ]

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
            f"    {_column_defs(self)}\n)"
        )

    def add_column(self, col: Column) -> str:
        return f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS {col.name} {self.type_of(col)} NULL"

    def schema_lock(self) -> str:
        return f"SELECT pg_advisory_xact_lock(hashtext('{TABLE} schema'))"

    def legacy_unique_indexes(self) -> str:
        return (
            "SELECT c.conname FROM pg_constraint AS c WHERE c.conrelid = to_regclass('imagemetadata') "
            "AND c.contype = 'u' AND EXISTS (SELECT 1 FROM pg_attribute AS a WHERE a.attrelid = c.conrelid "
            "AND a.attnum = ANY (c.conkey) AND a.attname <> 'blobkey')"
        )

    def drop_unique(self, table_columns: list[str], name: str = "") -> list[str]:
        # The name comes from the catalog (never from data); quoted as an identifier.
        return [f'ALTER TABLE {TABLE} DROP CONSTRAINT IF EXISTS "{name.replace(chr(34), "")}"']

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

    def schema_lock(self) -> str:
        return (f"EXEC sp_getapplock @Resource = N'{TABLE} schema', @LockMode = N'Exclusive', "
                "@LockOwner = N'Transaction', @LockTimeout = 60000;")

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


# ---- Issue 10: query support, created by the migration in every dialect ----------------
# The README's queries (by camera, capture instant, keyword, rating, rejections, GPS radius,
# newest first) each have an index here. A keyword list is stored twice: as a JSON array in
# ImageMetadata.Keywords (what the row says), and one row per lower-cased keyword in
# ImageKeyword, kept in step by a trigger on Keywords, so "tagged X" is an index seek in all
# three engines (a JSON column alone cannot be indexed for membership in SQLite or T-SQL).

KEYWORD_TABLE = "ImageKeyword"
KEYWORD_SIZE = 200
INDEXES: tuple[tuple[str, str], ...] = (
    ("IX_ImageMetadata_Camera", "CameraMake, CameraModel"),
    ("IX_ImageMetadata_CapturedAtUtc", "CapturedAtUtc, Id"),
    ("IX_ImageMetadata_Rating", "Rating"),
    ("IX_ImageMetadata_Status", "Status, ProcessedAt"),
    ("IX_ImageMetadata_Gps", "GpsLatitude, GpsLongitude"),
)


def _sqlite_query_support() -> list[str]:
    keywords = (f"INSERT OR IGNORE INTO {KEYWORD_TABLE} (Keyword, ImageId) "
                "SELECT lower(value), NEW.Id FROM json_each(CASE WHEN json_valid(NEW.Keywords) "
                "THEN NEW.Keywords ELSE '[]' END) WHERE type = 'text';")
    return [
        *(f"CREATE INDEX IF NOT EXISTS {name} ON {TABLE} ({cols})" for name, cols in INDEXES),
        f"CREATE TABLE IF NOT EXISTS {KEYWORD_TABLE} (Keyword TEXT NOT NULL, ImageId INTEGER NOT NULL, "
        "PRIMARY KEY (Keyword, ImageId)) WITHOUT ROWID",
        f"CREATE INDEX IF NOT EXISTS IX_{KEYWORD_TABLE}_ImageId ON {KEYWORD_TABLE} (ImageId)",
        f"CREATE TRIGGER IF NOT EXISTS TR_{TABLE}_KeywordsInsert AFTER INSERT ON {TABLE} "
        f"BEGIN {keywords} END",
        f"CREATE TRIGGER IF NOT EXISTS TR_{TABLE}_KeywordsUpdate AFTER UPDATE OF Keywords ON {TABLE} "
        f"BEGIN DELETE FROM {KEYWORD_TABLE} WHERE ImageId = OLD.Id; {keywords} END",
        f"CREATE TRIGGER IF NOT EXISTS TR_{TABLE}_KeywordsDelete AFTER DELETE ON {TABLE} "
        f"BEGIN DELETE FROM {KEYWORD_TABLE} WHERE ImageId = OLD.Id; END",
    ]


def _postgres_query_support() -> list[str]:
    # Concurrent CREATE OR REPLACE of one function or trigger fails ("tuple concurrently
    # updated"): ensure_schema runs these under the dialect's schema lock.
    return [
        *(f"CREATE INDEX IF NOT EXISTS {name} ON {TABLE} ({cols})" for name, cols in INDEXES),
        f"CREATE TABLE IF NOT EXISTS {KEYWORD_TABLE} (Keyword VARCHAR({KEYWORD_SIZE}) NOT NULL, "
        f"ImageId BIGINT NOT NULL REFERENCES {TABLE} (Id) ON DELETE CASCADE, PRIMARY KEY (Keyword, ImageId))",
        f"CREATE INDEX IF NOT EXISTS IX_{KEYWORD_TABLE}_ImageId ON {KEYWORD_TABLE} (ImageId)",
        f"CREATE OR REPLACE FUNCTION {TABLE}_SyncKeywords() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "DECLARE parsed jsonb;\n"
        "BEGIN\n"
        f"  IF TG_OP = 'UPDATE' THEN DELETE FROM {KEYWORD_TABLE} WHERE ImageId = OLD.Id; END IF;\n"
        "  BEGIN parsed := NEW.Keywords::jsonb; EXCEPTION WHEN others THEN parsed := NULL; END;\n"
        "  IF jsonb_typeof(parsed) = 'array' THEN\n"
        f"    INSERT INTO {KEYWORD_TABLE} (Keyword, ImageId)\n"
        f"    SELECT DISTINCT left(lower(k), {KEYWORD_SIZE}), NEW.Id\n"
        "    FROM jsonb_array_elements(parsed) AS e, LATERAL (SELECT e #>> '{}' AS k) AS t\n"
        "    WHERE jsonb_typeof(e) = 'string' ON CONFLICT DO NOTHING;\n"
        "  END IF;\n"
        "  RETURN NULL;\n"
        "END $$",
        f"CREATE OR REPLACE TRIGGER TR_{TABLE}_Keywords AFTER INSERT OR UPDATE OF Keywords ON {TABLE} "
        f"FOR EACH ROW EXECUTE FUNCTION {TABLE}_SyncKeywords()",
    ]


def _tsql_index(table: str, name: str, cols: str) -> str:
    return (f"IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N'{name}' "
            f"AND object_id = OBJECT_ID(N'dbo.{table}')) CREATE INDEX {name} ON dbo.{table} ({cols})")


# OPENJSON (compatibility level 130 or higher) without a schema returns key, value and type
# per array element; type 1 is a string. learn.microsoft.com/sql/t-sql/functions/openjson-transact-sql
TSQL_KEYWORD_TRIGGER_BODY = (
    f"DELETE k FROM dbo.{KEYWORD_TABLE} AS k INNER JOIN inserted AS i ON k.ImageId = i.Id;\n"
    f"INSERT INTO dbo.{KEYWORD_TABLE} (Keyword, ImageId)\n"
    f"SELECT DISTINCT LOWER(CAST(j.[value] AS NVARCHAR({KEYWORD_SIZE}))), i.Id FROM inserted AS i\n"
    "CROSS APPLY OPENJSON(CASE WHEN ISJSON(i.Keywords) = 1 THEN i.Keywords END) AS j\n"
    "WHERE j.[type] = 1;"
)


def _tsql_query_support() -> list[str]:
    return [
        *(_tsql_index(TABLE, name, cols) for name, cols in INDEXES),
        f"IF OBJECT_ID(N'dbo.{KEYWORD_TABLE}', N'U') IS NULL CREATE TABLE dbo.{KEYWORD_TABLE} (\n"
        f"    Keyword NVARCHAR({KEYWORD_SIZE}) NOT NULL,\n"
        f"    ImageId BIGINT NOT NULL CONSTRAINT FK_{KEYWORD_TABLE}_Image REFERENCES dbo.{TABLE} (Id) "
        "ON DELETE CASCADE,\n"
        f"    CONSTRAINT PK_{KEYWORD_TABLE} PRIMARY KEY (Keyword, ImageId)\n)",
        _tsql_index(KEYWORD_TABLE, f"IX_{KEYWORD_TABLE}_ImageId", "ImageId"),
        f"CREATE OR ALTER TRIGGER dbo.TR_{TABLE}_Keywords ON dbo.{TABLE} AFTER INSERT, UPDATE AS\n"
        "BEGIN\n"
        "SET NOCOUNT ON;\n"
        "IF NOT UPDATE(Keywords) RETURN;\n"
        f"{TSQL_KEYWORD_TRIGGER_BODY}\n"
        "END",
    ]


QUERY_SUPPORT: dict[str, Callable[[], list[str]]] = {
    "sqlite": _sqlite_query_support,
    "postgresql": _postgres_query_support,
    "tsql": _tsql_query_support,
}


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


@functools.cache
def _error_types() -> tuple[type[BaseException], ...]:
    """The DB-API error base classes of the drivers that are importable here."""
    types: list[type[BaseException]] = [pyodbc.Error]
    try:
        import mssql_python
    except ImportError:
        return tuple(types)
    types.append(mssql_python.Error)
    return tuple(types)


def is_transient(exc: BaseException) -> bool:
    """Whether a driver error (pyodbc or mssql-python) clears up if we wait and try again."""
    if not isinstance(exc, _error_types()):
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


PYODBC = "pyodbc"
MSSQL_PYTHON = "mssql-python"

# Keywords the ODBC driver manager or pyodbc understand but mssql-python refuses
# (its parser allows only ODBC Driver 18's own keywords, and sets Driver itself).
_MSSQL_PYTHON_TIMEOUT_KEYS = ("connection timeout", "connect timeout", "timeout", "login timeout")

_MSSQL_PYTHON_HELP = (
    "For Azure SQL without an ODBC driver in the OS image (Flex Consumption), leave Driver out: "
    "'Server=tcp:<server>.database.windows.net,1433;Database=<db>;Encrypt=yes;"
    "Authentication=ActiveDirectoryMSI;UID=<identity client id>;' uses mssql-python, whose wheel "
    "bundles Microsoft's driver."
)


# How mssql-python reports a driver it cannot load (ddbc_bindings: the native library or one of its
# OS dependencies missing); retrying cannot help, so it must not look like a lost connection.
_DRIVER_LOAD_FAILURES = ("failed to load the driver", "odbc driver binaries are missing")
_DRIVER_LOAD_HELP = (
    "mssql-python could not load its bundled SQL Server driver ({exc}). Reinstall it "
    "('pip install --force-reinstall mssql-python mssql-python-odbc'); on Debian/Ubuntu it also needs "
    "'apt-get install libltdl7 libkrb5-3 libgssapi-krb5-2'. Or name an installed ODBC driver with Driver={{...}}."
)
_TOKEN_HELP = (
    "could not get an Entra ID token for the database: {exc}. Check that the function app has the "
    "user-assigned managed identity and that UID in SqlConnectionString is its client id."
)


def driver_for(connection_string: str) -> str:
    """pyodbc when the string names an ODBC Driver or DSN; mssql-python when it names only a Server."""
    pairs = check_sql_connection_string(connection_string)
    if "driver" in pairs or "dsn" in pairs:
        return PYODBC
    return MSSQL_PYTHON


def _connect_pyodbc(connection_string: str, driver: str | None, timeout: int) -> Any:
    if driver and driver not in pyodbc.drivers():
        installed = ", ".join(pyodbc.drivers()) or "none"
        raise DriverNotInstalledError(
            f"ODBC driver {driver!r} named in SqlConnectionString is not installed (installed: "
            f"{installed}). Locally: 'sudo apt-get install unixodbc libsqliteodbc' for SQLite3, "
            "'odbc-postgresql' for PostgreSQL; for SQL Server install 'ODBC Driver 18 for SQL "
            f"Server' (msodbcsql18). {_MSSQL_PYTHON_HELP}"
        )
    try:
        return pyodbc.connect(connection_string, autocommit=False, timeout=timeout)
    except pyodbc.InterfaceError as exc:
        raise ConfigurationError(
            f"ODBC could not use SqlConnectionString ({_redact(connection_string)}): {exc}"
        ) from None


def _load_mssql_python() -> Any:
    """Import mssql-python, turning a missing package or OS library into the fix to apply."""
    try:
        import mssql_python
    except ImportError as exc:
        raise DriverNotInstalledError(
            "SqlConnectionString names no ODBC Driver, so it needs Microsoft's mssql-python "
            f"driver, which cannot be loaded ({exc}). Add 'mssql-python' to requirements.txt; on "
            "Debian/Ubuntu it also needs 'apt-get install libltdl7 libkrb5-3 libgssapi-krb5-2'. "
            "Or name an installed ODBC driver with Driver={...}."
        ) from None
    return mssql_python


def _connect_mssql_python(connection_string: str, pairs: dict[str, str], timeout: int) -> Any:
    timeout_keys = [k for k in pairs if k in _MSSQL_PYTHON_TIMEOUT_KEYS]
    if timeout_keys:
        raise ConfigurationError(
            f"SqlConnectionString sets {', '.join(timeout_keys)!s}, which mssql-python does not accept "
            "(the app sets the login timeout itself): remove it."
        )
    mssql_python = _load_mssql_python()
    try:
        return mssql_python.connect(connection_string, autocommit=False, timeout=timeout)
    except mssql_python.ConnectionStringParseError as exc:
        raise ConfigurationError(
            f"mssql-python refused SqlConnectionString ({_redact(connection_string)}): "
            f"{'; '.join(exc.errors)}. {_MSSQL_PYTHON_HELP}"
        ) from None
    except RuntimeError as exc:
        if any(sign in str(exc).lower() for sign in _DRIVER_LOAD_FAILURES):
            raise DriverNotInstalledError(_DRIVER_LOAD_HELP.format(exc=exc)) from None
        # mssql-python reports a failed Entra ID token request (no managed identity, wrong
        # client id) as RuntimeError; retrying does not help until the setting is fixed.
        raise ConfigurationError(_TOKEN_HELP.format(exc=exc)) from None


def connect(connection_string: str, timeout: int = 30) -> Any:
    """Open a connection with the driver the string asks for, explaining the usual failures."""
    pairs = check_sql_connection_string(connection_string)
    use_odbc = driver_for(connection_string) == PYODBC
    errors = _error_types()
    try:
        if use_odbc:
            return _connect_pyodbc(connection_string, pairs.get("driver"), timeout)
        return _connect_mssql_python(connection_string, pairs, timeout)
    except errors as exc:
        if any(sign in str(exc).lower() for sign in _DRIVER_LOAD_FAILURES):
            raise DriverNotInstalledError(_DRIVER_LOAD_HELP.format(exc=exc)) from None
        if "access token" in str(exc).lower():
            raise ConfigurationError(_TOKEN_HELP.format(exc=exc)) from None
        if is_transient(exc):
            raise DatabaseUnavailableError(f"database is unavailable: {exc}") from None
        raise ConfigurationError(
            f"could not open the database named by SqlConnectionString "
            f"({_redact(connection_string)}): {exc}"
        ) from None


def dialect_for(conn: Any) -> Dialect:
    if not isinstance(conn, pyodbc.Connection):
        return TSqlDialect()  # mssql-python speaks only to SQL Server and Azure SQL
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
        self._conn: Any = None
        self._dialect: Dialect | None = None
        self._schema_ready = False

    @property
    def dialect(self) -> Dialect:
        self._connection()
        assert self._dialect is not None
        return self._dialect

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = connect(self.connection_string)
            self._dialect = dialect_for(self._conn)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except _error_types():
                pass
        self._conn = None

    def _run(self, work: Callable[[Any], Any], write_lock_first: bool = False) -> Any:
        """Run work in one transaction; on a lost connection drop it so the next try reconnects.

        ``write_lock_first`` (SQLite only): take the write lock when the transaction begins
        (BEGIN IMMEDIATE). A deferred transaction that reads and then writes can meet another one
        doing the same, and SQLite then fails one at once instead of letting it wait."""
        conn = self._connection()
        immediate = write_lock_first and self.dialect.name == "sqlite"
        try:
            cursor = conn.cursor()
            if immediate:
                conn.autocommit = True
                cursor.execute("BEGIN IMMEDIATE")
            result = work(cursor)
            if immediate:
                cursor.execute("COMMIT")
            else:
                conn.commit()
            return result
        except _error_types() as exc:
            try:
                if immediate:
                    conn.cursor().execute("ROLLBACK")
                else:
                    conn.rollback()
            except _error_types():
                pass
            if is_transient(exc):
                self.close()
                raise DatabaseUnavailableError(f"database is unavailable: {exc}") from None
            raise
        finally:
            if immediate and self._conn is conn:
                conn.autocommit = False

    def existing_columns(self) -> set[str]:
        def probe(cursor: Any) -> set[str]:
            cursor.execute(self.dialect.probe_columns())
            return {d[0].lower() for d in cursor.description}

        return self._run(probe)

    def ensure_schema(self) -> None:
        """Create the table, add any column a newer version knows, drop the legacy second unique
        constraint, and add the query indexes and keyword table: one transaction under the
        dialect's schema lock, so instances starting together migrate one after another and each
        finds the work done (rows are always kept)."""
        if self._schema_ready:
            return
        dialect = self.dialect

        def migrate(cursor: Any) -> None:
            lock = dialect.schema_lock()
            if lock:
                cursor.execute(lock)
            cursor.execute(dialect.create_table())
            cursor.execute(dialect.probe_columns())
            present = {d[0].lower() for d in cursor.description}
            for col in COLUMNS:
                if col.name.lower() not in present:
                    cursor.execute(dialect.add_column(col))
            query = dialect.legacy_unique_indexes()
            if query is not None:
                cursor.execute(query)
                names = [row[0] for row in cursor.fetchall()]
                if names:
                    cursor.execute(dialect.probe_columns())
                    columns = [d[0] for d in cursor.description]
                    for name in names:
                        for statement in dialect.drop_unique(columns, name):
                            cursor.execute(statement)
            for statement in QUERY_SUPPORT[dialect.name]():
                cursor.execute(statement)

        self._run(migrate, write_lock_first=True)
        self._schema_ready = True

    def upsert(self, record: ImageRecord) -> bool:
        """Write the row for this blob version; False when a newer version's row was kept."""
        self.ensure_schema()
        dialect = self.dialect
        params = [dialect.to_db(c, c.value(record)) for c in COLUMNS]  # type: ignore[misc]

        def write(cursor: Any) -> bool:
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
        """BlobKey -> {BlobName, ETag, Status, Sequencer, ExtractorVersion} for the rows that exist
        among ``keys``."""
        self.ensure_schema()
        if not keys:
            return {}
        sql = self.dialect.select_by_keys(len(keys))

        def read(cursor: pyodbc.Cursor) -> dict[str, dict[str, Any]]:
            cursor.execute(sql, keys)
            return {row[0].strip(): {"BlobName": row[1], "ETag": row[2], "Status": row[3], "Sequencer": row[4],
                                     "ExtractorVersion": row[5]}
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

        def read(cursor: Any) -> list[dict[str, Any]]:
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
