"""Blob Storage events from Event Grid: parse, then start the version or record the deletion.

Event Grid schema of a Blob Storage event (MicrosoftDocs azure-docs,
articles/event-grid/event-schema-blob-storage.md, "Event Grid event schema" tab):
``topic``, ``subject`` = ``/blobServices/default/containers/<container>/blobs/<name>``,
``eventType`` (``Microsoft.Storage.BlobCreated`` / ``Microsoft.Storage.BlobDeleted``),
``eventTime``, ``id``, ``dataVersion``, ``metadataVersion`` and ``data`` with ``api``,
``requestId``, ``eTag`` (created only; the docs' sample carries quotes), ``contentType``,
``contentLength`` (created only), ``blobType``, ``url``, ``sequencer``.

``sequencer`` is "an opaque string value representing the logical sequence of events for any
particular blob name. Users can use standard string comparison to understand the relative
sequence of two events on the same blob name" (StorageBlobCreatedEventData /
StorageBlobDeletedEventData, @azure/eventgrid reference on learn.microsoft.com).

Event Grid delivers at least once and in no guaranteed order, and retries a delivery that
failed for up to 24 hours. So an event we cannot use (another type, another container,
malformed) is logged and acknowledged — retrying would never help — while a transient
failure (storage or database down) raises, so that Event Grid delivers the event again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.blob_access import blob_version
from shared.models import BlobRef, normalise_etag
from shared.preview_blobs import delete_previews
from shared.settings import load_preview_settings
from shared.starter import ThreadStore, start_for_blob
from shared.store import store_for

log = logging.getLogger(__name__)

BLOB_CREATED = "Microsoft.Storage.BlobCreated"
BLOB_DELETED = "Microsoft.Storage.BlobDeleted"
_SUBJECT_PREFIX = "/blobServices/default/containers/"


@dataclass(frozen=True)
class BlobEvent:
    """One usable Blob Storage event."""

    kind: str  # "created" | "deleted"
    event_id: str
    container: str
    name: str
    event_time: datetime
    sequencer: str | None = None
    etag: str | None = None
    content_type: str | None = None
    content_length: int | None = None
    url: str | None = None
    api: str | None = None

    def blob_ref(self) -> BlobRef:
        """The version a created event names (no Last-Modified: extraction reads it from storage)."""
        return BlobRef(container=self.container, name=self.name, etag=self.etag or "",
                       size=self.content_length, url=self.url, content_type=self.content_type,
                       sequencer=self.sequencer)


@dataclass(frozen=True)
class IgnoredEvent:
    """An event that retrying cannot make usable, with the reason (logged, acknowledged)."""

    event_id: str
    reason: str


@dataclass(frozen=True)
class EventOutcome:
    """What handling one event did: started, already covered, deleted, kept newer, ignored..."""

    action: str
    event_id: str
    detail: str = ""
    instance_id: str | None = None


def _text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value != "" else None


def _split_subject(subject: str) -> tuple[str, str] | None:
    if not subject.startswith(_SUBJECT_PREFIX):
        return None
    container, sep, name = subject[len(_SUBJECT_PREFIX):].partition("/blobs/")
    if not sep or not container or not name:
        return None
    return container, name


def parse_blob_event(event: Any, container: str) -> BlobEvent | IgnoredEvent:
    """One Event Grid event (a dict in the Event Grid schema) -> a usable event, or why not."""
    if not isinstance(event, Mapping):
        return IgnoredEvent("?", f"event is a {type(event).__name__}, not a JSON object")
    event_id = str(event.get("id") or "?")
    event_type = event.get("eventType")
    if event_type not in (BLOB_CREATED, BLOB_DELETED):
        return IgnoredEvent(event_id, f"event type {event_type!r} is not a blob creation or deletion")
    where = _split_subject(str(event.get("subject") or ""))
    if where is None:
        return IgnoredEvent(event_id, f"subject {event.get('subject')!r} does not name a blob "
                                      f"({_SUBJECT_PREFIX}<container>/blobs/<name>)")
    if where[0] != container:
        return IgnoredEvent(event_id, f"blob is in container {where[0]!r}, not {container!r}")
    data = event.get("data")
    if not isinstance(data, Mapping):
        return IgnoredEvent(event_id, "event has no 'data' object")
    raw_time = _text(event, "eventTime")
    try:
        when = datetime.fromisoformat(raw_time) if raw_time else None
    except ValueError:
        when = None
    if when is None:
        return IgnoredEvent(event_id, f"eventTime {event.get('eventTime')!r} is not an ISO 8601 time")
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    length = data.get("contentLength")
    if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 0):
        return IgnoredEvent(event_id, f"data.contentLength {length!r} is not a byte count")
    etag = normalise_etag(_text(data, "eTag")) or None
    return BlobEvent(
        kind="created" if event_type == BLOB_CREATED else "deleted",
        event_id=event_id, container=where[0], name=where[1], event_time=when,
        sequencer=_text(data, "sequencer"), etag=etag, content_type=_text(data, "contentType"),
        content_length=length, url=_text(data, "url"), api=_text(data, "api"),
    )


async def handle_blob_event(
    event: Any, client: Any, *, container: str, storage_connection: str, sql_connection: str,
    retry_delays: tuple[float, ...],
) -> EventOutcome:
    """Start the created version (same dedupe as the blob trigger) or record the deletion.

    Raises on transient failures (storage, database, durable client) so Event Grid redelivers.
    """
    parsed = parse_blob_event(event, container)
    if isinstance(parsed, IgnoredEvent):
        log.warning("Event Grid event %s ignored: %s", parsed.event_id, parsed.reason)
        return EventOutcome("ignored", parsed.event_id, parsed.reason)
    if parsed.kind == "created":
        return await _created(parsed, client, storage_connection, sql_connection, retry_delays)
    return await _deleted(parsed, storage_connection, sql_connection)


async def _created(event: BlobEvent, client: Any, storage_connection: str, sql_connection: str,
                   retry_delays: tuple[float, ...]) -> EventOutcome:
    blob = event.blob_ref()
    if not blob.etag:
        # No eTag in the event: take the version from storage (one Get Blob Properties).
        current = await asyncio.to_thread(blob_version, storage_connection, event.container, event.name)
        if current is None:
            log.info("BlobCreated %s for %r: blob already gone; its deletion is recorded by its own event",
                     event.event_id, event.name)
            return EventOutcome("gone", event.event_id, "blob no longer exists")
        blob = BlobRef(**{**current.to_dict(), "sequencer": event.sequencer})
    # The row check keeps a redelivered event from re-running a version whose history was purged.
    result = await start_for_blob(client, blob, retry_delays, store=ThreadStore(sql_connection))
    action = "started" if result.started else "already covered"
    detail = "row is final" if result.covered_by == "row" else result.existing_status or ""
    return EventOutcome(action, event.event_id, detail, result.instance_id)


async def _deleted(event: BlobEvent, storage_connection: str, sql_connection: str) -> EventOutcome:
    current = await asyncio.to_thread(blob_version, storage_connection, event.container, event.name)
    if current is not None:
        # Deleted, then uploaded again: the newer version stands; its own event starts it.
        log.info("BlobDeleted %s for %r is older than the blob's current version %s: row kept",
                 event.event_id, event.name, current.etag)
        return EventOutcome("stale delete", event.event_id, f"blob exists as version {current.etag}")

    def mark() -> bool:
        return store_for(sql_connection).mark_deleted(
            event.container, event.name, deleted_at=event.event_time, sequencer=event.sequencer)

    applied = await asyncio.to_thread(mark)
    # The blob is gone (checked above): every version's previews go, whatever the row says.
    removed = await asyncio.to_thread(delete_previews, storage_connection, load_preview_settings().container,
                                      event.name)
    if removed:
        log.info("BlobDeleted %s: %d preview(s) of %r deleted", event.event_id, len(removed), event.name)
    if not applied:
        log.info("BlobDeleted %s for %r: row already deleted or holds a newer state; kept",
                 event.event_id, event.name)
        return EventOutcome("unchanged", event.event_id, "row already deleted or holds a newer state")
    log.info("BlobDeleted %s: %r marked deleted", event.event_id, event.name)
    return EventOutcome("deleted", event.event_id)
