"""Starting one orchestration per (blob version, extractor version), at most once.

The blob trigger and Event Grid can deliver a version more than once (two hosts sharing a
storage account, a host id change, at-least-once delivery, a redelivered event). The instance
id is derived from container + name + ETag + extractor version, so an upgraded extractor gets
a new id for every version (re-indexing), while duplicates of one version meet the same id.

A delivery starts nothing when either says the work is done or under way:

1. the row (``store``, one read by key): it holds this ETag, written by this extractor version
   or a newer one, with a final status. This is what still answers after the Durable history
   was purged (``shared.retention``), when the instance the second check asks about is gone.
2. the instance: Pending, Running, Suspended, ContinuedAsNew or Completed. A Failed or
   Terminated one may be started again: the Durable extension then replaces it.

``restart_completed`` (reconciliation repairs, re-index) skips the row check and starts again
a Completed instance too, but never one that is still under way. The race between the checks
and the start is closed by the extension refusing a duplicate id of an active instance, and,
past that, by the idempotent store.

If the row cannot be read (database down, paused, throttled) the delivery falls back on the
instance check alone rather than failing: failing would make the blob trigger count a try
towards poisoning the blob and Event Grid redeliver into the same outage, while the fallback
costs at most one redundant run of a version whose history was already purged, and that run's
write is idempotent (same ETag, same extractor version: the row is rewritten with itself).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from shared.blob_access import blob_version
from shared.log_context import bind
from shared.models import EXTRACTOR_VERSION, STATUS_PROCESSED, STATUS_REJECTED, BlobRef, normalise_etag
from shared.orchestration import orchestration_input
from shared.settings import ORCHESTRATOR_NAME, load_preview_settings
from shared.store import blob_key, store_for

log = logging.getLogger(__name__)

# Runtime statuses under which a repeated delivery must not start the version again ...
DO_NOT_RESTART = frozenset({"Pending", "Running", "Completed", "ContinuedAsNew", "Suspended"})
# ... and the ones under which even a repair or re-index must not: the run is still under way.
ACTIVE = frozenset({"Pending", "Running", "ContinuedAsNew", "Suspended"})
# Row statuses that end a version's indexing. ``failed`` is retried (reconciliation starts it
# again); ``deleted`` on a blob that exists is repaired: neither stops a delivery.
FINAL_ROW_STATUSES = frozenset({STATUS_PROCESSED, STATUS_REJECTED})


class RowReader(Protocol):
    def rows_by_keys(self, keys: list[str]) -> Mapping[str, Mapping[str, Any]]: ...


class ThreadStore:
    """The row reader of a starter process: every read runs on one dedicated thread, so the
    process holds one database session however many starts run at once (connections are not
    shared between threads, and a session per pool thread would take sessions the activities need
    from a database with a small worker limit)."""

    _executors: ClassVar[dict[str, ThreadPoolExecutor]] = {}
    _guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, connection_string: str) -> None:
        self.connection_string = connection_string

    def _executor(self) -> ThreadPoolExecutor:
        with self._guard:
            executor = self._executors.get(self.connection_string)
            if executor is None:
                executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="row-check")
                self._executors[self.connection_string] = executor
            return executor

    def rows_by_keys(self, keys: list[str]) -> Mapping[str, Mapping[str, Any]]:
        return self._executor().submit(
            lambda: store_for(self.connection_string).rows_by_keys(keys)).result()


def instance_id_for(container: str, name: str, etag: str, extractor_version: int = EXTRACTOR_VERSION) -> str:
    """A valid Durable instance id (no '/', '\\', '?', '#', under 100 chars) for one blob version
    indexed by one extractor version."""
    key = f"{container}\n{name}\n{normalise_etag(etag)}\n{int(extractor_version)}".encode()
    return "img-" + hashlib.sha256(key).hexdigest()


def blob_path_from_trigger(path: str) -> tuple[str, str]:
    """(container, name) from the trigger's ``BlobTrigger`` path ("images-input/a/b.jpg")."""
    container, _, name = (path or "").partition("/")
    if not container or not name:
        raise ValueError(f"blob trigger path {path!r} has no container part")
    return container, name


