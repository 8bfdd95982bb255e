"""Versioned schema migrations: numbered per engine, run once, recorded in SchemaVersion.

``migrate`` runs every pending migration in one transaction under a lock whose result is checked
(SQLite: BEGIN IMMEDIATE, the database write lock; PostgreSQL: a transaction advisory lock with
a lock timeout; SQL Server: sp_getapplock's return code), so instances or ``make migrate`` runs
starting together take turns and each finds the work done. It needs DDL rights: ``make migrate``
and the azd post-provision hook run it; the app itself only reads the version, once per process,
with one query, and runs no DDL when the schema is current (see shared.store.store).

Migration 1 brings any table an earlier release created (every release before the version table
existed; tests/test_migrations.py replays each) to this release's shape: it creates the table,
adds the columns it lacks (additive, keeping rows), drops the legacy second unique constraint,
and adds the query support. A later change is a new numbered migration, never an edit of one
that shipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.errors import ConfigurationError, DatabaseUnavailableError
from shared.store import ddl
from shared.store.columns import BASELINE_COLUMNS, BY_NAME, PREVIEW_COLUMNS, TABLE, Column, now
from shared.store.dialects import Dialect


@dataclass(frozen=True)
class Migration:
    number: int
    description: str
    run: Callable[[Any, Dialect], None]


def _present_columns(cursor: Any, dialect: Dialect) -> set[str]:
    probe = f"SELECT TOP (0) * FROM dbo.{TABLE}" if dialect.name == "tsql" else f"SELECT * FROM {TABLE} WHERE 1 = 0"
    cursor.execute(probe)
    return {d[0].lower() for d in cursor.description}


def _add_sqlite_columns(cursor: Any, dialect: Dialect, columns: tuple[Column, ...]) -> None:
    present = _present_columns(cursor, dialect)
    for col in columns:
        if col.name.lower() not in present:
            cursor.execute(f"ALTER TABLE {TABLE} ADD COLUMN {col.name} {dialect.type_of(col)} NULL")


def _baseline_sqlite(cursor: Any, dialect: Dialect) -> None:
    cursor.execute(ddl.sqlite_create_table(BASELINE_COLUMNS))
    _add_sqlite_columns(cursor, dialect, BASELINE_COLUMNS)
    cursor.execute(ddl.SQLITE_LEGACY_UNIQUE)
    if cursor.fetchall():
        cursor.execute(f"SELECT * FROM {TABLE} WHERE 1 = 0")
        for statement in ddl.sqlite_drop_unique([d[0] for d in cursor.description]):
            cursor.execute(statement)
    for statement in ddl.sqlite_query_support():
        cursor.execute(statement)


def _add_postgres_columns(cursor: Any, dialect: Dialect, columns: tuple[Column, ...]) -> None:
    for col in columns:
        cursor.execute(f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS {col.name} {dialect.type_of(col)} NULL")


def _baseline_postgres(cursor: Any, dialect: Dialect) -> None:
    cursor.execute(ddl.postgres_create_table(BASELINE_COLUMNS))
    _add_postgres_columns(cursor, dialect, BASELINE_COLUMNS)
    cursor.execute(ddl.POSTGRES_LEGACY_UNIQUE)
    for (name,) in cursor.fetchall():
        cursor.execute(ddl.postgres_drop_unique(name))
    for statement in ddl.postgres_query_support():
        cursor.execute(statement)


def _baseline_tsql(cursor: Any, dialect: Dialect) -> None:
    cursor.execute(ddl.tsql_create_table(BASELINE_COLUMNS))
    for col in BASELINE_COLUMNS:
        cursor.execute(ddl.tsql_add_column(col))
    for statement in ddl.tsql_query_support():
        cursor.execute(statement)


def _nothing(cursor: Any, dialect: Dialect) -> None:
    """Characters are what PostgreSQL and SQLite count: their columns already fit."""


def _widen_names_tsql(cursor: Any, dialect: Dialect) -> None:
    for name in ("BlobName", "FileName"):
        cursor.execute(ddl.tsql_widen(BY_NAME[name]))


def _previews_sqlite(cursor: Any, dialect: Dialect) -> None:
    _add_sqlite_columns(cursor, dialect, PREVIEW_COLUMNS)
    for statement in ddl.sqlite_duplicate_support():
        cursor.execute(statement)


def _previews_postgres(cursor: Any, dialect: Dialect) -> None:
    _add_postgres_columns(cursor, dialect, PREVIEW_COLUMNS)
    for statement in ddl.postgres_duplicate_support():
        cursor.execute(statement)


def _previews_tsql(cursor: Any, dialect: Dialect) -> None:
    """Nullable columns without a default are a metadata-only change; each index is built once."""
    for col in PREVIEW_COLUMNS:
        cursor.execute(ddl.tsql_add_column(col))
    for statement in ddl.tsql_duplicate_support():
        cursor.execute(statement)


_BASELINE = "table, columns through DeletedAt, one uniqueness (BlobKey), query indexes, keyword table"
_WIDEN = "BlobName and FileName sized for 1,024 characters in UTF-16 units"
_PREVIEWS = "Previews, ThumbHash, content digests, perceptual hash and its bands, duplicate indexes"
MIGRATIONS: dict[str, tuple[Migration, ...]] = {
    "sqlite": (Migration(1, _BASELINE, _baseline_sqlite), Migration(2, _WIDEN, _nothing),
               Migration(3, _PREVIEWS, _previews_sqlite)),
    "postgresql": (Migration(1, _BASELINE, _baseline_postgres), Migration(2, _WIDEN, _nothing),
                   Migration(3, _PREVIEWS, _previews_postgres)),
    "tsql": (Migration(1, _BASELINE, _baseline_tsql), Migration(2, _WIDEN, _widen_names_tsql),
             Migration(3, _PREVIEWS, _previews_tsql)),
}
LATEST = max(m.number for m in MIGRATIONS["sqlite"])
assert all(max(m.number for m in ms) == LATEST for ms in MIGRATIONS.values())


def take_schema_lock(cursor: Any, dialect: Dialect) -> None:
    """Make concurrent migrators take turns until their transaction ends; raise if not granted."""
    if dialect.name == "postgresql":
        cursor.execute("SET LOCAL lock_timeout = '60s'")
        cursor.execute(f"SELECT pg_advisory_xact_lock(hashtext('{TABLE} schema'))")
        cursor.fetchall()
    elif dialect.name == "tsql":
        cursor.execute(ddl.TSQL_SCHEMA_LOCK)
        result = int(cursor.fetchone()[0])
        if result < 0:
            what = ddl.TSQL_LOCK_RESULTS.get(result, "not granted")
            raise DatabaseUnavailableError(
                f"the {TABLE} schema lock was not granted (sp_getapplock returned {result}: {what}); "
                "another migration holds it: try again")
    # SQLite: the caller began the transaction with BEGIN IMMEDIATE (the write lock).


def read_version(cursor: Any, dialect: Dialect) -> int:
    """The schema version recorded in the database (0 when no version table exists yet)."""
    cursor.execute(ddl.current_version(dialect.name))
    row = cursor.fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def apply_pending(cursor: Any, dialect: Dialect) -> list[int]:
    """Inside the caller's transaction: lock, then run and record what is not yet recorded."""
    take_schema_lock(cursor, dialect)
    cursor.execute(ddl.version_table(dialect.name))
    current = read_version(cursor, dialect)
    done = []
    for migration in MIGRATIONS[dialect.name]:
        if migration.number > current:
            migration.run(cursor, dialect)
            stamp = dialect.to_db(BY_NAME["ProcessedAt"], now())
            cursor.execute(ddl.record_version(dialect.name), (migration.number, migration.description, stamp))
            done.append(migration.number)
    return done


