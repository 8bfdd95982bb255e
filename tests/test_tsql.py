"""Every T-SQL statement the store can send, parsed as T-SQL by two independent parsers, and
checked against mssql-python's parameter handling (the second driver for the same dialect).

No SQL Server engine runs on these machines, so the T-SQL dialect is checked by
sqlglot and sqlfluff; each misses some broken statements alone, so a statement
passes only if both accept it, and the check is shown to reject broken variants.
"""

from __future__ import annotations

import pytest
import sqlglot
from sqlfluff.core import FluffConfig, Linter
from sqlglot import ErrorLevel, exp

from shared.store import COLUMNS, DELETE_COLUMNS, ReindexFilter, SQLiteDialect, TSqlDialect, ddl
from shared.store.columns import BY_NAME

_LINTER = Linter(config=FluffConfig(
    overrides={"dialect": "tsql", "templater": "placeholder"},
    configs={"templater": {"placeholder": {"param_style": "question_mark"}}},
))


def tsql_problems(sql: str) -> list[str]:
    """Reasons either parser rejects the statement; empty when both accept it."""
    problems = []
    try:
        trees = sqlglot.parse(sql, read="tsql", error_level=ErrorLevel.RAISE)
        if any(tree is None or any(tree.find_all(exp.Command)) for tree in trees):
            problems.append("sqlglot: fell back to an unparsed Command")
    except sqlglot.errors.SqlglotError as exc:
        problems.append(f"sqlglot: {str(exc).splitlines()[0]}")
    return problems + sqlfluff_problems(sql)


def sqlfluff_problems(sql: str) -> list[str]:
    """Why sqlfluff's T-SQL grammar rejects the statement; empty when it accepts it."""
    parsed = _LINTER.parse_string(sql)
    if parsed.tree is None or parsed.violations or any(parsed.tree.recursive_crawl("unparsable")):
        return [f"sqlfluff: {[v.desc() for v in parsed.violations][:1] or 'unparsable'}"]
    return []


DIALECT = TSqlDialect()
STATEMENTS = {
    "create table": ddl.tsql_create_table(),
    "schema lock": ddl.TSQL_SCHEMA_LOCK,
    "version table": ddl.version_table("tsql"),
    "current version": ddl.current_version("tsql"),
    "record version": ddl.record_version("tsql"),
    "upsert": DIALECT.upsert().sql,
    "select rows": DIALECT.select_rows(),
    "mark deleted": DIALECT.mark_deleted().sql,
    "select by keys": DIALECT.select_by_keys(500).sql,
    "page after key": DIALECT.page_after_key().sql,
    "page for re-index (every filter)": DIALECT.page_for_reindex(2, True, True, True).sql,
    "page for re-index (no filter)": DIALECT.page_for_reindex(0, False, False, False).sql,
    "rule row": DIALECT.rule_row().sql,
    "swap": DIALECT.swap(token_is_null=False).sql,
    "swap on a NULL token": DIALECT.swap(token_is_null=True).sql,
    **{f"widen {n}": ddl.tsql_widen(BY_NAME[n]) for n in ("BlobName", "FileName")},
    **{f"add column {c.name}": ddl.tsql_add_column(c) for c in COLUMNS},
}


@pytest.mark.parametrize("name", list(STATEMENTS))
def test_every_tsql_statement_parses(name):
    assert tsql_problems(STATEMENTS[name]) == []


def test_upsert_has_one_placeholder_per_column_and_ends_with_semicolon():
    sql = DIALECT.upsert().sql
    assert sql.count("?") == len(COLUMNS)
    assert sql.rstrip().endswith(";")  # MERGE must be terminated in T-SQL
    assert "WITH (HOLDLOCK)" in sql


