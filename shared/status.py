"""How the pipeline is doing: one report built from the table, the container and the
reconciliation singleton's custom status.

- rows by status, the top failure and rejection reasons (the first characters of ``Error``);
- blobs without a final row (no row, a row for another version, a ``failed`` or ``deleted``
  row) and the oldest of them, by listing the container and reading rows by key in batches,
  as reconciliation does: ceil(N / 5,000) list calls and ceil(N / 500) reads, so it stops at
  ``max_blobs`` and says the count is partial;
- upload-to-row latency p50 / p95 over the last hour (shared.status_sql);
- re-index progress: live rows by ExtractorVersion, and how many are older than this one;
- reconciliation / re-index progress: the custom status of the instance
  ``RECONCILE_INSTANCE_ID`` (the orchestration's own progress), as the Durable HTTP API gives it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.blob_access import list_blob_pages
from shared.models import EXTRACTOR_VERSION
from shared.settings import RECONCILE_INSTANCE_ID, StorageTarget
from shared.starter import FINAL_ROW_STATUSES
from shared.status_sql import STATUS_SQL, StatusSql, percentile_cont
from shared.store import blob_key, connect, dialect_for, store_for


def _number(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def table_status(connection_string: str, *, now: datetime | None = None, top: int = 5) -> dict[str, Any]:
    """The table's part of the report: counts, reasons, latency, extractor versions."""
    store_for(connection_string).rows_by_keys([])  # creates the table on a fresh database, as a first write would
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    since = now - timedelta(hours=1)
    conn = connect(connection_string)
    try:
        sql: StatusSql = STATUS_SQL[dialect_for(conn).name]
        cursor = conn.cursor()
        counts = {row[0]: int(row[1]) for row in cursor.execute(sql.counts_by_status).fetchall()}
        reasons = {}
        for status, statement in sql.top_reasons.items():
            reasons[status] = [{"reason": r[0], "count": int(r[1])}
                               for r in cursor.execute(statement, (top,)).fetchall()]
        params = (sql.time_param(since), sql.time_param(since))
        if sql.computes_percentiles:
            row = cursor.execute(sql.latency, params).fetchone()
            n, p50, p95 = (int(row[0]), _number(row[1]), _number(row[2])) if row else (0, None, None)
        else:
            seconds = [float(r[0]) for r in cursor.execute(sql.latency, params).fetchall()]
            n, p50, p95 = len(seconds), _number(percentile_cont(seconds, 0.5)), _number(percentile_cont(seconds, 0.95))
        versions = {(int(r[0]) if r[0] is not None else None): int(r[1])
                    for r in cursor.execute(sql.by_extractor_version).fetchall()}
        conn.rollback()
    finally:
        conn.close()
    older = sum(n_rows for v, n_rows in versions.items() if v is None or v < EXTRACTOR_VERSION)
    return {
        "rowsByStatus": counts,
        "rows": sum(counts.values()),
        "topFailureReasons": reasons.get("failed", []),
        "topRejectionReasons": reasons.get("rejected", []),
        "latencyLastHour": {"rows": n, "p50Seconds": p50, "p95Seconds": p95},
        "reindex": {"extractorVersion": EXTRACTOR_VERSION,
                    "liveRowsByExtractorVersion": {str(k): v for k, v in versions.items()},
                    "liveRowsOlderThanCurrent": older},
    }


def unindexed_blobs(storage: StorageTarget, connection_string: str, container: str, *,
                    max_blobs: int = 100_000, page_size: int = 5000, batch: int = 500) -> dict[str, Any]:
    """Blobs whose current version has no final row, and the oldest of them (by Last-Modified)."""
    listed = missing = 0
    oldest: dict[str, Any] | None = None
    complete = True
    store = store_for(connection_string)
    for page in list_blob_pages(storage, container, page_size):
        for at in range(0, len(page), batch):
            chunk = page[at:at + batch]
            rows = store.rows_by_keys([blob_key(b.container, b.name) for b in chunk])
            for blob in chunk:
                row = rows.get(blob_key(blob.container, blob.name))
                if row and row.get("ETag") == blob.etag and row.get("Status") in FINAL_ROW_STATUSES:
                    continue
                missing += 1
                if oldest is None or (blob.last_modified or "") < oldest["lastModified"]:
                    oldest = {"name": blob.name, "etag": blob.etag, "lastModified": blob.last_modified or "",
                              "row": row.get("Status") if row else None}
        listed += len(page)
        if listed >= max_blobs:
            complete = False
            break
    return {"blobsListed": listed, "withoutFinalRow": missing, "oldest": oldest, "complete": complete}


