"""One step of a reconciliation or re-index pass: the body of the ReconcilePage activity.

Each call does one page and returns where the next starts, so no call runs long and a host
killed at any moment resumes from the last completed page (the orchestration in
``shared.reconcile_flow`` holds the cursor in its history). Phases:

* ``deadletter``: one page of Event Grid's dead-letter container re-queued (``shared.deadletter``).
* ``list``: one List Blobs page (up to 5,000 names, continuation token in and out). Its BlobKeys
  are appended to the pass's state (``shared.listed_keys``); the rows of those blobs are read by
  key (one query per 500) and every version without its final row is started through the
  starter with ``restart_completed`` (a repair: no row, another ETag, ``failed``, ``deleted`` on a
  blob that exists), so a Completed instance of that version does not stop the repair; an active
  one does. At most ``maxStarts`` starts (the rate limit's share of one step) or ``budgetSeconds``
  per call: a page cut short returns the same token with the last name handled.
* ``rows``: one table page of live rows by BlobKey (keyset); keys the listing did not see are
  checked in storage (Get Blob Properties) and, when the blob is gone, marked deleted for the
  ETag the row holds only, so a newer version written meanwhile is never marked.
* ``reindex``: one table page of live rows matching a filter (keyset); each row's blob is read
  (its current version) and started, or marked deleted for its ETag when gone.
* ``cleanup``: the pass's state blobs deleted.

Counters come back as plain data; the orchestration adds them up for its custom status.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared import listed_keys
from shared.blob_access import blob_version, list_blob_page
from shared.deadletter import requeue_dead_letters
from shared.models import STATUS_DELETED, STATUS_FAILED, BlobRef
from shared.settings import StorageTarget
from shared.starter import ThreadStore, start_for_blob
from shared.store import ReindexFilter, blob_key, store_for

log = logging.getLogger(__name__)

SQL_BATCH = 500
CONCURRENCY = 8


@dataclass(frozen=True)
class Connections:
    """Where a step reads and writes: the images, the host's storage (state, dead letters), SQL."""

    images: StorageTarget
    host: StorageTarget
    sql: str
    container: str
    retry_delays: tuple[float, ...]


def needs_run(blob: BlobRef, row: dict[str, Any] | None) -> str:
    """Why this blob version needs a run ("" when its row is final for it)."""
    if row is None:
        return "missingRows"
    if row["ETag"] != blob.etag:
        return "otherVersionRows"
    if row["Status"] == STATUS_FAILED:
        return "failedRows"
    if row["Status"] == STATUS_DELETED:
        return "deletedRowsOfPresentBlobs"
    return ""


def reindex_filter(raw: dict[str, Any]) -> ReindexFilter:
    before = raw.get("before")
    return ReindexFilter(statuses=tuple(raw.get("statuses") or ()), older_than=raw.get("olderThan"),
                         before=datetime.fromisoformat(before) if before else None, prefix=raw.get("prefix") or "")


async def run_step(client: Any, step: dict[str, Any], conn: Connections) -> dict[str, Any]:
    """Do one step (``step["phase"]``) and return {"cursor": next cursor or None, "counters": {...}}."""
    began = time.monotonic()
    counters: Counter[str] = Counter()
    with ThreadPoolExecutor(max_workers=CONCURRENCY, thread_name_prefix="reconcile") as pool:
        phase = step["phase"]
        if phase == "deadletter":
            cursor = await _deadletter(client, step, conn, counters)
        elif phase == "list":
            cursor = await _list(client, step, conn, counters, pool, began)
        elif phase == "rows":
            cursor = await _rows(step, conn, counters, pool)
        elif phase == "reindex":
            cursor = await _reindex(client, step, conn, counters, pool, began)
        elif phase == "cleanup":
            io = await asyncio.to_thread(listed_keys.delete_all, conn.host, pool)
            counters["stateCalls"] += io.calls
            cursor = None
        else:
            raise ValueError(f"unknown reconciliation phase {phase!r}")
    counters["stepSeconds"] = round(time.monotonic() - began, 3)  # type: ignore[assignment]
    return {"cursor": cursor, "counters": dict(counters)}


async def _deadletter(client: Any, step: dict[str, Any], conn: Connections, counters: Counter[str]
                      ) -> dict[str, Any] | None:
    report = await requeue_dead_letters(
        client, host_storage=conn.host, images_storage=conn.images, sql_connection=conn.sql,
        retry_delays=conn.retry_delays, input_container=conn.container,
        continuation=(step.get("cursor") or {}).get("token"))
    counters["deadLetterBlobs"] += report.blobs_seen
    counters["deadLetterEventsRequeued"] += report.events_requeued
    counters["deadLetterBlobsFailed"] += report.blobs_failed
    return {"token": report.continuation} if report.continuation else None


async def _start_all(client: Any, blobs: list[BlobRef], conn: Connections, counters: Counter[str],
                     restart_completed: bool) -> None:
    limit = asyncio.Semaphore(CONCURRENCY)
    store = ThreadStore(conn.sql)

    async def start(blob: BlobRef) -> None:
        async with limit:
            result = await start_for_blob(client, blob, conn.retry_delays, restart_completed=restart_completed,
                                          store=store)
        counters["started" if result.started else "alreadyCovered"] += 1

    await asyncio.gather(*(start(b) for b in blobs))


