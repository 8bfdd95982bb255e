"""Reconciliation: every blob version gets its final row, every row of a gone blob is marked.

Events can be missing: Event Grid never sends them for blobs that existed before the
subscription and drops an event after 24 h of failed deliveries; a run can end Failed
(database down longer than the retry schedule). A timer runs this pass:

1. List the container page by page (List Blobs, up to 5,000 names a call, following the
   continuation token). For each page, read the rows of those blobs by BlobKey (one query per
   ``sql_batch`` keys) and start a run, through the same ``start_for_blob`` as the triggers,
   for each blob version without its final row: no row, a row for another ETag, a ``failed``
   row, a ``deleted`` row. The instance id is derived from the version and ``start_for_blob``
   refuses a pending, running or completed instance, so a version is never started twice —
   not by two reconciliations, nor by a reconciliation racing a live event.
2. Page through the table's live rows of the container by BlobKey (keyset, index-backed). The
   listing's BlobKeys went into a Bloom filter (shared.keyfilter, ~3.6 MB per million blobs,
   never a false "not listed"); a row the filter says was not listed is checked in storage
   (one Get Blob Properties) and, if the blob is gone, marked deleted only for the ETag it
   holds, so a newer version written meanwhile by a live run is never marked. A gone blob the
   filter wrongly calls listed (0.1 %) is left for the next pass, which salts the filter anew.

Memory holds one page of each plus the filter. Cost per pass at N blobs and R rows:
ceil(N / 5,000) list calls, ceil(N / sql_batch) + ceil(R / row_page) SQL reads, and one
property read per row not listed (measured and scaled in docs/events-and-reconciliation.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from shared.blob_access import blob_version, list_blob_pages
from shared.keyfilter import KeyFilter
from shared.models import STATUS_DELETED, STATUS_FAILED, BlobRef
from shared.starter import start_for_blob
from shared.store import blob_key, store_for

log = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    """What one pass saw and did, and what it cost."""

    blobs_listed: int = 0
    list_calls: int = 0
    sql_reads: int = 0
    rows_read: int = 0
    missing_rows: int = 0
    other_version_rows: int = 0
    failed_rows: int = 0
    deleted_rows_of_present_blobs: int = 0
    started: int = 0
    already_covered: int = 0
    rows_checked: int = 0
    filter_bytes: int = 0
    property_reads: int = 0
    marked_deleted: int = 0
    start_pass_seconds: float = 0.0
    deletion_pass_seconds: float = 0.0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _needs_run(blob: BlobRef, row: dict[str, Any] | None, report: ReconcileReport) -> bool:
    if row is None:
        report.missing_rows += 1
        return True
    if row["ETag"] != blob.etag:
        report.other_version_rows += 1
        return True
    if row["Status"] == STATUS_FAILED:
        report.failed_rows += 1
        return True
    if row["Status"] == STATUS_DELETED:
        report.deleted_rows_of_present_blobs += 1
        return True
    return False


async def reconcile(
    client: Any, *, container: str, storage_connection: str, sql_connection: str,
    retry_delays: tuple[float, ...], list_page_size: int = 5000, sql_batch: int = 500,
    row_page_size: int = 1000, concurrency: int = 8,
) -> ReconcileReport:
    """One pass over the container and the table (see the module docstring)."""
    started_at = time.perf_counter()
    report = ReconcileReport()
    listed = KeyFilter()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="reconcile") as pool:
        await _start_missing(client, container, storage_connection, sql_connection, retry_delays,
                             list_page_size, sql_batch, concurrency, pool, report, listed)
        report.start_pass_seconds = round(time.perf_counter() - started_at, 3)
        report.filter_bytes = listed.size_bytes
        await _mark_gone(container, storage_connection, sql_connection, row_page_size, concurrency,
                         pool, report, listed)
    report.seconds = round(time.perf_counter() - started_at, 3)
    report.deletion_pass_seconds = round(report.seconds - report.start_pass_seconds, 3)
    log.info("reconciliation of %r: %s", container, report.to_dict())
    return report


async def _start_missing(
    client: Any, container: str, storage_connection: str, sql_connection: str,
    retry_delays: tuple[float, ...], list_page_size: int, sql_batch: int, concurrency: int,
    pool: ThreadPoolExecutor, report: ReconcileReport, listed: KeyFilter,
) -> None:
    loop = asyncio.get_running_loop()
    pages: Iterator[list[BlobRef]] = list_blob_pages(storage_connection, container, list_page_size)
    limit = asyncio.Semaphore(concurrency)

    async def start(blob: BlobRef) -> None:
        async with limit:
            result = await start_for_blob(client, blob, retry_delays)
        if result.started:
            report.started += 1
        else:
            report.already_covered += 1

    while (page := await loop.run_in_executor(pool, next, pages, None)) is not None:
        report.list_calls += 1
        report.blobs_listed += len(page)
        for at in range(0, len(page), sql_batch):
            chunk = page[at:at + sql_batch]
            keys = [blob_key(b.container, b.name) for b in chunk]
            for key in keys:
                listed.add(key)
            rows = await loop.run_in_executor(pool, lambda k=keys: store_for(sql_connection).rows_by_keys(k))
            report.sql_reads += 1
            report.rows_read += len(rows)
            todo = [b for b, k in zip(chunk, keys, strict=True) if _needs_run(b, rows.get(k), report)]
            await asyncio.gather(*(start(b) for b in todo))


async def _mark_gone(
    container: str, storage_connection: str, sql_connection: str, row_page_size: int,
    concurrency: int, pool: ThreadPoolExecutor, report: ReconcileReport, listed: KeyFilter,
) -> None:
    loop = asyncio.get_running_loop()

    def check(row: dict[str, Any]) -> bool:
        """True when the row's blob is gone and the row was marked (for its ETag only)."""
        if blob_version(storage_connection, container, row["BlobName"]) is not None:
            return False
        return store_for(sql_connection).mark_deleted(
            container, row["BlobName"], deleted_at=datetime.now(UTC), etag=row["ETag"])

    after = ""
    while True:
        rows = await loop.run_in_executor(
            pool, lambda a=after: store_for(sql_connection).page_live_rows(container, a, row_page_size))
        report.sql_reads += 1
        if not rows:
            return
        report.rows_checked += len(rows)
        unlisted = [r for r in rows if r["BlobKey"] not in listed]
        report.property_reads += len(unlisted)
        marked = await asyncio.gather(*(loop.run_in_executor(pool, check, r) for r in unlisted))
        report.marked_deleted += sum(marked)
        after = rows[-1]["BlobKey"]
