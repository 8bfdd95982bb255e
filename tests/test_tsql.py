"""Every T-SQL statement the store can send, parsed as T-SQL by two independent parsers.

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
    parsed = _LINTER.parse_string(sql)
    if parsed.tree is None or parsed.violations or any(parsed.tree.recursive_crawl("unparsable")):
        problems.append(f"sqlfluff: {[v.desc() for v in parsed.violations][:1] or 'unparsable'}")
    return problems


DIALECT = TSqlDialect()
STATEMENTS = {
    "create table": DIALECT.create_table(),
    "probe columns": DIALECT.probe_columns(),
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