@dataclass(frozen=True)
class StartResult:
    instance_id: str
    started: bool
    existing_status: str | None = None
    # Why nothing was started: "row" (the row says the version is indexed), "instance" (its
    # instance is under way or completed), "" when started.
    covered_by: str = ""


def row_covers(row: Mapping[str, Any] | None, etag: str, extractor_version: int = EXTRACTOR_VERSION) -> bool:
    """True when the row says this version is indexed by this extractor version or a newer one."""
    if not row or row.get("Status") not in FINAL_ROW_STATUSES:
        return False
    if normalise_etag(row.get("ETag")) != normalise_etag(etag):
        return False
    written_by = row.get("ExtractorVersion")
    return written_by is not None and int(written_by) >= extractor_version


async def _covered_by_row(store: RowReader, blob: BlobRef) -> bool:
    """True when the blob's row says this version is indexed; False when it does not, or when the
    database could not answer (then the instance check decides alone, see the module docstring)."""
    key = blob_key(blob.container, blob.name)
    try:
        rows = await asyncio.to_thread(store.rows_by_keys, [key])
    except Exception as exc:  # noqa: BLE001 - any failure: fall back on the instance check
        log.warning("row of blob %r could not be read (%s: %s); deciding by the instance status alone",
                    blob.name, type(exc).__name__, exc)
        return False
    row = rows.get(key)
    if not row_covers(row, blob.etag):
        return False
    log.info("blob %r version %s is already indexed (row %s, extractor %s): not starting it",
             blob.name, blob.etag, row["Status"], row["ExtractorVersion"])  # type: ignore[index]
    return True


async def start_for_blob(client: Any, blob: BlobRef, retry_delays: tuple[float, ...], *,
                         restart_completed: bool = False, store: RowReader | None = None) -> StartResult:
    """Start ImageOrchestrator for this blob version unless its row or its instance covers it."""
    instance_id = instance_id_for(blob.container, blob.name, blob.etag)
    bind(instance_id=instance_id, blob_name=blob.name, etag=blob.etag)
    if store is not None and not restart_completed and await _covered_by_row(store, blob):
        return StartResult(instance_id, False, None, "row")
    status = await client.get_status(instance_id)
    runtime = getattr(status, "runtime_status", None)
    existing = getattr(runtime, "value", runtime) if status else None
    refused = ACTIVE if restart_completed else DO_NOT_RESTART
    if existing in refused:
        log.info("blob %r version %s already has instance %s (%s): not starting again",
                 blob.name, blob.etag, instance_id, existing)
        return StartResult(instance_id, False, existing, "instance")
    try:
        await client.start_new(ORCHESTRATOR_NAME, instance_id, orchestration_input(
            blob, retry_delays, previews=load_preview_settings().enabled))
    except Exception as exc:
        if "already exists" in str(exc).lower() or "OrchestrationAlreadyExists" in str(exc):
            log.info("instance %s was started by a concurrent delivery", instance_id)
            return StartResult(instance_id, False, "Running", "instance")
        raise
    log.info("started %s for blob %r version %s", instance_id, blob.name, blob.etag)
    return StartResult(instance_id, True, existing)


async def start_for_trigger(client: Any, connection_string: str, path: str, retry_delays: tuple[float, ...],
                            store: RowReader | None = None) -> StartResult | None:
    """The blob trigger's start: the version comes from storage (one Get Blob Properties call).

    The trigger's own ``Properties`` cannot say which version fired (the host sends ``ETag: {}``),
    and by the time the trigger runs the blob may have been overwritten (start the version that is
    there now: the trigger for it then finds it started) or deleted (nothing to index: return None,
    so the host records success and nothing is poisoned).
    """
    container, name = blob_path_from_trigger(path)
    blob = await asyncio.to_thread(blob_version, connection_string, container, name)
    if blob is None:
        log.warning("blob %r in %r was deleted before its trigger ran: nothing to index", name, container)
        return None
    return await start_for_blob(client, blob, retry_delays, store=store)