BROKEN = {
    "misspelled keyword": DIALECT.upsert().sql.replace("WHEN MATCHED AND", "WHEN MATCHED AMD"),
    "unbalanced parenthesis": ddl.tsql_create_table().replace("IDENTITY(1, 1)", "IDENTITY(1, 1"),
    "missing comma": ddl.tsql_create_table().replace("NULL,\n    FileName", "NULL\n    FileName"),
    "missing THEN": DIALECT.upsert().sql.replace(" THEN UPDATE SET", " UPDATE SET"),
    "trailing comma in VALUES": DIALECT.upsert().sql.replace("VALUES (?, ", "VALUES (?, , "),
    "unterminated string": ddl.tsql_add_column(COLUMNS[5]).replace("N'dbo.", "N'dbo.", 1).replace("') IS", ") IS", 1),
    "LIMIT is not T-SQL": "SELECT * FROM dbo.ImageMetadata LIMIT 0",
    "ADD COLUMN IF NOT EXISTS is PostgreSQL": ddl.tsql_add_column(COLUMNS[5]).replace(
        "ADD ", "ADD COLUMN IF NOT EXISTS "),
    "ON CONFLICT is not T-SQL": SQLiteDialect().mark_deleted().sql,
    "mark deleted without THEN": DIALECT.mark_deleted().sql.replace(" THEN UPDATE SET", " UPDATE SET"),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_check_rejects_broken_variants(name):
    assert BROKEN[name] != STATEMENTS.get(name)
    assert tsql_problems(BROKEN[name]), f"broken SQL accepted: {BROKEN[name][:200]}"


def test_mark_deleted_has_one_placeholder_per_column_and_compares_sequencers_by_code_point():
    sql = DIALECT.mark_deleted().sql
    assert sql.count("?") == len(DELETE_COLUMNS)
    assert sql.rstrip().endswith(";") and "WITH (HOLDLOCK)" in sql
    assert "Sequencer COLLATE Latin1_General_100_BIN2 >" in sql
    assert "Sequencer COLLATE Latin1_General_100_BIN2" in DIALECT.upsert().sql


def test_page_uses_offset_fetch_because_the_parsers_accept_limit_with_a_placeholder():
    """Both parsers accept '... ORDER BY BlobKey LIMIT ?' as T-SQL (seen here), so this one is
    checked by text: SQL Server pages with OFFSET ... FETCH NEXT."""
    sql = DIALECT.page_after_key().sql
    assert "LIMIT" not in sql and sql.endswith("ORDER BY BlobKey OFFSET 0 ROWS FETCH NEXT ? ROWS ONLY")
    assert tsql_problems(sql.replace("OFFSET 0 ROWS FETCH NEXT ? ROWS ONLY", "LIMIT ?")) == []


# Both drivers run these statements with a list of parameters and '?' markers: pyodbc passes them
# to the ODBC driver unchanged; mssql-python (paramstyle 'pyformat', but it accepts qmark too)
# runs detect_and_convert_parameters first (mssql_python/parameter_helper.py), which must leave
# qmark SQL with a list as it is and see no pyformat markers in it.
def _placeholders(sql: str) -> int:
    return sum(len(list(tree.find_all(exp.Placeholder))) for tree in sqlglot.parse(sql, read="tsql"))


@pytest.mark.parametrize("name", ["upsert", "select rows", "mark deleted", "select by keys", "page after key",
                                  "rule row", "swap", "record version"])
def test_mssql_python_takes_the_same_qmark_statements_unchanged(name):
    from mssql_python.parameter_helper import detect_and_convert_parameters, parse_pyformat_params

    sql = STATEMENTS[name]
    params = [None] * _placeholders(sql)
    assert parse_pyformat_params(sql) == []
    assert detect_and_convert_parameters(sql, params) == (sql, params)
    if name == "upsert":
        assert len(params) == len(COLUMNS)


def test_mssql_python_parameter_check_rejects_mixed_styles():
    """Negative control: a pyformat marker in qmark SQL is refused by the same helper."""
    from mssql_python.parameter_helper import detect_and_convert_parameters

    broken = DIALECT.upsert().sql.replace("VALUES (?, ", "VALUES (%(BlobKey)s, ", 1)
    with pytest.raises(TypeError):
        detect_and_convert_parameters(broken, [None] * len(COLUMNS))


# ---- Parameter types: what the store binds for every T-SQL statement, on both drivers ----------
# SQL Server converts the side of lower data type precedence; a CHAR(64) key compared with an
# NVARCHAR parameter (what both drivers bind for a Python str by default) converts the column
# (CONVERT_IMPLICIT) and the index seek becomes a scan. So the store declares every parameter's
# type with DB-API setinputsizes, taken from the column it stands for. The expected type of each
# marker is read here from the CREATE TABLE text, not from the code that binds.

import re  # noqa: E402
from datetime import datetime  # noqa: E402
from typing import Any  # noqa: E402

import mssql_python  # noqa: E402
import pyodbc  # noqa: E402
from mssql_python.constants import ConstantsDDBC  # noqa: E402

from shared.models import BlobRef, ImageMetadata, ImageRecord  # noqa: E402
from shared.store import SqlStore  # noqa: E402
from shared.store import dialects as dialects_module  # noqa: E402
from shared.store import store as store_module  # noqa: E402


def declared_types() -> dict[str, str]:
    """Column -> its T-SQL type, from the CREATE TABLE statement the migration runs."""
    found = dict(re.findall(r"^\s+(\w+) ((?:N?VAR)?CHAR\(\d+\)|INT|BIGINT|DECIMAL\(18, 2\)|FLOAT|BIT|DATETIME2\(6\))",
                            ddl.tsql_create_table(), re.M))
    return {k: v for k, v in found.items() if k != "Id"}


def expected_binding(type_text: str) -> tuple[int, int, int]:
    """The ODBC parameter type that matches a column type exactly (sql.h codes, per driver below)."""
    if m := re.fullmatch(r"CHAR\((\d+)\)", type_text):
        return (pyodbc.SQL_CHAR, int(m.group(1)), 0)
    if m := re.fullmatch(r"NVARCHAR\((\d+)\)", type_text):
        return (pyodbc.SQL_WVARCHAR, int(m.group(1)), 0)
    return {"INT": (pyodbc.SQL_INTEGER, 0, 0), "BIGINT": (pyodbc.SQL_BIGINT, 0, 0),
            "DECIMAL(18, 2)": (pyodbc.SQL_DECIMAL, 18, 2), "FLOAT": (pyodbc.SQL_DOUBLE, 0, 0),
            "BIT": (pyodbc.SQL_BIT, 0, 0), "DATETIME2(6)": (pyodbc.SQL_TYPE_TIMESTAMP, 26, 6)}[type_text]


def marker_columns(sql: str) -> list[str]:
    """For each ? in order, the column it is written to or compared with (sqlglot's T-SQL tree;
    each ? is numbered as @pN first, because a tree walk does not visit them in text order)."""
    count = iter(range(10_000))
    numbered = re.sub(r"\?", lambda _: f"@p{next(count)}", sql)
    found: dict[int, str] = {}
    for tree in sqlglot.parse(numbered, read="tsql"):
        for node in tree.find_all(exp.Parameter):
            index, parent = int(node.this.name[1:]), node.parent
            if isinstance(parent, exp.Tuple) and isinstance(parent.parent, exp.Values):
                position = next(i for i, e in enumerate(parent.expressions) if e is node)
                found[index] = parent.parent.args["alias"].columns[position].name
            elif isinstance(parent, exp.In):
                found[index] = parent.this.name
            elif isinstance(parent, exp.Coalesce):
                found[index] = parent.expressions[0].name
            elif isinstance(parent, (exp.Fetch, exp.Substring)):
                found[index] = "(row limit)"  # a row count, or a length: INT
            elif isinstance(parent, exp.Binary):
                other = parent.left if parent.right is node else parent.right
                # SUBSTRING(BlobName, 1, ?) = ?: compared with (a prefix of) the column
                found[index] = other.this.name if isinstance(other, exp.Substring) else other.name
            else:
                found[index] = f"(unknown: {type(parent).__name__})"
    return [found.get(i, "(not found)") for i in range(next(count))]


def binding_problems(sql: str, sizes: list[tuple[int, int, int]] | None) -> list[str]:
    types = declared_types()
    columns = marker_columns(sql)
    if sizes is None:  # the drivers' default for a str: SQL_WVARCHAR (pyodbc and mssql-python)
        return [f"{c}: no declared type, a str binds as NVARCHAR" for c in columns if c in types
                and not types[c].startswith("NVARCHAR")]
    if len(sizes) != len(columns):
        return [f"{len(sizes)} types for {len(columns)} markers"]
    problems = []
    for column, bound in zip(columns, sizes, strict=True):
        want = (pyodbc.SQL_INTEGER, 0, 0) if column == "(row limit)" else expected_binding(types[column])
        if tuple(bound) != want:
            problems.append(f"{column}: bound {bound}, column needs {want}")
    return problems


class RecordingCursor:
    """Stands in for a driver cursor: records what the store binds and executes."""

    def __init__(self, log: list[tuple[str, Any]], stored: tuple | None) -> None:
        self.log, self.stored, self.rowcount, self.description = log, stored, 1, [("x",)]
        self._sizes: Any = None

    def setinputsizes(self, sizes: list[tuple[int, int, int]]) -> None:
        self._sizes = sizes

    def execute(self, sql: str, params: Any = ()) -> None:
        self.log.append((sql, self._sizes))
        self._sizes = None
        self.rowcount = 0 if sql.startswith("MERGE") and self.stored else 1

    def fetchone(self) -> tuple | None:
        return self.stored

    def fetchall(self) -> list:
        return []


class RecordingConnection:
    def __init__(self, stored: tuple | None = None) -> None:
        self.log: list[tuple[str, Any]] = []
        self.stored = stored

    def cursor(self) -> RecordingCursor:
        return RecordingCursor(self.log, self.stored)

    def commit(self) -> None:
        pass

    rollback = close = commit


def tsql_store(monkeypatch: pytest.MonkeyPatch, stored: tuple | None = None) -> tuple[SqlStore, RecordingConnection]:
    store = SqlStore("Server=tcp:example.database.windows.net,1433;Database=images;")
    conn = RecordingConnection(stored)
    store._conn, store._dialect = conn, TSqlDialect()
    monkeypatch.setitem(store_module._checked, (store_module.os.getpid(), store.connection_string), 2)
    return store, conn


def _record(etag: str = "v1") -> ImageRecord:
    blob = BlobRef("images-input", "a 😀.jpg", etag, size=10, last_modified="2026-01-01T00:00:00Z", sequencer=None)
    return ImageRecord.for_blob(blob, "processed", metadata=ImageMetadata(width=1, title="t"), instance_id="i")


def every_tsql_write_and_read(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    store, conn = tsql_store(monkeypatch)
    store.upsert(_record())
    store.mark_deleted("images-input", "a.jpg", deleted_at=datetime(2026, 1, 1), sequencer="01", etag="v1")
    store.rows_by_keys(["0" * 64, "1" * 64])
    store.page_live_rows("images-input", "", 100)
    store.page_for_reindex("images-input", "", 100, ReindexFilter(
        statuses=("failed", "rejected"), older_than=3, before=datetime(2026, 1, 1), prefix="2024/😀"))
    log = list(conn.log)
    # a tie: the MERGE applies nothing, the row is read, storage says current, the row is swapped
    tied = ("v0", "processed", None, datetime(2026, 1, 1), None, 2, datetime(2026, 1, 2))
    store, conn = tsql_store(monkeypatch, stored=tied)
    assert store.upsert_outcome(_record()) == "tie"
    store.resolve_tie(_record(), is_current=True)
    return log + conn.log


def test_every_tsql_statement_binds_each_parameter_as_its_column_type(monkeypatch):
    log = every_tsql_write_and_read(monkeypatch)
    kinds = {sql.split()[0] for sql, _ in log}
    assert {"MERGE", "SELECT", "UPDATE"} <= kinds and len(log) >= 8
    assert any("UPDATE dbo.ImageMetadata SET" in sql for sql, _ in log)  # the swap ran
    for sql, sizes in log:
        assert binding_problems(sql, sizes) == [], sql[:120]


def test_binding_check_catches_a_str_bound_to_the_char_key(monkeypatch):
    """Negative controls: the driver default (no declared types: a str is NVARCHAR) and a key
    declared NVARCHAR(64) are both caught on the statements that compare BlobKey."""
    monkeypatch.setattr(TSqlDialect, "input_sizes", lambda self, statement: None)
    log = every_tsql_write_and_read(monkeypatch)
    assert all(any("BlobKey" in p for p in binding_problems(sql, sizes)) for sql, sizes in log
               if "BlobKey" in sql and "?" in sql)
    monkeypatch.undo()
    right = TSqlDialect.bind_type
    monkeypatch.setattr(TSqlDialect, "bind_type", lambda self, col: (
        (dialects_module.SQL_WVARCHAR, 64, 0) if col.kind == "key" else right(self, col)))
    upsert = DIALECT.upsert()
    assert binding_problems(upsert.sql, DIALECT.input_sizes(upsert)) == [
        "BlobKey: bound (-9, 64, 0), column needs (1, 64, 0)"]


def test_both_drivers_take_these_types():
    """The codes are the same in both drivers, and mssql-python's own setinputsizes accepts each
    (it validates against its type table before binding); pyodbc's takes them on a real cursor."""
    assert (pyodbc.SQL_CHAR, pyodbc.SQL_WVARCHAR, pyodbc.SQL_TYPE_TIMESTAMP, pyodbc.SQL_BIT) == (
        ConstantsDDBC.SQL_CHAR.value, ConstantsDDBC.SQL_WVARCHAR.value, ConstantsDDBC.SQL_TYPE_TIMESTAMP.value,
        ConstantsDDBC.SQL_BIT.value)
    assert (pyodbc.SQL_INTEGER, pyodbc.SQL_BIGINT, pyodbc.SQL_DECIMAL, pyodbc.SQL_DOUBLE) == (
        ConstantsDDBC.SQL_INTEGER.value, ConstantsDDBC.SQL_BIGINT.value, ConstantsDDBC.SQL_DECIMAL.value,
        ConstantsDDBC.SQL_DOUBLE.value)
    sizes = DIALECT.input_sizes(DIALECT.upsert())
    cursor = mssql_python.cursor.Cursor.__new__(mssql_python.cursor.Cursor)
    cursor.setinputsizes(sizes)
    assert [s[0] for s in cursor._inputsizes] == [s[0] for s in sizes]
    with pytest.raises(ValueError):
        cursor.setinputsizes([(12345, 1, 0)])  # negative control: an unknown type is refused


def test_readme_queries_compare_text_columns_with_unicode_literals():
    """The README's T-SQL filters NVARCHAR columns with N'' literals and typed variables, so no
    query converts a column either."""
    from tests.test_queries import readme_tsql

    for name, sql in readme_tsql().items():
        for tree in sqlglot.parse(sql, read="tsql"):
            for cmp in tree.find_all(exp.EQ):
                if isinstance(cmp.right, exp.Literal) and cmp.right.is_string:
                    raise AssertionError(f"{name}: {cmp.sql('tsql')} compares with a non-Unicode literal")
    broken = "SELECT Id FROM dbo.ImageMetadata WHERE CameraMake = 'Canon'"
    assert any(isinstance(c.right, exp.Literal) and c.right.is_string
               for c in sqlglot.parse_one(broken, read="tsql").find_all(exp.EQ))
