"""Schema statements per engine: the table, its added columns, the legacy second unique
constraint, and the query support (indexes and the keyword table kept by a trigger).

Only shared.store.migrations runs these, with DDL rights (``make migrate``, the azd hook, or the
first run of an app whose identity may change the schema). The README's queries (by camera,
capture instant, keyword, rating, rejections, GPS radius, newest first) each have an index here.
A keyword list is stored twice: as a JSON array in ImageMetadata.Keywords (what the row says),
and one row per lower-cased keyword in ImageKeyword, kept in step by a trigger on Keywords, so
"tagged X" is an index seek in all three engines.
"""

from __future__ import annotations

from shared.hash_bands import BANDS
from shared.store.columns import (
    BASELINE_COLUMNS,
    COLUMNS,
    KEYWORD_SIZE,
    KEYWORD_TABLE,
    TABLE,
    Column,
    band_column,
)

__all__ = ["KEYWORD_TABLE", "TABLE"]
from shared.store.dialects import Dialect

VERSION_TABLE = "SchemaVersion"

INDEXES: tuple[tuple[str, str], ...] = (
    ("IX_ImageMetadata_Camera", "CameraMake, CameraModel"),
    ("IX_ImageMetadata_CapturedAtUtc", "CapturedAtUtc, Id"),
    ("IX_ImageMetadata_Rating", "Rating"),
    ("IX_ImageMetadata_Status", "Status, ProcessedAt"),
    ("IX_ImageMetadata_Gps", "GpsLatitude, GpsLongitude"),
)

# Duplicate search (migration 3): exact duplicates by ContentMD5 (with Status, so "not deleted"
# is read from the index), near duplicates by one band of the perceptual hash each (with the
# whole hash, so the exact distance is computed from the index alone); see shared.hash_bands.
DUPLICATE_INDEXES: tuple[tuple[str, str], ...] = (
    ("IX_ImageMetadata_ContentMD5", "ContentMD5, Status"),
    *((f"IX_ImageMetadata_{band_column(i)}", f"{band_column(i)}, PerceptualHash") for i in range(BANDS)),
)


def column_defs(dialect: Dialect, columns: tuple[Column, ...] = COLUMNS) -> str:
    return ",\n    ".join(f"{c.name} {dialect.type_of(c)} NULL" for c in columns if c.kind != "key")


# ---- SQLite ---------------------------------------------------------------------------------

def sqlite_create_table(columns: tuple[Column, ...] = COLUMNS) -> str:
    from shared.store.dialects import SQLiteDialect

    return (f"CREATE TABLE IF NOT EXISTS {TABLE} (\n    Id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
            f"    BlobKey TEXT NOT NULL UNIQUE,\n    {column_defs(SQLiteDialect(), columns)}\n)")


SQLITE_LEGACY_UNIQUE = (
    f"SELECT il.name FROM pragma_index_list('{TABLE}') AS il WHERE il.\"unique\" = 1 AND EXISTS "
    "(SELECT 1 FROM pragma_index_info(il.name) AS ii WHERE lower(ii.name) <> 'blobkey')"
)


def sqlite_drop_unique(table_columns: list[str]) -> list[str]:
    """SQLite cannot drop a table constraint: rebuild the table without it, keeping every row
    (the baseline's columns: migration 1 runs this, and the later columns come after it)."""
    kept = ", ".join(["Id", *(c for c in table_columns if c.lower() != "id")])
    return [
        f"ALTER TABLE {TABLE} RENAME TO {TABLE}_unique_migration",
        sqlite_create_table(BASELINE_COLUMNS),
        f"INSERT INTO {TABLE} ({kept}) SELECT {kept} FROM {TABLE}_unique_migration",
        f"DROP TABLE {TABLE}_unique_migration",
    ]


def sqlite_duplicate_support() -> list[str]:
    return [f"CREATE INDEX IF NOT EXISTS {name} ON {TABLE} ({cols})" for name, cols in DUPLICATE_INDEXES]


def sqlite_query_support() -> list[str]:
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


# ---- PostgreSQL -----------------------------------------------------------------------------

def postgres_create_table(columns: tuple[Column, ...] = COLUMNS) -> str:
    from shared.store.dialects import PostgresDialect

    return (f"CREATE TABLE IF NOT EXISTS {TABLE} (\n    Id BIGSERIAL PRIMARY KEY,\n"
            f"    BlobKey CHAR(64) NOT NULL UNIQUE,\n    {column_defs(PostgresDialect(), columns)}\n)")


POSTGRES_LEGACY_UNIQUE = (
    "SELECT c.conname FROM pg_constraint AS c WHERE c.conrelid = to_regclass('imagemetadata') "
    "AND c.contype = 'u' AND EXISTS (SELECT 1 FROM pg_attribute AS a WHERE a.attrelid = c.conrelid "
    "AND a.attnum = ANY (c.conkey) AND a.attname <> 'blobkey')"
)


def postgres_drop_unique(name: str) -> str:
    # The name comes from the catalog (never from data); quoted as an identifier.
    return f'ALTER TABLE {TABLE} DROP CONSTRAINT IF EXISTS "{name.replace(chr(34), "")}"'


def postgres_duplicate_support() -> list[str]:
    return [f"CREATE INDEX IF NOT EXISTS {name} ON {TABLE} ({cols})" for name, cols in DUPLICATE_INDEXES]


