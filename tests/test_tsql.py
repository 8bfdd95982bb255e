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

from shared.sql_store import COLUMNS, DELETE_COLUMNS, SQLiteDialect, TSqlDialect

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
    "create table": DIALECT.create_table(),
    "probe columns": DIALECT.probe_columns(),
    "schema lock": DIALECT.schema_lock(),
    "upsert": DIALECT.upsert(),
    "select rows": DIALECT.select_rows(),
    "mark deleted": DIALECT.mark_deleted(),
    "select by keys": DIALECT.select_by_keys(500),
    "page after key": DIALECT.page_after_key(),
    **{f"add column {c.name}": DIALECT.add_column(c) for c in COLUMNS},
}


@pytest.mark.parametrize("name", list(STATEMENTS))
def test_every_tsql_statement_parses(name):
    assert tsql_problems(STATEMENTS[name]) == []


def test_upsert_has_one_placeholder_per_column_and_ends_with_semicolon():
    sql = DIALECT.upsert()
    assert sql.count("?") == len(COLUMNS)
    assert sql.rstrip().endswith(";")  # MERGE must be terminated in T-SQL
    assert "WITH (HOLDLOCK)" in sql


BROKEN = {
    "misspelled keyword": DIALECT.upsert().replace("WHEN MATCHED AND", "WHEN MATCHED AMD"),
    "unbalanced parenthesis": DIALECT.create_table().replace("IDENTITY(1, 1)", "IDENTITY(1, 1"),
    "missing comma": DIALECT.create_table().replace("NULL,\n    FileName", "NULL\n    FileName"),
    "missing THEN": DIALECT.upsert().replace(" THEN UPDATE SET", " UPDATE SET"),
    "trailing comma in VALUES": DIALECT.upsert().replace("VALUES (?, ", "VALUES (?, , "),
    "unterminated string": DIALECT.add_column(COLUMNS[5]).replace("N'dbo.", "N'dbo.", 1).replace("') IS", ") IS", 1),
    "LIMIT is not T-SQL": DIALECT.probe_columns().replace("TOP (0) *", "*") + " LIMIT 0",
    "ADD COLUMN IF NOT EXISTS is PostgreSQL": DIALECT.add_column(COLUMNS[5]).replace(
        "ADD ", "ADD COLUMN IF NOT EXISTS "),
    "ON CONFLICT is not T-SQL": SQLiteDialect().mark_deleted(),
    "mark deleted without THEN": DIALECT.mark_deleted().replace(" THEN UPDATE SET", " UPDATE SET"),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_check_rejects_broken_variants(name):
    assert BROKEN[name] != STATEMENTS.get(name)
    assert tsql_problems(BROKEN[name]), f"broken SQL accepted: {BROKEN[name][:200]}"


def test_mark_deleted_has_one_placeholder_per_column_and_compares_sequencers_by_code_point():
    sql = DIALECT.mark_deleted()
    assert sql.count("?") == len(DELETE_COLUMNS)
    assert sql.rstrip().endswith(";") and "WITH (HOLDLOCK)" in sql
    assert "Sequencer COLLATE Latin1_General_100_BIN2 >" in sql
    assert "Sequencer COLLATE Latin1_General_100_BIN2" in DIALECT.upsert()


def test_page_uses_offset_fetch_because_the_parsers_accept_limit_with_a_placeholder():
    """Both parsers accept '... ORDER BY BlobKey LIMIT ?' as T-SQL (seen here), so this one is
    checked by text: SQL Server pages with OFFSET ... FETCH NEXT."""
    sql = DIALECT.page_after_key()
    assert "LIMIT" not in sql and sql.endswith("ORDER BY BlobKey OFFSET 0 ROWS FETCH NEXT ? ROWS ONLY")
    assert tsql_problems(sql.replace("OFFSET 0 ROWS FETCH NEXT ? ROWS ONLY", "LIMIT ?")) == []


# Both drivers run these statements with a list of parameters and '?' markers: pyodbc passes them
# to the ODBC driver unchanged; mssql-python (paramstyle 'pyformat', but it accepts qmark too)
# runs detect_and_convert_parameters first (mssql_python/parameter_helper.py), which must leave
# qmark SQL with a list as it is and see no pyformat markers in it.
def _placeholders(sql: str) -> int:
    return sum(len(list(tree.find_all(exp.Placeholder))) for tree in sqlglot.parse(sql, read="tsql"))


@pytest.mark.parametrize("name", ["upsert", "select rows", "mark deleted", "select by keys", "page after key"])
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

    broken = DIALECT.upsert().replace("VALUES (?, ", "VALUES (%(BlobKey)s, ", 1)
    with pytest.raises(TypeError):
        detect_and_convert_parameters(broken, [None] * len(COLUMNS))
