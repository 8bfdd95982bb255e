"""The store: one connection per thread, the row writes with their outcome, and the reads
reconciliation and tools need.

At run time the schema is checked once per process and connection string with one query
(``SELECT MAX(Version) FROM SchemaVersion``); when it is current no DDL runs. An older schema is
migrated if this identity has DDL rights, and otherwise the first write fails naming
``make migrate``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.errors import DatabaseUnavailableError
from shared.models import ImageRecord
from shared.store import migrations
from shared.store.classify import error_types, is_permission_denied, is_transient
from shared.store.columns import (
    BY_NAME,
    COLUMN_NAMES,
    COLUMNS,
    UNIT_UTF16,
    UPDATED,
    blob_key,
    fit,
    now,
    utc_naive,
)
from shared.store.dialects import Dialect, Statement
from shared.store.driver import connect, dialect_for
from shared.store.rules import APPLY, KEEP, RULE_COLUMNS, TIE, UPSERT_TABLE, decide

APPLIED = "applied"
KEPT = "kept"
TIED = "tie"  # another version with the same Last-Modified (or no times): ask storage
SUPERSEDED = "superseded"  # storage holds another version: nothing written

_SWAP_TRIES = 3
_checked: dict[tuple[int, str], int] = {}
_checked_lock = threading.Lock()


@dataclass(frozen=True)
class ReindexFilter:
    """Which live rows a re-index takes; every given part must hold (an empty filter takes all)."""

    statuses: tuple[str, ...] = ()
    older_than: int | None = None   # ExtractorVersion below this (or unknown)
    before: datetime | None = None  # ProcessedAt (when the row was written) before this
    prefix: str = ""                # BlobName starts with this


class SqlStore:
    """A connection with its dialect; one per thread, reused across invocations."""

    def __init__(self, connection_string: str) -> None:
        self.connection_string = connection_string
        self._conn: Any = None
        self._dialect: Dialect | None = None

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
            except error_types():
                pass
        self._conn = None

    def _run(self, work: Callable[[Any], Any]) -> Any:
        """Run work in one transaction; on a lost connection drop it so the next try reconnects."""
        conn = self._connection()
        try:
            result = work(conn.cursor())
            conn.commit()
            return result
        except error_types() as exc:
            try:
                conn.rollback()
            except error_types():
                pass
            if is_transient(exc):
                self.close()
                raise DatabaseUnavailableError(f"database is unavailable: {exc}") from None
            raise

    def _execute(self, cursor: Any, statement: Statement, params: list[Any]) -> None:
        sizes = self.dialect.input_sizes(statement)
        if sizes is not None:
            cursor.setinputsizes(sizes)
        cursor.execute(statement.sql, params)

    # ---- schema -------------------------------------------------------------------------

    def schema_version(self) -> int:
        def read(cursor: Any) -> int:
            return migrations.read_version(cursor, self.dialect)

        try:
            return self._run(read)
        except DatabaseUnavailableError:
            raise
        except error_types():
            return 0  # no version table: a database no release of this kind has migrated

    def migrate(self) -> list[int]:
        """Run pending migrations (needs DDL rights): what ``make migrate`` and the azd hook call."""
        conn = self._connection()
        try:
            return migrations.migrate(conn, self.dialect)
        except error_types() as exc:
            if is_transient(exc):
                self.close()
                raise DatabaseUnavailableError(f"database is unavailable: {exc}") from None
            raise

    def ensure_schema(self) -> None:
        """Once per process: read the version; migrate an older schema if allowed, else explain."""
        key = (os.getpid(), self.connection_string)
        if key in _checked:
            return
        with _checked_lock:
            if key in _checked:
                return
            found = self.schema_version()
            if found < migrations.LATEST:
                try:
                    self.migrate()
                except error_types() as exc:
                    if is_permission_denied(exc):
                        raise migrations.needs_rights(found, exc) from None
                    raise
            _checked[key] = max(found, migrations.LATEST)

    def existing_columns(self) -> set[str]:
        def probe(cursor: Any) -> set[str]:
            cursor.execute(f"SELECT * FROM {self.dialect.table} WHERE 1 = 0")
            return {d[0].lower() for d in cursor.description}

        return self._run(probe)

    # ---- writes -------------------------------------------------------------------------

    def _values(self, statement: Statement, raw: list[Any]) -> list[Any]:
        unit = self.dialect.unit
        return [self.dialect.to_db(c, fit(c, v, unit)) for c, v in zip(statement.params, raw, strict=True)]

    def _record_values(self, record: ImageRecord) -> dict[str, Any]:
        upsert = self.dialect.upsert()
        values = self._values(upsert, [c.value(record) for c in COLUMNS])  # type: ignore[misc]
        return dict(zip(COLUMN_NAMES, values, strict=True))

    def _stored(self, cursor: Any, key: str) -> dict[str, Any] | None:
        statement = self.dialect.rule_row()
        self._execute(cursor, statement, [key])
        row = cursor.fetchone()
        return None if row is None else dict(zip([*RULE_COLUMNS, "ProcessedAt"], row, strict=True))

    def upsert_outcome(self, record: ImageRecord) -> str:
        """Write the row for this blob version if the decision table lets it replace the stored
        one: APPLIED, KEPT (the stored state wins) or TIED (another ETag with the same
        Last-Modified and no sequencer to order them: call ``resolve_tie`` with what storage says)."""
        self.ensure_schema()
        values = self._record_values(record)
        statement = self.dialect.upsert()
        params = [values[c.name] for c in COLUMNS]

        def write(cursor: Any) -> str:
            for _ in range(_SWAP_TRIES):
                self._execute(cursor, statement, params)
                if cursor.rowcount != 0:
                    return APPLIED
                stored = self._stored(cursor, values["BlobKey"])
                if stored is None:
                    continue  # cannot happen (rows are never removed); try the write again
                decision = decide(UPSERT_TABLE, stored, values).outcome
                if decision == KEEP:
                    return KEPT
                if decision == TIE:
                    return TIED
            raise DatabaseUnavailableError("the row kept changing while it was written; try again")

        return self._run(write)

    def upsert(self, record: ImageRecord) -> bool:
        """Write the row for this blob version; False when the stored row was kept (or tied)."""
        return self.upsert_outcome(record) == APPLIED

    def resolve_tie(self, record: ImageRecord, is_current: bool) -> str:
        """After TIED: storage says whether this record's ETag is the blob's current version.
        Not current: SUPERSEDED, nothing written. Current: replace the row only if it is still
        the one the decision was made on (compare-and-swap on ProcessedAt, which every write
        sets); a row that changed meanwhile is decided again."""
        if not is_current:
            return SUPERSEDED
        self.ensure_schema()
        values = self._record_values(record)

        def write(cursor: Any) -> str:
            for _ in range(_SWAP_TRIES):
                stored = self._stored(cursor, values["BlobKey"])
                decision = APPLY if stored is None else decide(UPSERT_TABLE, stored, values).outcome
                if decision == KEEP:
                    return KEPT
                if decision == APPLY:
                    statement = self.dialect.upsert()
                    self._execute(cursor, statement, [values[c.name] for c in COLUMNS])
                    if cursor.rowcount != 0:
                        return APPLIED
                    continue
                token = stored["ProcessedAt"] if stored else None
                statement = self.dialect.swap(token_is_null=token is None)
                params = [values[c.name] for c in UPDATED if c.name != "Sequencer"]
                params += [values["Sequencer"], values["BlobKey"]] + ([] if token is None else [token])
                self._execute(cursor, statement, params)
                if cursor.rowcount == 1:
                    return APPLIED
            raise DatabaseUnavailableError("the row kept changing while it was written; try again")

        return self._run(write)

    def mark_deleted(
        self, container: str, blob_name: str, *, deleted_at: datetime, sequencer: str | None = None,
        etag: str | None = None,
    ) -> bool:
        """Record that the blob is gone; False when a newer state was kept (rules.DELETE_TABLE).

        ``etag`` limits the deletion to that version (reconciliation saw exactly it gone);
        ``sequencer`` orders it against Event Grid events of the same blob. The time is kept to
        the second, the precision of the Last-Modified it is compared with.
        """
        self.ensure_schema()
        statement = self.dialect.mark_deleted()
        when = utc_naive(deleted_at).replace(microsecond=0)
        raw = [blob_key(container, blob_name), container, blob_name,
               blob_name.rsplit("/", 1)[-1] or blob_name, etag, sequencer, when, now()]
        params = self._values(statement, raw)

        def write(cursor: Any) -> bool:
            self._execute(cursor, statement, params)
            return cursor.rowcount != 0

        return self._run(write)

    # ---- reads --------------------------------------------------------------------------

    def rows_by_keys(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """BlobKey -> {BlobName, ETag, Status, Sequencer, ExtractorVersion} for the rows that exist among ``keys``."""
        self.ensure_schema()
        if not keys:
            return {}
        statement = self.dialect.select_by_keys(len(keys))

        def read(cursor: Any) -> dict[str, dict[str, Any]]:
            self._execute(cursor, statement, list(keys))
            return {row[0].strip(): {"BlobName": row[1], "ETag": row[2], "Status": row[3], "Sequencer": row[4],
                                  "ExtractorVersion": row[5]}
                    for row in cursor.fetchall()}

        return self._run(read)

    def page_live_rows(self, container: str, after_key: str, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` rows not deleted, BlobKey after ``after_key`` (keyset paging, index-backed)."""
        self.ensure_schema()
        statement = self.dialect.page_after_key()

        def read(cursor: Any) -> list[dict[str, Any]]:
            self._execute(cursor, statement, [container, after_key, limit])
            return [{"BlobKey": r[0].strip(), "BlobName": r[1], "ETag": r[2], "Status": r[3]}
                    for r in cursor.fetchall()]

        return self._run(read)

    def page_for_reindex(self, container: str, after_key: str, limit: int, flt: ReindexFilter
                         ) -> list[dict[str, Any]]:
        """Up to ``limit`` live rows matching ``flt``, BlobKey after ``after_key`` (keyset paging)."""
        self.ensure_schema()
        statement = self.dialect.page_for_reindex(len(flt.statuses), flt.older_than is not None,
                                                  flt.before is not None, bool(flt.prefix))
        raw: list[Any] = [container, after_key, *flt.statuses]
        if flt.older_than is not None:
            raw.append(flt.older_than)
        if flt.before is not None:
            raw.append(utc_naive(flt.before))
        if flt.prefix:
            length = len(flt.prefix.encode("utf-16-le")) // 2 if self.dialect.unit == UNIT_UTF16 else len(flt.prefix)
            raw += [length, flt.prefix]
        raw.append(limit)
        params = [self.dialect.to_db(c, v) for c, v in zip(statement.params, raw, strict=True)]

        def read(cursor: Any) -> list[dict[str, Any]]:
            self._execute(cursor, statement, params)
            return [{"BlobKey": r[0].strip(), "BlobName": r[1], "ETag": r[2], "Status": r[3],
                     "ExtractorVersion": r[4]} for r in cursor.fetchall()]

        rows = self._run(read)
        # The SQL prefix test is a superset where the collation ignores case: keep exact matches.
        return [r for r in rows if r["BlobName"].startswith(flt.prefix)] if flt.prefix else rows

    def rows(self, where: str = "", params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Read rows as dicts keyed by the column names (for tools and tests)."""
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


def forget_schema_checks() -> None:
    """Tests: make the next store in this process read the schema version again."""
    with _checked_lock:
        _checked.clear()


__all__ = ["APPLIED", "BY_NAME", "KEPT", "SUPERSEDED", "TIED", "ReindexFilter", "SqlStore", "forget_schema_checks", "store_for"]