def postgres_query_support() -> list[str]:
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


# ---- T-SQL ----------------------------------------------------------------------------------

def tsql_create_table(columns: tuple[Column, ...] = COLUMNS) -> str:
    from shared.store.dialects import TSqlDialect

    return (f"IF OBJECT_ID(N'dbo.{TABLE}', N'U') IS NULL\nCREATE TABLE dbo.{TABLE} (\n"
            "    Id BIGINT IDENTITY(1, 1) NOT NULL PRIMARY KEY,\n"
            "    BlobKey CHAR(64) NOT NULL CONSTRAINT UQ_ImageMetadata_BlobKey UNIQUE,\n"
            f"    {column_defs(TSqlDialect(), columns)}\n)")


def tsql_add_column(col: Column) -> str:
    from shared.store.dialects import TSqlDialect

    return (f"IF COL_LENGTH(N'dbo.{TABLE}', N'{col.name}') IS NULL "
            f"ALTER TABLE dbo.{TABLE} ADD {col.name} {TSqlDialect().type_of(col)} NULL")


def tsql_widen(col: Column) -> str:
    """NVARCHAR(n) to the UTF-16 size the column needs (COL_LENGTH is in bytes: 2 per unit);
    widening a variable-length column is a metadata-only change (ALTER TABLE, learn.microsoft.com)."""
    from shared.store.dialects import TSqlDialect

    size = col.size_in(TSqlDialect.unit)
    return (f"IF COL_LENGTH(N'dbo.{TABLE}', N'{col.name}') < {2 * size} "
            f"ALTER TABLE dbo.{TABLE} ALTER COLUMN {col.name} NVARCHAR({size}) NULL")


def tsql_index(table: str, name: str, cols: str) -> str:
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


def tsql_duplicate_support() -> list[str]:
    return [tsql_index(TABLE, name, cols) for name, cols in DUPLICATE_INDEXES]


def tsql_query_support() -> list[str]:
    return [
        *(tsql_index(TABLE, name, cols) for name, cols in INDEXES),
        f"IF OBJECT_ID(N'dbo.{KEYWORD_TABLE}', N'U') IS NULL CREATE TABLE dbo.{KEYWORD_TABLE} (\n"
        f"    Keyword NVARCHAR({KEYWORD_SIZE}) NOT NULL,\n"
        f"    ImageId BIGINT NOT NULL CONSTRAINT FK_{KEYWORD_TABLE}_Image REFERENCES dbo.{TABLE} (Id) "
        "ON DELETE CASCADE,\n"
        f"    CONSTRAINT PK_{KEYWORD_TABLE} PRIMARY KEY (Keyword, ImageId)\n)",
        tsql_index(KEYWORD_TABLE, f"IX_{KEYWORD_TABLE}_ImageId", "ImageId"),
        f"CREATE OR ALTER TRIGGER dbo.TR_{TABLE}_Keywords ON dbo.{TABLE} AFTER INSERT, UPDATE AS\n"
        "BEGIN\n"
        "SET NOCOUNT ON;\n"
        "IF NOT UPDATE(Keywords) RETURN;\n"
        f"{TSQL_KEYWORD_TRIGGER_BODY}\n"
        "END",
    ]


# sp_getapplock returns 0 (granted) or 1 (granted after waiting) and a negative number when it was
# not granted (-1 timeout, -2 cancelled, -3 deadlock victim, -999 parameter or other error)
# instead of raising (learn.microsoft.com/sql/relational-databases/system-stored-procedures/
# sp-getapplock-transact-sql): the result is selected and checked by the caller.
TSQL_SCHEMA_LOCK = (
    "DECLARE @lock INT;\n"
    f"EXEC @lock = sp_getapplock @Resource = N'{TABLE} schema', @LockMode = N'Exclusive', "
    "@LockOwner = N'Transaction', @LockTimeout = 60000;\n"
    "SELECT @lock AS LockResult;"
)
TSQL_LOCK_RESULTS = {0: "granted", 1: "granted after waiting", -1: "timed out", -2: "cancelled",
                     -3: "chosen as deadlock victim", -999: "parameter validation or other call error"}


def version_table(dialect_name: str) -> str:
    if dialect_name == "tsql":
        return (f"IF OBJECT_ID(N'dbo.{VERSION_TABLE}', N'U') IS NULL CREATE TABLE dbo.{VERSION_TABLE} "
                "(Version INT NOT NULL PRIMARY KEY, Description NVARCHAR(200) NULL, AppliedAt DATETIME2(6) NOT NULL)")
    stamp = "TIMESTAMP(6)" if dialect_name == "postgresql" else "TEXT"
    text = "VARCHAR(200)" if dialect_name == "postgresql" else "TEXT"
    return (f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (Version INTEGER NOT NULL PRIMARY KEY, "
            f"Description {text} NULL, AppliedAt {stamp} NOT NULL)")


def current_version(dialect_name: str) -> str:
    prefix = "dbo." if dialect_name == "tsql" else ""
    return f"SELECT MAX(Version) FROM {prefix}{VERSION_TABLE}"


def record_version(dialect_name: str) -> str:
    prefix = "dbo." if dialect_name == "tsql" else ""
    return f"INSERT INTO {prefix}{VERSION_TABLE} (Version, Description, AppliedAt) VALUES (?, ?, ?)"
