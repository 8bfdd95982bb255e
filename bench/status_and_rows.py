"""What the starter's row check and the status report cost, on 100,000 rows, SQLite and PostgreSQL.

    .venv/bin/python -m bench.status_and_rows     (writes bench/results/status-and-rows.txt)

Rows are generated as in tests/test_queries.py (2 % rejected), then given an upload time and an
extractor version. Measured: one ``rows_by_keys([key])`` (the starter's check, through a warm
store as the function keeps it), the whole ``table_status`` report, and the plans of its two
heaviest statements (counts by status, the last hour's latency).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyodbc

from devhost.services import Postgres
from shared.status import table_status
from shared.status_sql import STATUS_SQL
from shared.store import store_for
from tests import test_queries as queries

RESULTS = Path(__file__).resolve().parent / "results"
READS = 2000
# The generated rows were written one a second from 2026-01-01: "now" is just after the last.
NOW = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=queries.ROWS + 1)


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    return (f"mean {statistics.fmean(samples) * 1000:.3f} ms, p50 {ordered[len(ordered) // 2] * 1000:.3f} ms, "
            f"p95 {ordered[int(len(ordered) * 0.95)] * 1000:.3f} ms")


def measure(name: str, cs: str) -> list[str]:
    queries._populate(cs)
    conn = pyodbc.connect(cs, autocommit=True)
    conn.execute("UPDATE ImageMetadata SET ExtractorVersion = 2, BlobLastModified = ProcessedAt")
    conn.execute("ANALYZE")
    store = store_for(cs)
    keys = [f"{i:064d}" for i in range(1, queries.ROWS + 1, queries.ROWS // READS)]
    store.rows_by_keys(keys[:1])
    reads = []
    for key in keys:
        began = time.perf_counter()
        assert store.rows_by_keys([key])
        reads.append(time.perf_counter() - began)
    reports = []
    for _ in range(5):
        began = time.perf_counter()
        report = table_status(cs, now=NOW)
        reports.append(time.perf_counter() - began)
    sql = STATUS_SQL[name]
    since = sql.time_param((NOW - timedelta(hours=1)).replace(tzinfo=None))
    explain = "EXPLAIN QUERY PLAN " if name == "sqlite" else "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) "
    plans = []
    for title, statement, params in (("counts by status", sql.counts_by_status, ()),
                                     ("latency, last hour", sql.latency, (since, since))):
        rows = conn.execute(explain + statement, params).fetchall()
        plans += [f"  plan, {title}:"] + [f"    {r[-1] if name == 'sqlite' else r[0]}" for r in rows]
    conn.close()
    return [f"## {name}, {queries.ROWS:,} rows",
            f"row check, rows_by_keys([key]) x {len(reads)}: {_ms(reads)}",
            f"table_status x {len(reports)}: median {statistics.median(reports) * 1000:.1f} ms "
            f"(rows {report['rows']:,}, last hour {report['latencyLastHour']['rows']:,})",
            *plans, ""]


def main() -> int:
    server = Postgres.create()
    out: list[str] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out += measure("sqlite", f"Driver={{SQLite3}};Database={tmp}/s.db;Timeout=2000;")
            out += measure("postgresql", server.create_database("status_bench"))
    finally:
        server.destroy()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "status-and-rows.txt").write_text("\n".join(out))
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
