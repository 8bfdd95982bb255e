"""The status report: its SQL on SQLite and PostgreSQL for real, its T-SQL through two parsers and
the engine rules they do not check, the container side on Azurite, and `make status` itself."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlglot
from sqlglot import exp
from sqlglot.tokens import TokenType

from devhost.engine import Engine, ManualClock
from devhost.status import build_report
from shared.blob_access import ensure_container, upload_bytes
from shared.models import EXTRACTOR_VERSION, BlobRef, ImageMetadata, ImageRecord
from shared.settings import RECONCILE_INSTANCE_ID
from shared.status import render_table, table_status, unindexed_blobs
from shared.status_sql import POSTGRESQL, SQLITE, STATUS_SQL, TSQL, percentile_cont
from shared.store import connect, dialect_for, store_for
from tests.test_devhost_cli import cli
from tests.test_tsql import tsql_problems

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


# -- T-SQL ------------------------------------------------------------------------------------------

def _statements(sql: Any) -> dict[str, str]:
    return {"counts": sql.counts_by_status, "latency": sql.latency, "versions": sql.by_extractor_version,
            **{f"reasons {k}": v for k, v in sql.top_reasons.items()}}


def tsql_rule_problems(sql: str) -> list[str]:
    """SQL Server rules both parsers accept broken: no LIMIT (TOP / OFFSET-FETCH), every derived
    table aliased, PERCENTILE_CONT only as a window function (OVER), no functions SQL Server lacks."""
    problems = []
    tokens = sqlglot.tokenize(sql, read="tsql")
    if any(t.token_type == TokenType.LIMIT for t in tokens):
        problems.append("LIMIT is not T-SQL")
    for i, t in enumerate(tokens[:-1]):
        if tokens[i + 1].token_type == TokenType.L_PAREN and t.text.upper() in ("SUBSTR", "JULIANDAY", "EXTRACT"):
            problems.append(f"{t.text} is not a SQL Server function")
    tree = sqlglot.parse_one(sql, read="tsql")
    if any(not sq.alias for sq in tree.find_all(exp.Subquery)):
        problems.append("a derived table needs an alias")
    if any(not isinstance(p.parent.parent, exp.Window) for p in tree.find_all(exp.PercentileCont)):
        problems.append("PERCENTILE_CONT needs OVER () in T-SQL")
    return problems


@pytest.mark.parametrize("name", list(_statements(TSQL)))
def test_tsql_status_statements_parse_and_keep_sql_server_rules(name):
    statement = _statements(TSQL)[name]
    assert tsql_problems(statement) == []
    assert tsql_rule_problems(statement) == []


@pytest.mark.parametrize("name", ["latency", "reasons failed"])
def test_the_other_dialects_statements_fail_the_tsql_rules(name):
    """Negative control: the parsers alone accept these as T-SQL; the rule check does not."""
    assert tsql_rule_problems(_statements(SQLITE)[name])
    assert tsql_rule_problems(_statements(POSTGRESQL)[name])
    assert tsql_rule_problems(TSQL.latency.replace(" AS recent", ""))


def test_percentile_cont_matches_the_sql_definition():
    assert percentile_cont([], 0.5) is None
    assert percentile_cont([4.0], 0.95) == 4.0
    assert percentile_cont([1, 2, 3, 4], 0.5) == 2.5
    assert percentile_cont([10, 1, 3, 2], 0.95) == pytest.approx(3 + 0.85 * 7)


# -- the table, on both engines ----------------------------------------------------------------------

def _record(name: str, status: str, error: str | None = None, version: int = EXTRACTOR_VERSION) -> ImageRecord:
    ref = BlobRef("images-input", name, f"0x{uuid.uuid4().hex[:8]}", size=10)
    return ImageRecord.for_blob(ref, status, error=error, metadata=ImageMetadata(extractor_version=version))


def _set_times(cs: str, name: str, uploaded: datetime, written: datetime) -> None:
    conn = connect(cs)
    sql = STATUS_SQL[dialect_for(conn).name]
    conn.cursor().execute("UPDATE ImageMetadata SET BlobLastModified = ?, ProcessedAt = ? WHERE BlobName = ?",
                          (sql.time_param(uploaded.replace(tzinfo=None)), sql.time_param(written.replace(tzinfo=None)),
                           name))
    conn.commit()
    conn.close()


def test_table_status_counts_reasons_latency_and_versions(any_db_cs):
    store = store_for(any_db_cs)
    latencies = [2.0, 3.5, 5.0, 8.0, 40.0]
    for i, seconds in enumerate(latencies):
        store.upsert(_record(f"ok-{i}.jpg", "processed"))
        _set_times(any_db_cs, f"ok-{i}.jpg", NOW - timedelta(minutes=30), NOW - timedelta(minutes=30) + timedelta(
            seconds=seconds))
    store.upsert(_record("rej-0.jpg", "rejected", "not an image: no known signature"))
    _set_times(any_db_cs, "rej-0.jpg", NOW - timedelta(minutes=10), NOW - timedelta(minutes=10) + timedelta(seconds=1))
    for i in range(3):
        store.upsert(_record(f"rej-big-{i}.png", "rejected", "image has too many pixels " + "x" * 200))
    for i in range(2):
        store.upsert(_record(f"fail-{i}.jpg", "failed", "database is unavailable: 40613"))
    store.upsert(_record("fail-x.jpg", "failed", "storage unavailable"))
    # re-indexed just now, uploaded long ago: not an upload-to-row latency
    store.upsert(_record("old.jpg", "processed", version=EXTRACTOR_VERSION - 1))
    _set_times(any_db_cs, "old.jpg", NOW - timedelta(days=30), NOW - timedelta(minutes=1))
    for i in range(3):
        _set_times(any_db_cs, f"rej-big-{i}.png", NOW - timedelta(hours=3), NOW - timedelta(hours=3))
    for name in ("fail-0.jpg", "fail-1.jpg", "fail-x.jpg"):
        _set_times(any_db_cs, name, NOW - timedelta(minutes=5), NOW - timedelta(minutes=4))

    report = table_status(any_db_cs, now=NOW, top=5)
    assert report["rowsByStatus"] == {"failed": 3, "processed": 6, "rejected": 4}
    assert report["rows"] == 13
    assert report["topFailureReasons"] == [{"reason": "database is unavailable: 40613", "count": 2},
                                           {"reason": "storage unavailable", "count": 1}]
    [big, small] = report["topRejectionReasons"]
    assert big["count"] == 3 and big["reason"].startswith("image has too many pixels") and len(big["reason"]) == 120
    assert small == {"reason": "not an image: no known signature", "count": 1}
    latency = report["latencyLastHour"]
    expected = latencies + [1.0]
    assert latency["rows"] == 6
    assert latency["p50Seconds"] == pytest.approx(percentile_cont(expected, 0.5), abs=1e-3)
    assert latency["p95Seconds"] == pytest.approx(percentile_cont(expected, 0.95), abs=1e-3)
    assert report["reindex"] == {"extractorVersion": EXTRACTOR_VERSION,
                                 "liveRowsByExtractorVersion": {str(EXTRACTOR_VERSION - 1): 1,
                                                                str(EXTRACTOR_VERSION): 12},
                                 "liveRowsOlderThanCurrent": 1}
    assert table_status(any_db_cs, now=NOW, top=1)["topFailureReasons"] == report["topFailureReasons"][:1]


def test_table_status_on_an_empty_database(any_db_cs):
    report = table_status(any_db_cs, now=NOW)
    assert report["rows"] == 0 and report["latencyLastHour"] == {"rows": 0, "p50Seconds": None, "p95Seconds": None}


# -- the container ---------------------------------------------------------------------------------------

def test_blobs_without_a_final_row_and_the_oldest(storage_env, sqlite_cs):
    container = f"status-{uuid.uuid4().hex[:8]}"
    ensure_container(storage_env, container)
    refs = {n: upload_bytes(storage_env, container, n, b"x" * 5) for n in
            ("a-done.jpg", "b-rejected.jpg", "c-failed.jpg", "d-old-version.jpg", "e-no-row.jpg")}
    store = store_for(sqlite_cs)

    def row(name: str, status: str, etag: str | None = None) -> None:
        ref = refs[name] if etag is None else BlobRef(container, name, etag)
        store.upsert(ImageRecord.for_blob(ref, status))

    row("a-done.jpg", "processed")
    row("b-rejected.jpg", "rejected")
    row("c-failed.jpg", "failed")
    row("d-old-version.jpg", "processed", etag="0xOLD")
    result = unindexed_blobs(storage_env, sqlite_cs, container)
    assert (result["blobsListed"], result["withoutFinalRow"], result["complete"]) == (5, 3, True)
    assert result["oldest"]["name"] == "c-failed.jpg" and result["oldest"]["row"] == "failed"
    partial = unindexed_blobs(storage_env, sqlite_cs, container, max_blobs=2, page_size=2)
    assert (partial["blobsListed"], partial["complete"]) == (2, False)


# -- the whole report, and the command ---------------------------------------------------------------------

def _reconcile_instance(state_db: str, custom: dict[str, Any]) -> None:
    engine = Engine(state_db, {"ReconcileOrchestrator": lambda ctx: ""}, {}, ManualClock(NOW))
    engine.start("ReconcileOrchestrator", RECONCILE_INSTANCE_ID, json.dumps({}))
    engine.db.execute("UPDATE instances SET status = 'Running', custom_status = ? WHERE instance_id = ?",
                      (json.dumps(custom), RECONCILE_INSTANCE_ID))
    engine.close()


def test_report_reads_the_reconciliation_singletons_custom_status(tmp_path, storage_env, sqlite_cs):
    progress = {"pages": 3, "blobsSeen": 15000, "started": 12}
    state = tmp_path / "host" / "durable.db"
    state.parent.mkdir()
    assert build_report(sqlite_cs, storage_env, state, list_blobs=False)["reconciliation"]["runtimeStatus"] is None
    _reconcile_instance(str(state), progress)
    report = build_report(sqlite_cs, storage_env, state, list_blobs=False)
    assert report["reconciliation"]["runtimeStatus"] == "Running"
    assert report["reconciliation"]["progress"] == progress
    assert report["orchestrations"] == {"Running": 1}
    text = render_table(report)
    assert "pages=3, blobsSeen=15000, started=12" in text and "Running" in text


def test_make_status_prints_a_table_and_one_json_object(tmp_path, azurite, sqlite_cs):
    store_for(sqlite_cs).upsert(_record("cli.jpg", "rejected", "not an image"))
    upload_bytes(azurite.connection_string, "images-input", f"cli-{uuid.uuid4().hex[:6]}.jpg", b"x")
    env = {"SqlConnectionString": sqlite_cs, "AzureWebJobsStorage": azurite.connection_string,
           "DEVHOST_LOCAL": str(tmp_path / "local")}
    table = cli("status", env=env)
    assert table.returncode == 0, table.stderr
    assert "rows by status" in table.stdout and "rejected  1" in table.stdout and "not an image" in table.stdout
    as_json = cli("status", "--format", "json", env=env)
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)                  # exactly one JSON object, nothing else
    assert report["table"]["rowsByStatus"] == {"rejected": 1}
    assert report["blobs"]["withoutFinalRow"] >= 1 and report["blobs"]["oldest"] is not None
    assert report["reconciliation"] == {"instanceId": RECONCILE_INSTANCE_ID, "runtimeStatus": None, "progress": None}


def test_the_documented_tsql_batch_is_the_modules_and_parses():
    from pathlib import Path

    from shared.status_sql import tsql_script

    docs = (Path(__file__).resolve().parent.parent / "docs" / "status.md").read_text()
    script = tsql_script()
    assert f"```sql\n{script}\n```" in docs
    assert tsql_problems(script) == []
    for statement in script.split(";\n")[2:]:
        assert tsql_rule_problems(statement) == []
