"""Event Grid for the local host: Blob Storage events, exact to the published schema.

Azurite has no Event Grid, so the host builds the events itself from what it sees in the
container. The shape is the "Event Grid event schema" tab of MicrosoftDocs azure-docs,
articles/event-grid/event-schema-blob-storage.md (BlobCreated and BlobDeleted samples):
top level ``topic``, ``subject``, ``eventType``, ``eventTime``, ``id``, ``data``,
``dataVersion`` ("") and ``metadataVersion`` ("1"); ``data`` of a creation: ``api``,
``clientRequestId``, ``requestId``, ``eTag`` (quoted, as in the sample), ``contentType``,
``contentLength``, ``blobType``, ``url``, ``sequencer``, ``storageDiagnostics``; of a deletion
the same without ``clientRequestId``, ``eTag`` and ``contentLength``, ``api`` "DeleteBlob".
The sequencer is 32 upper-case hex digits like the samples' and grows with every event the
host makes, so string comparison orders the events of one blob as Azure's does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import sqlite3
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from shared.models import BlobRef

log = logging.getLogger("devhost.eventgrid")

LOCAL_TOPIC = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/"
               "Microsoft.Storage/storageAccounts/devstoreaccount1")


class Sequencer:
    """Monotonic sequencer strings for one host (thread-safe)."""

    def __init__(self, start: int = 0) -> None:
        self.last = start
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            self.last += 1
            return f"{self.last:032X}"


def _time(moment: datetime | None) -> str:
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"  # seven fraction digits, as the samples


def _blob_event(event_type: str, blob: BlobRef, sequencer: str, when: datetime | None, topic: str,
                data: dict[str, Any]) -> dict[str, Any]:
    """The Event Grid envelope and the data fields both Blob Storage events carry."""
    request = str(uuid.uuid4())
    return {
        "topic": topic,
        "subject": f"/blobServices/default/containers/{blob.container}/blobs/{blob.name}",
        "eventType": event_type,
        "eventTime": _time(when),
        "id": request,
        "data": {
            **data,
            "requestId": request,
            **({"eTag": f'"{blob.etag}"'} if event_type.endswith("BlobCreated") else {}),
            "contentType": blob.content_type or "application/octet-stream",
            **({"contentLength": blob.size or 0} if event_type.endswith("BlobCreated") else {}),
            "blobType": "BlockBlob",
            "url": blob.url,
            "sequencer": sequencer,
            "storageDiagnostics": {"batchId": str(uuid.uuid4())},
        },
        "dataVersion": "",
        "metadataVersion": "1",
    }


def blob_created_event(blob: BlobRef, sequencer: str, *, when: datetime | None = None,
                       api: str = "PutBlob", topic: str = LOCAL_TOPIC) -> dict[str, Any]:
    """A Microsoft.Storage.BlobCreated event for this blob version."""
    return _blob_event("Microsoft.Storage.BlobCreated", blob, sequencer, when, topic,
                       {"api": api, "clientRequestId": str(uuid.uuid4())})


def blob_deleted_event(blob: BlobRef, sequencer: str, *, when: datetime | None = None,
                       topic: str = LOCAL_TOPIC) -> dict[str, Any]:
    """A Microsoft.Storage.BlobDeleted event for the blob (the last version the host saw)."""
    return _blob_event("Microsoft.Storage.BlobDeleted", blob, sequencer, when, topic, {"api": "DeleteBlob"})


# -- watching the container (Azurite has no Event Grid) --------------------------------------------

_SNAPSHOT = """
CREATE TABLE IF NOT EXISTS eventgrid_snapshot (
    container TEXT NOT NULL, name TEXT NOT NULL, etag TEXT NOT NULL, size INTEGER, content_type TEXT,
    url TEXT, PRIMARY KEY (container, name)
)
"""
_SEQUENCE = "CREATE TABLE IF NOT EXISTS eventgrid_sequence (last INTEGER NOT NULL)"


class ContainerDiff:
    """Blob events from successive listings of one container, like Blob Storage's event source.

    The first listing is the baseline: Event Grid sends nothing for blobs that existed before
    the subscription (reconciliation is what covers those). The last listing and the sequencer
    are kept in the host's SQLite state, so changes made while the host was down become events
    after a restart, as Event Grid holds events for a subscriber that is away.
    """

    def __init__(self, db: sqlite3.Connection, container: str) -> None:
        self.db, self.container = db, container
        db.execute(_SNAPSHOT)
        db.execute(_SEQUENCE)
        row = db.execute("SELECT last FROM eventgrid_sequence").fetchone()
        # The sequence row is written with the first listing: its presence means the baseline exists.
        self.baseline_taken = row is not None
        self.sequencer = Sequencer(row[0] if row else 0)
        self.known = {r[0]: BlobRef(container, r[0], r[1], size=r[2], content_type=r[3], url=r[4])
                      for r in db.execute("SELECT name, etag, size, content_type, url FROM eventgrid_snapshot "
                                          "WHERE container = ?", (container,))}

    def events(self, listing: list[BlobRef]) -> list[dict[str, Any]]:
        """The events that turn the last listing into this one (recorded before they are returned)."""
        now = {ref.name: ref for ref in listing}
        out: list[dict[str, Any]] = []
        if self.baseline_taken:
            for name, ref in now.items():
                old = self.known.get(name)
                if old is None or old.etag != ref.etag:
                    out.append(blob_created_event(ref, self.sequencer.next()))
            for name, old in self.known.items():
                if name not in now:
                    out.append(blob_deleted_event(old, self.sequencer.next()))
        if self.baseline_taken and not out:
            return out  # nothing changed: nothing to record
        with self.db:
            self.db.execute("DELETE FROM eventgrid_snapshot WHERE container = ?", (self.container,))
            self.db.executemany("INSERT INTO eventgrid_snapshot VALUES (?, ?, ?, ?, ?, ?)",
                                [(self.container, r.name, r.etag, r.size, r.content_type, r.url)
                                 for r in listing])
            self.db.execute("DELETE FROM eventgrid_sequence")
            self.db.execute("INSERT INTO eventgrid_sequence VALUES (?)", (self.sequencer.last,))
        self.known = now
        self.baseline_taken = True
        return out


# -- delivering them, the way Event Grid does ------------------------------------------------------

@dataclass(frozen=True)
class DeliveryPolicy:
    """At least once, in no guaranteed order: some events twice, some held back behind later ones.

    Event Grid retries a failed delivery with backoff for up to 24 hours, then drops or
    dead-letters the event (MicrosoftDocs azure-docs, articles/event-grid/delivery-and-retry.md);
    here the retries are seconds apart and end after ``max_attempts``, logged as dead-lettered.
    """

    duplicate_rate: float = 0.1
    reorder_rate: float = 0.2
    seed: int = 0
    max_attempts: int = 10
    retry_delay: float = 0.5


class EventGridEmulator:
    """Queues events and hands them to ``deliver`` at least once, sometimes twice, out of order."""

    def __init__(self, deliver: Callable[[dict[str, Any]], Awaitable[None]], policy: DeliveryPolicy) -> None:
        self._deliver = deliver
        self.policy = policy
        self._rng = random.Random(policy.seed)
        self._held: list[dict[str, Any]] = []
        self.delivered = 0
        self.duplicated = 0
        self.reordered = 0
        self.dead_lettered: list[tuple[dict[str, Any], str]] = []

    def schedule(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """This batch's delivery order: held-back events go after newer ones, some go twice."""
        batch = [*events]
        released, self._held = self._held, []
        order: list[dict[str, Any]] = []
        for event in batch:
            if self._rng.random() < self.policy.reorder_rate:
                self._held.append(event)  # delivered after the next batch's events
                self.reordered += 1
                continue
            order.append(event)
            if self._rng.random() < self.policy.duplicate_rate:
                order.append(event)
                self.duplicated += 1
        self._rng.shuffle(order)
        return order + released

    def flush(self) -> list[dict[str, Any]]:
        """Everything still held back (when no newer batch comes)."""
        released, self._held = self._held, []
        return released

    async def send(self, events: list[dict[str, Any]]) -> None:
        """Deliver concurrently (at most 32 at a time, like the host's blob trigger fan-out)."""
        limit = asyncio.Semaphore(32)

        async def one(event: dict[str, Any]) -> None:
            async with limit:
                await self._send_one(event)

        await asyncio.gather(*(one(e) for e in events))

    async def _send_one(self, event: dict[str, Any]) -> None:
        reason = ""
        for attempt in range(1, self.policy.max_attempts + 1):
            try:
                await self._deliver(event)
                self.delivered += 1
                return
            except Exception as exc:  # noqa: BLE001 - the subscriber failed: Event Grid retries
                reason = str(exc)
                log.warning("Event Grid delivery of %s failed (attempt %d): %s", event.get("id"), attempt, reason)
                await asyncio.sleep(self.policy.retry_delay * attempt)
        log.error("Event Grid gave up on event %s after %d attempts (dead-lettered): %s",
                  event.get("id"), self.policy.max_attempts, reason)
        self.dead_lettered.append((event, reason))


