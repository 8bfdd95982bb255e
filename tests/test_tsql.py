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

from shared.sql_store import COLUMNS, TSqlDialect

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
    "upsert": DIALECT.upsert(),
    "select rows": DIALECT.select_rows(),
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
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_check_rejects_broken_variants(name):
    assert BROKEN[name] != STATEMENTS.get(name)
    assert tsql_problems(BROKEN[name]), f"broken SQL accepted: {BROKEN[name][:200]}"