def reconciliation_progress(status: Mapping[str, Any] | None) -> dict[str, Any]:
    """The singleton's state from its Durable status (HTTP API JSON shape), or that there is none."""
    if not status:
        return {"instanceId": RECONCILE_INSTANCE_ID, "runtimeStatus": None, "progress": None}
    custom = status.get("customStatus")
    if isinstance(custom, str):
        try:
            custom = json.loads(custom)
        except ValueError:
            pass
    return {"instanceId": RECONCILE_INSTANCE_ID, "runtimeStatus": status.get("runtimeStatus"),
            "progress": custom, "createdTime": status.get("createdTime"),
            "lastUpdatedTime": status.get("lastUpdatedTime")}


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_cell(v)}" for k, v in value.items()) or "-"
    return str(value)


def _lines(rows: Iterable[tuple[str, Any]]) -> list[str]:
    rows = list(rows)
    width = max((len(k) for k, _ in rows), default=0)
    return [f"{k.ljust(width)}  {_cell(v)}" for k, v in rows]


def _indent(lines: list[str]) -> list[str]:
    return ["  " + line for line in lines] or ["  (none)"]


def render_table(report: Mapping[str, Any]) -> str:
    """The report as a few aligned sections of text (``make status``)."""
    table = report.get("table") or {}
    out = [f"pipeline status at {report.get('generatedAt')} (container {report.get('container')})", ""]
    out += ["rows by status"] + _indent(_lines((table.get("rowsByStatus") or {}).items()))
    for title, key in (("top failure reasons", "topFailureReasons"), ("top rejection reasons", "topRejectionReasons")):
        items = table.get(key) or []
        out += ["", title] + _indent(_lines((str(i["count"]), i["reason"]) for i in items))
    blobs = report.get("blobs")
    out += ["", "blobs without a final row"]
    if blobs is None:
        out.append("  (not listed)")
    elif "error" in blobs:
        out.append(f"  could not list: {blobs['error']}")
    else:
        oldest = blobs.get("oldest")
        out += ["  " + line for line in _lines([
            ("count", f"{blobs['withoutFinalRow']} of {blobs['blobsListed']} listed"
                      + ("" if blobs["complete"] else " (partial: listing stopped at the limit)")),
            ("oldest", f"{oldest['name']} (uploaded {oldest['lastModified']}, row {oldest['row'] or 'none'})"
                       if oldest else None)])]
    latency = table.get("latencyLastHour") or {}
    out += ["", "upload-to-row latency, uploads of the last hour"]
    out += ["  " + line for line in _lines([("rows", latency.get("rows")), ("p50 s", latency.get("p50Seconds")),
                                            ("p95 s", latency.get("p95Seconds"))])]
    reindex = table.get("reindex") or {}
    out += ["", f"re-index (extractor version {reindex.get('extractorVersion')})"]
    out += ["  " + line for line in _lines([("live rows by version", reindex.get("liveRowsByExtractorVersion")),
                                            ("older than current", reindex.get("liveRowsOlderThanCurrent"))])]
    recon = report.get("reconciliation") or {}
    out += ["", f"reconciliation / re-index ({recon.get('instanceId')})"]
    out += ["  " + line for line in _lines([("status", recon.get("runtimeStatus") or "never run"),
                                            ("progress", recon.get("progress")),
                                            ("last update", recon.get("lastUpdatedTime"))])]
    if report.get("orchestrations") is not None:
        out += ["", "orchestrations by runtime status"] + _indent(_lines(report["orchestrations"].items()))
    return "\n".join(out) + "\n"
