"""Versioned migrations on real SQLite and PostgreSQL: every schema an earlier release shipped
upgrades keeping its rows; threads and processes starting together migrate once; the run-time
check is one query and no DDL when current; a PostgreSQL role without CREATE writes rows after
``make migrate``, and on an old schema fails naming it.

tests/data/legacy_schemas.json holds, for every earlier version of shared/sql_store.py whose DDL
differed (`git log -p -- shared/sql_store.py`), the statements it ran on an empty database.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import pyodbc
import pytest

from shared.errors import ConfigurationError
from shared.models import BlobRef, ImageMetadata, ImageRecord
from shared.store import SqlStore, migrations, store
from shared.store.columns import COLUMN_NAMES

ROOT = Path(__file__).resolve().parent.parent
LEGACY = json.loads((ROOT / "tests" / "data" / "legacy_schemas.json").read_text())


def engine_of(cs: str) -> str:
    return "sqlite" if "SQLite" in cs else "postgresql"


def record(name: str, etag: str = "e1", width: int = 1) -> ImageRecord:
    blob = BlobRef("images-input", name, etag, size=1, last_modified="2026-01-01T00:00:00Z")
    return ImageRecord.for_blob(blob, "processed", metadata=ImageMetadata(width=width, keywords=["k"]))


def versions(cs: str) -> list[int]:
    conn = pyodbc.connect(cs, autocommit=True)
    try:
        return [int(r[0]) for r in conn.execute("SELECT Version FROM SchemaVersion ORDER BY Version")]
    finally:
        conn.close()


@pytest.fixture(autouse=True)
def fresh_process_checks():
    store.forget_schema_checks()
    yield
    store.forget_schema_checks()


@pytest.mark.parametrize("release", list(LEGACY))
def test_every_shipped_schema_upgrades_keeping_every_row(any_db_cs, release):
    conn = pyodbc.connect(any_db_cs, autocommit=True)
    for statement in LEGACY[release][engine_of(any_db_cs)]:
        conn.execute(statement)
    for i in range(3):
        conn.execute("INSERT INTO ImageMetadata (BlobKey, Container, BlobName, ETag, Status, Width) "
                     "VALUES (?, 'images-input', ?, 'old', 'processed', ?)", f"{i:064d}", f"old-{i}.jpg", i)
    conn.close()
    s = SqlStore(any_db_cs)
    assert s.upsert(record("new.jpg")) is True
    assert versions(any_db_cs) == list(range(1, migrations.LATEST + 1))
    rows = {r["BlobName"]: r for r in s.rows()}
    assert {f"old-{i}.jpg" for i in range(3)} | {"new.jpg"} == set(rows)
    assert [rows[f"old-{i}.jpg"]["Width"] for i in range(3)] == [0, 1, 2]
    assert {c.lower() for c in COLUMN_NAMES} <= s.existing_columns()


def test_the_legacy_list_covers_every_release_that_changed_the_schema():
    assert len(LEGACY) >= 8 and all(set(v) == {"sqlite", "postgresql"} for v in LEGACY.values())
    first = LEGACY[min(LEGACY)]["sqlite"][0]
    assert "UNIQUE (Container, BlobName)" in first and "Keywords" not in first  # the oldest shape


def test_threads_starting_together_migrate_once(any_db_cs):
    results: list[list[int]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        try:
            barrier.wait()
            results.append(SqlStore(any_db_cs).migrate())
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results, key=len) == [[]] * 7 + [list(range(1, migrations.LATEST + 1))]
    assert versions(any_db_cs) == list(range(1, migrations.LATEST + 1))


def test_processes_starting_together_migrate_once(any_db_cs, tmp_path):
    go = tmp_path / "go"
    code = (
        "import sys, time, pathlib\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from shared.store import SqlStore\n"
        "s = SqlStore(sys.argv[1]); s.dialect\n"
        "while not pathlib.Path(sys.argv[2]).exists(): time.sleep(0.01)\n"
        "print(s.migrate())\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, any_db_cs, str(go)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    go.write_text("")
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
    printed = sorted(o[0].strip() for o in outs)
    assert printed == [str(list(range(1, migrations.LATEST + 1)))] + ["[]"] * 3


def test_run_time_check_is_one_query_per_process_and_no_ddl_when_current(any_db_cs, monkeypatch):
    SqlStore(any_db_cs).migrate()
    store.forget_schema_checks()
    reads: list[int] = []
    real = SqlStore.schema_version

    def counted(self: SqlStore) -> int:
        reads.append(1)
        return real(self)

    monkeypatch.setattr(SqlStore, "schema_version", counted)
    monkeypatch.setattr(migrations, "migrate", lambda *a: pytest.fail("DDL at run time on a current schema"))
    for i in range(3):
        SqlStore(any_db_cs).upsert(record(f"{i}.jpg"))
    assert reads == [1]


def _role(postgres_cs: str, name: str, grants: bool) -> str:
    admin = pyodbc.connect(postgres_cs, autocommit=True)
    admin.execute(f"DO $$ BEGIN CREATE ROLE {name} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    admin.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    admin.execute(f"GRANT USAGE ON SCHEMA public TO {name}")
    if grants:
        for statement in migrations.postgres_runtime_grants(name):
            admin.execute(statement)
    admin.close()
    return re.sub(r"Uid=[^;]*;", f"Uid={name};", postgres_cs)


@pytest.mark.parametrize("any_db_cs", ["postgresql"], indirect=True)
def test_a_role_without_create_writes_rows_after_migration(any_db_cs):
    SqlStore(any_db_cs).migrate()  # `make migrate`, as the owner
    app = _role(any_db_cs, "app_writer", grants=True)
    s = SqlStore(app)
    assert s.upsert(record("a.jpg")) and s.upsert(record("a.jpg", width=2))  # insert, then update
    assert s.mark_deleted("images-input", "a.jpg", deleted_at=__import__("datetime").datetime(2027, 1, 1))
    assert [r["Status"] for r in s.rows()] == ["deleted"]
    conn = pyodbc.connect(app, autocommit=True)
    with pytest.raises(pyodbc.Error) as denied:  # negative control: the role really has no DDL rights
        conn.execute("CREATE TABLE t (x INT)")
    assert denied.value.args[0] == "42501"
    conn.close()


@pytest.mark.parametrize("any_db_cs", ["postgresql"], indirect=True)
def test_without_ddl_rights_an_old_schema_fails_naming_make_migrate(any_db_cs):
    conn = pyodbc.connect(any_db_cs, autocommit=True)
    for statement in LEGACY[max(LEGACY)]["postgresql"]:
        conn.execute(statement)
    conn.close()
    app = _role(any_db_cs, "app_old", grants=False)
    admin = pyodbc.connect(any_db_cs, autocommit=True)
    admin.execute("GRANT SELECT, INSERT, UPDATE ON imagemetadata TO app_old")
    admin.close()
    with pytest.raises(ConfigurationError, match=rf"version 0 and this app needs {migrations.LATEST}.*`make migrate`"):
        SqlStore(app).upsert(record("a.jpg"))


class ScriptedCursor:
    """A T-SQL cursor that answers the lock and version queries as SQL Server would."""

    def __init__(self, log: list[str], lock_result: int) -> None:
        self.log, self.lock_result, self._last = log, lock_result, ""
        self.description = [("x",)]

    def execute(self, sql: str, params: tuple = ()) -> None:
        self.log.append(sql)
        self._last = sql

    def fetchone(self) -> tuple:
        return (self.lock_result,) if "sp_getapplock" in self._last else (None,)


class ScriptedConnection:
    def __init__(self, lock_result: int) -> None:
        self.log: list[str] = []
        self.lock_result = lock_result
        self.committed = self.rolled_back = False

    def cursor(self) -> ScriptedCursor:
        return ScriptedCursor(self.log, self.lock_result)

    def commit(self) -> None:
        self.committed = True

    def rollback(self) -> None:
        self.rolled_back = True


@pytest.mark.parametrize("lock_result", [0, 1])
def test_azd_hook_migrates_tsql_under_the_granted_lock_in_one_transaction(lock_result):
    sys.path.insert(0, str(ROOT / "scripts"))
    import azd_hooks

    from tests.test_tsql import tsql_problems

    conn = ScriptedConnection(lock_result)
    assert azd_hooks.migrate_schema(conn) == list(range(1, migrations.LATEST + 1))
    assert conn.committed and "sp_getapplock" in conn.log[0]
    assert conn.log[1].startswith("IF OBJECT_ID(N'dbo.SchemaVersion'")
    assert sum("INSERT INTO dbo.SchemaVersion" in s for s in conn.log) == migrations.LATEST
    assert any("ALTER COLUMN BlobName NVARCHAR(2048)" in s for s in conn.log)
    assert any("ADD PerceptualHash BIGINT NULL" in s for s in conn.log)
    assert any("CREATE INDEX IX_ImageMetadata_PHashBand3 ON dbo.ImageMetadata" in s for s in conn.log)
    for statement in conn.log:
        if not statement.startswith("CREATE OR ALTER TRIGGER"):  # checked whole in test_queries
            assert tsql_problems(statement) == [], statement[:100]


@pytest.mark.parametrize("lock_result", [-1, -2, -3, -999])
def test_a_refused_schema_lock_stops_the_migration(lock_result):
    """sp_getapplock returns a negative code instead of raising: the migration checks it."""
    from shared.errors import DatabaseUnavailableError
    from shared.store.dialects import TSqlDialect

    conn = ScriptedConnection(lock_result)
    with pytest.raises(DatabaseUnavailableError, match=f"returned {lock_result}"):
        migrations.migrate(conn, TSqlDialect())
    assert conn.rolled_back and not conn.committed and len(conn.log) == 1