# -- the extension's webhook, /runtime/webhooks/eventgrid ---------------------------------------

def webhook_handler(invoke: Callable[[str, dict[str, Any]], Awaitable[None]], functions: Callable[[], set[str]]
                    ) -> Callable[[web.Request], Awaitable[web.Response]]:
    """POST /runtime/webhooks/eventgrid?functionName=<Fn>, as the Event Grid extension answers it
    (Azure/azure-sdk-for-net, Microsoft.Azure.WebJobs.Extensions.EventGrid: HttpRequestProcessor.cs
    and EventGridExtensionConfigProvider.cs): unknown function 404 "cannot find function";
    header ``aeg-event-type: SubscriptionValidation`` answers ``{"validationResponse": code}``;
    ``Notification`` takes an array (or one object), invokes the function once per event, all at
    once, and answers 202, or 500 with the message when any invocation failed (Event Grid then
    sends the whole payload again); ``Unsubscribe`` 202; any other header 400."""

    async def handle(request: web.Request) -> web.Response:
        name = request.query.get("functionName", "")
        if name not in functions():
            return web.Response(status=404, text=f"cannot find function: '{name}'")
        kind = request.headers.get("aeg-event-type", "").lower()
        try:
            body = json.loads(await request.text())
        except ValueError as exc:
            return web.Response(status=400, text=f"the request content is not JSON: {exc}")
        if kind == "subscriptionvalidation":
            first = body[0] if isinstance(body, list) and body else body
            code = (first.get("data") or {}).get("validationCode") if isinstance(first, dict) else None
            return web.json_response({"validationResponse": code})
        if kind == "unsubscribe":
            return web.Response(status=202)
        if kind != "notification":
            return web.Response(status=400)
        if isinstance(body, dict):
            body = [body]
        if not isinstance(body, list):
            return web.Response(status=400, text="the request content should be a JSON object or array")
        results = await asyncio.gather(*(invoke(name, e) for e in body), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            return web.Response(status=500, text=str(failed[0]))
        return web.Response(status=202)

    return handle
