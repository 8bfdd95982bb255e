"""The README queries' plans on 100,000 generated rows, SQLite and PostgreSQL.

    .venv/bin/python -m bench.query_plans     (writes bench/results/query-plans.txt)

Same data and queries as tests/test_queries.py (which asserts the index use); this prints
the plans in full, with PostgreSQL's actual row counts and times (EXPLAIN ANALYZE).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pyodbc

from devhost.services import Postgres
from tests import test_queries as queries

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    server = Postgres.create()
    out: list[str] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            dbs = {"sqlite": f"Driver={{SQLite3}};Database={tmp}/q.db;Timeout=2000;",
                   "postgresql": server.create_database("plans")}
            for cs in dbs.values():
                queries._populate(cs)
            for name, (sql, params, _) in queries.QUERIES.items():
                conn = pyodbc.connect(dbs["sqlite"], autocommit=True)
                sqlite_plan = [str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
                conn.close()
                conn = pyodbc.connect(dbs["postgresql"], autocommit=True)
                pg_plan = [r[0] for r in conn.execute(
                    "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) " + sql, params)]
                conn.close()
                out += [f"## {name}", "SQLite:", *(f"  {line}" for line in sqlite_plan),
                        "PostgreSQL:", *(f"  {line}" for line in pg_plan), ""]
    finally:
        server.destroy()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "query-plans.txt").write_text("\n".join(out))
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
