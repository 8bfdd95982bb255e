"""Events Event Grid gave up on: read them from the dead-letter container and deliver them again.

Where and how Event Grid writes them (Microsoft docs):

* "Set dead-letter location and retry policy" (articles/event-grid/manage-event-delivery.md):
  blobs in the subscription's dead-letter container named
  ``<SUBSCRIPTION NAME IN UPPER CASE>/<YYYY>/<M>/<D>/<H>/<guid>.json`` (date and hour in UTC, not
  zero-padded), each holding one or more events in a JSON array.
* "Event Grid message delivery and retry" (articles/event-grid/delivery-and-retry.md, Dead-letter
  events): each dead-lettered event is the original event (Event Grid schema here: ``id``,
  ``topic``, ``subject``, ``eventType``, ``eventTime``, ``data``, ``dataVersion``,
  ``metadataVersion``) with ``deadLetterReason`` (e.g. ``MaxDeliveryAttemptsExceeded``,
  ``TimeToLiveExceeded``, ``UndeliverableDueToClientError``), ``deliveryAttempts``,
  ``lastDeliveryOutcome``, ``publishTime``, ``lastDeliveryAttemptTime`` and, for HTTP endpoints,
  ``lastHttpStatusCode`` added.

Each event goes back through ``shared.events.handle_blob_event``, the path a delivered event
takes, so the same rules apply (a version already started or indexed starts nothing; an old
deletion never hides a newer upload). A blob whose events were all handled gets the metadata
``deadletterhandled`` (when) and ``deadletteroutcome`` and is skipped from then on; it is kept,
not deleted, so what was dead-lettered stays visible (a lifecycle rule can expire it). A blob whose
handling raised (storage or database down) is left unmarked and is tried again next time; its
events that did get through are then delivered twice, which the event path absorbs. A blob not in
the documented format is marked ``unreadable`` with the reason and reported, never re-queued.

Two runs at the same moment may both re-queue a blob: harmless for the same reason.
Each call handles at most ``max_blobs`` blobs and returns a continuation, so a large backlog is
worked through in short steps (reconciliation calls it page by page).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

from shared.blob_access import service_client, storage_call
from shared.events import handle_blob_event
from shared.settings import StorageTarget

log = logging.getLogger(__name__)

DEAD_LETTER_CONTAINER = "eventgrid-deadletter"
HANDLED = "deadletterhandled"
OUTCOME = "deadletteroutcome"
# <SUBSCRIPTION>/<YYYY>/<M>/<D>/<H>/<guid>.json
_BLOB_NAME = re.compile(
    r"(?P<subscription>[^/]+)/(?P<year>\d{4})/(?P<month>\d{1,2})/(?P<day>\d{1,2})/(?P<hour>\d{1,2})/"
    r"(?P<guid>[0-9A-Fa-f-]{36})\.json")
# What Event Grid adds to each event it dead-letters (delivery-and-retry.md).
DEAD_LETTER_FIELDS = ("deadLetterReason", "deliveryAttempts", "lastDeliveryOutcome", "publishTime",
                      "lastDeliveryAttemptTime", "lastHttpStatusCode")


@dataclass(frozen=True)
class DeadLetteredEvent:
    """One event from a dead-letter blob: the original event and why Event Grid gave up on it."""

    blob: str
    event: dict[str, Any]
    reason: str | None
    delivery_attempts: int | None
    last_outcome: str | None


@dataclass
class DeadLetterReport:
    """What one call saw and did (plain data: ``to_dict`` crosses function boundaries)."""

    blobs_seen: int = 0
    blobs_handled: int = 0          # every event re-queued; marked
    blobs_already_handled: int = 0  # marked by an earlier run; skipped
    blobs_unreadable: int = 0       # not in Event Grid's format; marked, never re-queued
    blobs_failed: int = 0           # handling raised (transient); left for the next run
    events_requeued: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)   # shared.events actions
    reasons: Counter[str] = field(default_factory=Counter)    # deadLetterReason
    problems: list[str] = field(default_factory=list)         # blob: what is wrong (unreadable, failed)
    continuation: str | None = None                           # pass back for the next page

    def to_dict(self) -> dict[str, Any]:
        return {"blobsSeen": self.blobs_seen, "blobsHandled": self.blobs_handled,
                "blobsAlreadyHandled": self.blobs_already_handled, "blobsUnreadable": self.blobs_unreadable,
                "blobsFailed": self.blobs_failed, "eventsRequeued": self.events_requeued,
                "outcomes": dict(self.outcomes), "reasons": dict(self.reasons), "problems": list(self.problems),
                "continuation": self.continuation}


class UnreadableDeadLetter(ValueError):
    """A blob in the dead-letter container that is not in Event Grid's documented format."""


