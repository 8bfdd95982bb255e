"""The ImageMetadata table: one row per blob, for its newest version.

Modules, one concern each: ``columns`` (what each column holds, lengths in each engine's unit),
``rules`` (which write wins, as decision tables), ``dialects`` (the run-time SQL generated from
both), ``ddl`` and ``migrations`` (versioned schema changes), ``classify`` (transient or not, by
SQLSTATE and native error number), ``driver`` (which driver, opening a connection) and ``store``
(the store itself).
"""

from shared.store.classify import is_transient
from shared.store.columns import COLUMN_NAMES, COLUMNS, DELETE_COLUMNS, KEYWORD_TABLE, TABLE, blob_key
from shared.store.ddl import INDEXES
from shared.store.dialects import PostgresDialect, SQLiteDialect, TSqlDialect
from shared.store.driver import MSSQL_PYTHON, PYODBC, connect, dialect_for, driver_for
from shared.store.store import APPLIED, KEPT, SUPERSEDED, TIED, ReindexFilter, SqlStore, store_for

__all__ = [
    "APPLIED", "COLUMNS", "COLUMN_NAMES", "DELETE_COLUMNS", "INDEXES", "KEPT", "KEYWORD_TABLE", "MSSQL_PYTHON",
    "PYODBC", "ReindexFilter", "SUPERSEDED", "TABLE", "TIED", "PostgresDialect", "SQLiteDialect", "SqlStore", "TSqlDialect",
    "blob_key", "connect", "dialect_for", "driver_for", "is_transient", "store_for",
]