def migrate(conn: Any, dialect: Dialect) -> list[int]:
    """Run the pending migrations on an open connection (autocommit off) in one transaction;
    the numbers applied (empty when the schema was current)."""
    cursor = conn.cursor()
    sqlite = dialect.name == "sqlite"
    try:
        if sqlite:
            conn.autocommit = True
            cursor.execute("BEGIN IMMEDIATE")
        done = apply_pending(cursor, dialect)
        if sqlite:
            cursor.execute("COMMIT")
        else:
            conn.commit()
        return done
    except BaseException:
        try:
            if sqlite:
                cursor.execute("ROLLBACK")
            else:
                conn.rollback()
        except Exception:  # noqa: BLE001 - the first error is the one to report
            pass
        raise
    finally:
        if sqlite:
            conn.autocommit = False


MIGRATE_HELP = (
    "the {table} schema is at version {found} and this app needs {needed}, and the database user "
    "in SqlConnectionString may not change the schema ({why}). Run `make migrate` (or `azd provision`, "
    "whose hook migrates) with an identity that has DDL rights, then retry."
)


def needs_rights(found: int, exc: BaseException) -> ConfigurationError:
    return ConfigurationError(MIGRATE_HELP.format(table=TABLE, found=found, needed=LATEST, why=exc))


def postgres_runtime_grants(role: str) -> list[str]:
    """What a PostgreSQL app role needs at run time once migrated (no CREATE, no ownership): the
    rows, the identity sequence, the keyword table its trigger writes (a PL/pgSQL trigger runs
    with the invoker's rights) and the version it reads. ``role`` must be a plain identifier."""
    if not role.replace("_", "").isalnum():
        raise ValueError(f"{role!r} is not a plain role name")
    return [
        f"GRANT SELECT, INSERT, UPDATE ON {TABLE} TO {role}",
        f"GRANT USAGE ON SEQUENCE {TABLE.lower()}_id_seq TO {role}",
        f"GRANT SELECT, INSERT, DELETE ON {ddl.KEYWORD_TABLE} TO {role}",
        f"GRANT SELECT ON {ddl.VERSION_TABLE} TO {role}",
    ]