async def _list(client: Any, step: dict[str, Any], conn: Connections, counters: Counter[str],
                pool: ThreadPoolExecutor, began: float) -> dict[str, Any] | None:
    cursor = step.get("cursor") or {}
    token, resume_after = cursor.get("token"), cursor.get("resumeAfter")
    refs, next_token = await asyncio.to_thread(list_blob_page, conn.images, conn.container, token,
                                               step["listPageSize"])
    counters["listCalls"] += 1
    if resume_after is not None:
        # Re-listing a page cut short: skip what the last call handled (names come in order).
        refs = [r for r in refs if r.name > resume_after]
    counters["blobsListed"] += len(refs)
    budget = step["maxStarts"]
    handled: list[BlobRef] = []
    for at in range(0, len(refs), SQL_BATCH):
        chunk = refs[at:at + SQL_BATCH]
        keys = [blob_key(b.container, b.name) for b in chunk]
        rows = await asyncio.to_thread(lambda k=keys: store_for(conn.sql).rows_by_keys(k))
        counters["sqlStatements"] += 1
        todo: list[BlobRef] = []
        stop_at = len(chunk)
        for i, (blob, key) in enumerate(zip(chunk, keys, strict=True)):
            why = needs_run(blob, rows.get(key))
            if why:
                if len(todo) >= budget:
                    stop_at = i
                    break
                counters[why] += 1
                todo.append(blob)
        await _start_all(client, todo, conn, counters, restart_completed=True)
        budget -= len(todo)
        handled += chunk[:stop_at]
        over_time = time.monotonic() - began > step["budgetSeconds"]
        if stop_at < len(chunk) or ((budget <= 0 or over_time) and len(handled) < len(refs)):
            await _record_listed(conn, step, handled, counters, pool)
            counters["blobsListed"] -= len(refs) - len(handled)
            return {"token": token, "resumeAfter": handled[-1].name if handled else resume_after}
    await _record_listed(conn, step, handled, counters, pool)
    return {"token": next_token} if next_token else None


async def _record_listed(conn: Connections, step: dict[str, Any], handled: list[BlobRef], counters: Counter[str],
                         pool: ThreadPoolExecutor) -> None:
    """The step's listed keys into the pass's state: one Append Block per bucket, once per step
    (before the step reports done, so a step killed before that is run again whole)."""
    io = await asyncio.to_thread(listed_keys.append_listed, conn.host, step["passId"],
                                 [blob_key(b.container, b.name) for b in handled], pool)
    counters["stateCalls"] += io.calls
    counters["stateBytes"] += io.bytes
    counters["stateBytesWritten"] += io.bytes


async def _rows(step: dict[str, Any], conn: Connections, counters: Counter[str], pool: ThreadPoolExecutor
                ) -> dict[str, Any] | None:
    after = (step.get("cursor") or {}).get("after", "")
    size = step["rowPageSize"]
    rows = await asyncio.to_thread(lambda: store_for(conn.sql).page_live_rows(conn.container, after, size))
    counters["sqlStatements"] += 1
    counters["rowsChecked"] += len(rows)
    if not rows:
        return None
    listed, io = await asyncio.to_thread(listed_keys.load_listed, conn.host, step["passId"],
                                         {listed_keys.bucket_of(r["BlobKey"]) for r in rows}, pool)
    counters["stateCalls"] += io.calls
    counters["stateBytes"] += io.bytes
    counters["stateBytesRead"] += io.bytes
    unlisted = [r for r in rows if not listed_keys.was_listed(listed, r["BlobKey"])]

    def check(row: dict[str, Any]) -> str:
        """"present", or for a gone blob "marked" / "kept" (the deletion names the row's ETag only)."""
        if blob_version(conn.images, conn.container, row["BlobName"]) is not None:
            return "present"
        marked = store_for(conn.sql).mark_deleted(conn.container, row["BlobName"], deleted_at=datetime.now(UTC),
                                                  etag=row["ETag"])
        return "marked" if marked else "kept"

    counters["propertyReads"] += len(unlisted)
    outcomes = Counter(pool.map(check, unlisted))
    counters["sqlStatements"] += outcomes["marked"] + outcomes["kept"]
    counters["rowsMarkedGone"] += outcomes["marked"]
    return {"after": rows[-1]["BlobKey"]} if len(rows) == size else None


async def _reindex(client: Any, step: dict[str, Any], conn: Connections, counters: Counter[str],
                   pool: ThreadPoolExecutor, began: float) -> dict[str, Any] | None:
    raw = step.get("filter") or {}
    flt = reindex_filter(raw)
    after = (step.get("cursor") or {}).get("after", "")
    size = min(step["rowPageSize"], step["maxStarts"])
    rows = await asyncio.to_thread(lambda: store_for(conn.sql).page_for_reindex(conn.container, after, size, flt))
    counters["sqlStatements"] += 1
    counters["rowsSelected"] += len(rows)
    if not rows:
        return None
    versions = list(pool.map(lambda r: blob_version(conn.images, conn.container, r["BlobName"]), rows))
    counters["propertyReads"] += len(rows)
    gone = [r for r, v in zip(rows, versions, strict=True) if v is None]
    marked = list(pool.map(lambda r: store_for(conn.sql).mark_deleted(
        conn.container, r["BlobName"], deleted_at=datetime.now(UTC), etag=r["ETag"]), gone))
    counters["sqlStatements"] += len(gone)
    counters["rowsMarkedGone"] += sum(marked)
    await _start_all(client, [v for v in versions if v is not None], conn, counters,
                     restart_completed=bool(raw.get("restartCompleted")))
    return {"after": rows[-1]["BlobKey"]}
