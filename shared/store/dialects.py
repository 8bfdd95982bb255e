"""The run-time SQL of each engine (writes and reads), generated from the columns and the
decision tables; schema changes live in shared.store.migrations.

Every statement is parameterised with ``?`` markers (both drivers, every engine); identifiers
come only from the column table, never from data. Each statement comes with the columns its
parameters stand for, from which T-SQL binds explicit input types (``input_sizes``): the key as
CHAR(64) and text as NVARCHAR(n) in the column's own size, so no parameter has a type above its
column's in SQL Server's data type precedence and the column is never converted (docs/azure-sql.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.models import STATUS_DELETED
from shared.store.columns import (
    BY_NAME,
    COLUMN_NAMES,
    COLUMNS,
    DELETE_COLUMNS,
    TABLE,
    UNIT_CHARS,
    UNIT_UTF16,
    UPDATED,
    Column,
)
from shared.store.rules import DELETE_TABLE, RULE_COLUMNS, UPSERT_TABLE, sql_case

# ODBC SQL type codes (sql.h / sqlext.h): the same numbers in pyodbc and mssql-python's ConstantsDDBC.
SQL_CHAR = 1
SQL_DECIMAL = 3
SQL_INTEGER = 4
SQL_DOUBLE = 8
SQL_TYPE_TIMESTAMP = 93
SQL_BIGINT = -5
SQL_BIT = -7
SQL_WVARCHAR = -9

LIMIT = Column("(row limit)", "int")  # a parameter that is not a column: a row count


@dataclass(frozen=True)
class Statement:
    sql: str
    params: tuple[Column, ...]  # what each ? stands for, in order


class Dialect:
    """SQL text for one engine. Subclasses differ only where the engines do."""

    name = "generic"
    table = TABLE
    unit = UNIT_CHARS
    types: dict[str, str] = {}

    def type_of(self, col: Column) -> str:
        text = self.types[col.kind]
        return text.format(n=col.size_in(self.unit)) if "{n}" in text else text

    def ordinal(self, expr: str) -> str:
        """Compare Event Grid sequencers as plain strings (code points), whatever the collation."""
        return expr

    def upsert(self) -> Statement:
        raise NotImplementedError

    def mark_deleted(self) -> Statement:
        raise NotImplementedError

    def apply_condition(self, old: str, new: str) -> str:
        return sql_case(UPSERT_TABLE, old, new, self.ordinal)

    def delete_condition(self, old: str, new: str) -> str:
        return sql_case(DELETE_TABLE, old, new, self.ordinal)

    def select_by_keys(self, count: int) -> Statement:
        """The state of up to ``count`` rows, by BlobKey (one reconciliation page)."""
        marks = ", ".join("?" for _ in range(count))
        return Statement(f"SELECT BlobKey, BlobName, ETag, Status, Sequencer, ExtractorVersion FROM {self.table} "
                         f"WHERE BlobKey IN ({marks})", (BY_NAME["BlobKey"],) * count)

    def page_after_key(self) -> Statement:
        """Keyset page of rows not deleted in one container: (Container, after BlobKey, limit)."""
        return Statement(f"SELECT BlobKey, BlobName, ETag, Status FROM {self.table} WHERE Container = ? "
                         f"AND Status <> '{STATUS_DELETED}' AND BlobKey > ? ORDER BY BlobKey LIMIT ?",
                         (BY_NAME["Container"], BY_NAME["BlobKey"], LIMIT))

    def substr(self) -> str:
        return "substr"

    def page_for_reindex(self, statuses: int, older_than_version: bool, before: bool, prefix: bool
                         ) -> Statement:
        """Keyset page of live rows of one container matching a re-index filter: (Container, after
        BlobKey[, Status x statuses][, version][, ProcessedAt][, prefix length, prefix], limit). The
        filters are residual predicates on the BlobKey range scan (the clustered/primary key), so
        each page reads one key range whatever the filter; the prefix is compared on its own length
        (a superset under a case-insensitive collation: the caller keeps the exact matches)."""
        where = ["Container = ?", f"Status <> '{STATUS_DELETED}'", "BlobKey > ?"]
        params: list[Column] = [BY_NAME["Container"], BY_NAME["BlobKey"]]
        if statuses:
            where.append(f"Status IN ({', '.join('?' for _ in range(statuses))})")
            params += [BY_NAME["Status"]] * statuses
        if older_than_version:
            where.append("(ExtractorVersion IS NULL OR ExtractorVersion < ?)")
            params.append(BY_NAME["ExtractorVersion"])
        if before:
            where.append("ProcessedAt < ?")
            params.append(BY_NAME["ProcessedAt"])
        if prefix:
            where.append(f"{self.substr()}(BlobName, 1, ?) = ?")
            params += [LIMIT, BY_NAME["BlobName"]]
        params.append(LIMIT)
        return Statement(f"SELECT BlobKey, BlobName, ETag, Status, ExtractorVersion FROM {self.table} "
                         f"WHERE {' AND '.join(where)} ORDER BY BlobKey LIMIT ?", tuple(params))

    def rule_row(self) -> Statement:
        """What the decision table reads of one stored row, and the token a compare-and-swap checks."""
        return Statement(f"SELECT {', '.join(RULE_COLUMNS)}, ProcessedAt FROM {self.table} WHERE BlobKey = ?",
                         (BY_NAME["BlobKey"],))

    def swap(self, token_is_null: bool) -> Statement:
        """Replace the row only if it is still the one read (its ProcessedAt, set by every write)."""
        sets = ", ".join(f"{c.name} = ?" for c in UPDATED if c.name != "Sequencer")
        sets += ", Sequencer = COALESCE(?, Sequencer)"
        params = [c for c in UPDATED if c.name != "Sequencer"] + [BY_NAME["Sequencer"], BY_NAME["BlobKey"]]
        token = "ProcessedAt IS NULL" if token_is_null else "ProcessedAt = ?"
        if not token_is_null:
            params.append(BY_NAME["ProcessedAt"])
        return Statement(f"UPDATE {self.table} SET {sets} WHERE BlobKey = ? AND {token}", tuple(params))

    def select_rows(self, where: str = "") -> str:
        return f"SELECT Id, {', '.join(COLUMN_NAMES)} FROM {self.table} {where} ORDER BY Id".replace("  ", " ")

    def to_db(self, col: Column, value: Any) -> Any:
        return value

    def input_sizes(self, statement: Statement) -> list[tuple[int, int, int]] | None:
        """Explicit parameter types for the driver; None to let it choose (engines without the
        implicit-conversion problem)."""
        return None


class SQLiteDialect(Dialect):
    name = "sqlite"
    types = {
        "key": "TEXT", "text": "TEXT", "int": "INTEGER", "bigint": "INTEGER", "decimal": "REAL",
        "float": "REAL", "bool": "INTEGER", "datetime": "TEXT",
    }

    def upsert(self) -> Statement:
        return _on_conflict_upsert(self, "excluded")

    def mark_deleted(self) -> Statement:
        return _on_conflict_delete(self, "excluded")

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

    def ordinal(self, expr: str) -> str:
        return f'{expr} COLLATE "C"'

    def upsert(self) -> Statement:
        return _on_conflict_upsert(self, "EXCLUDED")

    def mark_deleted(self) -> Statement:
        return _on_conflict_delete(self, "EXCLUDED")


_TSQL_BIND = {
    "int": (SQL_INTEGER, 0, 0), "bigint": (SQL_BIGINT, 0, 0), "decimal": (SQL_DECIMAL, 18, 2),
    "float": (SQL_DOUBLE, 0, 0), "bool": (SQL_BIT, 0, 0), "datetime": (SQL_TYPE_TIMESTAMP, 26, 6),
}


class TSqlDialect(Dialect):
    name = "tsql"
    table = f"dbo.{TABLE}"
    unit = UNIT_UTF16
    types = {
        "key": "CHAR(64)", "text": "NVARCHAR({n})", "int": "INT", "bigint": "BIGINT",
        "decimal": "DECIMAL(18, 2)", "float": "FLOAT", "bool": "BIT", "datetime": "DATETIME2(6)",
    }

    def ordinal(self, expr: str) -> str:
        return f"{expr} COLLATE Latin1_General_100_BIN2"

    def upsert(self) -> Statement:
        cols = ", ".join(COLUMN_NAMES)
        marks = ", ".join("?" for _ in COLUMNS)
        sets = ", ".join(f"t.{c.name} = s.{c.name}" for c in UPDATED if c.name != "Sequencer")
        values = ", ".join(f"s.{c}" for c in COLUMN_NAMES)
        return Statement(
            f"MERGE INTO {self.table} WITH (HOLDLOCK) AS t "
            f"USING (VALUES ({marks})) AS s ({cols}) ON t.BlobKey = s.BlobKey "
            f"WHEN MATCHED AND {self.apply_condition('t', 's')} THEN UPDATE SET {sets}, "
            "t.Sequencer = COALESCE(s.Sequencer, t.Sequencer) "
            f"WHEN NOT MATCHED BY TARGET THEN INSERT ({cols}) VALUES ({values});", COLUMNS)

    def mark_deleted(self) -> Statement:
        cols = ", ".join(DELETE_COLUMNS)
        marks = ", ".join("?" for _ in DELETE_COLUMNS)
        values = ", ".join(f"s.{c}" for c in DELETE_COLUMNS)
        return Statement(
            f"MERGE INTO {self.table} WITH (HOLDLOCK) AS t "
            f"USING (VALUES ({marks})) AS s ({cols}) ON t.BlobKey = s.BlobKey "
            f"WHEN MATCHED AND {self.delete_condition('t', 's')} THEN UPDATE SET "
            f"t.Status = N'{STATUS_DELETED}', t.DeletedAt = s.DeletedAt, t.ProcessedAt = s.ProcessedAt, "
            "t.Sequencer = COALESCE(s.Sequencer, t.Sequencer) "
            f"WHEN NOT MATCHED BY TARGET THEN INSERT ({cols}, Status) VALUES ({values}, N'{STATUS_DELETED}');",
            tuple(BY_NAME[c] for c in DELETE_COLUMNS))

    def page_after_key(self) -> Statement:
        base = super().page_after_key()
        return Statement(base.sql.replace(f"'{STATUS_DELETED}'", f"N'{STATUS_DELETED}'").replace(
            "LIMIT ?", "OFFSET 0 ROWS FETCH NEXT ? ROWS ONLY"), base.params)

    def substr(self) -> str:
        return "SUBSTRING"

    def page_for_reindex(self, statuses: int, older_than_version: bool, before: bool, prefix: bool
                         ) -> Statement:
        base = super().page_for_reindex(statuses, older_than_version, before, prefix)
        return Statement(base.sql.replace(f"'{STATUS_DELETED}'", f"N'{STATUS_DELETED}'").replace(
            "LIMIT ?", "OFFSET 0 ROWS FETCH NEXT ? ROWS ONLY"), base.params)

    def input_sizes(self, statement: Statement) -> list[tuple[int, int, int]]:
        return [self.bind_type(c) for c in statement.params]

    def bind_type(self, col: Column) -> tuple[int, int, int]:
        if col.kind == "key":
            return (SQL_CHAR, col.size, 0)
        if col.kind == "text":
            return (SQL_WVARCHAR, col.size_in(self.unit), 0)
        return _TSQL_BIND[col.kind]


def _on_conflict_upsert(dialect: Dialect, new: str) -> Statement:
    cols = ", ".join(COLUMN_NAMES)
    marks = ", ".join("?" for _ in COLUMNS)
    t = dialect.table
    sets = ", ".join(f"{c.name} = {new}.{c.name}" for c in UPDATED if c.name != "Sequencer")
    return Statement(
        f"INSERT INTO {t} ({cols}) VALUES ({marks}) ON CONFLICT (BlobKey) DO UPDATE SET {sets}, "
        f"Sequencer = COALESCE({new}.Sequencer, {t}.Sequencer) WHERE {dialect.apply_condition(t, new)}",
        COLUMNS)


def _on_conflict_delete(dialect: Dialect, new: str) -> Statement:
    """SQLite and PostgreSQL share the ON CONFLICT form of the deletion."""
    cols = ", ".join(DELETE_COLUMNS)
    marks = ", ".join("?" for _ in DELETE_COLUMNS)
    t = dialect.table
    return Statement(
        f"INSERT INTO {t} ({cols}, Status) VALUES ({marks}, '{STATUS_DELETED}') "
        f"ON CONFLICT (BlobKey) DO UPDATE SET Status = '{STATUS_DELETED}', "
        f"DeletedAt = {new}.DeletedAt, ProcessedAt = {new}.ProcessedAt, "
        f"Sequencer = COALESCE({new}.Sequencer, {t}.Sequencer) "
        f"WHERE {dialect.delete_condition(t, new)}",
        tuple(BY_NAME[c] for c in DELETE_COLUMNS))


DIALECTS: dict[str, type[Dialect]] = {
    "sqlite": SQLiteDialect,
    "postgresql": PostgresDialect,
    "microsoft sql server": TSqlDialect,
}