def parse_dead_letter_blob(name: str, body: bytes) -> list[DeadLetteredEvent]:
    """The events of one dead-letter blob, or UnreadableDeadLetter saying what is wrong."""
    if not _BLOB_NAME.fullmatch(name):
        raise UnreadableDeadLetter(
            "name is not <SUBSCRIPTION>/<YYYY>/<M>/<D>/<H>/<guid>.json, Event Grid's dead-letter layout")
    try:
        events = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise UnreadableDeadLetter(f"content is not JSON ({exc})") from None
    if not isinstance(events, list) or not events:
        raise UnreadableDeadLetter("content is not a non-empty JSON array of events")
    parsed = []
    for i, event in enumerate(events):
        if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
            raise UnreadableDeadLetter(f"item {i} is not an event object with 'data'")
        attempts = event.get("deliveryAttempts")
        parsed.append(DeadLetteredEvent(
            blob=name, event={k: v for k, v in event.items() if k not in DEAD_LETTER_FIELDS},
            reason=event.get("deadLetterReason") if isinstance(event.get("deadLetterReason"), str) else None,
            delivery_attempts=attempts if isinstance(attempts, int) and not isinstance(attempts, bool) else None,
            last_outcome=event.get("lastDeliveryOutcome") if isinstance(event.get("lastDeliveryOutcome"), str)
            else None))
    return parsed


def _page(host_storage: StorageTarget, container: str, max_blobs: int, continuation: str | None
          ) -> tuple[list[Any], str | None] | None:
    """One listing page with metadata, or None when the container does not exist."""
    client = service_client(host_storage).get_container_client(container)

    def call() -> tuple[list[Any], str | None]:
        pages = client.list_blobs(include=["metadata"], results_per_page=max_blobs).by_page(
            continuation_token=continuation)
        page = list(next(pages))
        return page, pages.continuation_token

    try:
        return storage_call(host_storage, f"list the dead-letter container {container!r}", call)
    except ResourceNotFoundError:
        return None


def _download(host_storage: StorageTarget, container: str, name: str) -> tuple[bytes, str]:
    blob = service_client(host_storage).get_blob_client(container, name)

    def call() -> tuple[bytes, str]:
        downloader = blob.download_blob()
        return downloader.readall(), downloader.properties.etag

    return storage_call(host_storage, f"read dead-letter blob {name!r}", call)


def _mark(host_storage: StorageTarget, container: str, name: str, etag: str, outcome: str,
          existing: dict[str, str]) -> None:
    """Record on the blob itself that it was handled (metadata, conditional on the version read)."""
    blob = service_client(host_storage).get_blob_client(container, name)
    metadata = {**existing, HANDLED: datetime.now(UTC).isoformat(timespec="seconds"), OUTCOME: outcome[:200]}

    def call() -> None:
        blob.set_blob_metadata(metadata, etag=etag, match_condition=MatchConditions.IfNotModified)

    try:
        storage_call(host_storage, f"mark dead-letter blob {name!r} handled", call)
    except (ResourceModifiedError, ResourceNotFoundError):
        log.info("dead-letter blob %r changed or vanished while handled; not marked", name)


def _ascii(text: str) -> str:
    """Blob metadata values are sent as HTTP headers: ASCII only."""
    return text.encode("ascii", "replace").decode("ascii")


async def requeue_dead_letters(
    client: Any, *, host_storage: StorageTarget, images_storage: StorageTarget, sql_connection: str,
    retry_delays: tuple[float, ...], input_container: str, container: str = DEAD_LETTER_CONTAINER,
    max_blobs: int = 100, continuation: str | None = None,
) -> DeadLetterReport:
    """Deliver every not yet handled dead-lettered event again through ``shared.events``.

    ``client`` is the durable client the event path starts orchestrations with; ``host_storage``
    holds the dead-letter container, ``images_storage`` the images. At most ``max_blobs`` blobs
    are looked at; ``report.continuation`` (None at the end) continues the listing.
    """
    report = DeadLetterReport()
    page = await asyncio.to_thread(_page, host_storage, container, max_blobs, continuation)
    if page is None:
        log.info("dead-letter container %r does not exist yet: nothing was dead-lettered", container)
        return report
    items, report.continuation = page
    for item in items:
        report.blobs_seen += 1
        metadata = dict(item.metadata or {})
        if HANDLED in metadata:
            report.blobs_already_handled += 1
            continue
        body, etag = await asyncio.to_thread(_download, host_storage, container, item.name)
        try:
            events = parse_dead_letter_blob(item.name, body)
        except UnreadableDeadLetter as exc:
            report.blobs_unreadable += 1
            report.problems.append(f"{item.name}: {exc}")
            log.warning("dead-letter blob %r is not in Event Grid's format and is kept as is: %s", item.name, exc)
            await asyncio.to_thread(_mark, host_storage, container, item.name, etag,
                                    _ascii(f"unreadable: {exc}"), metadata)
            continue
        actions: Counter[str] = Counter()
        try:
            for dead in events:
                outcome = await handle_blob_event(
                    dead.event, client, container=input_container, storage_connection=images_storage,
                    sql_connection=sql_connection, retry_delays=retry_delays)
                actions[outcome.action] += 1
                report.reasons[dead.reason or "unknown"] += 1
        except Exception as exc:  # noqa: BLE001 - transient (storage/database/durable client): next run
            report.blobs_failed += 1
            report.problems.append(f"{item.name}: {type(exc).__name__}: {exc}")
            log.warning("dead-letter blob %r not re-queued (will be tried again): %s", item.name, exc)
            continue
        report.blobs_handled += 1
        report.events_requeued += sum(actions.values())
        report.outcomes.update(actions)
        summary = ", ".join(f"{n} {a}" for a, n in sorted(actions.items()))
        log.info("dead-letter blob %r re-queued: %s", item.name, summary)
        await asyncio.to_thread(_mark, host_storage, container, item.name, etag, _ascii(summary), metadata)
    return report

