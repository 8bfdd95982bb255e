"""Dead-lettered Event Grid events re-queued by shared.deadletter, on real Azurite and SQLite.

The blobs are written the way Event Grid writes them (Microsoft docs, manage-event-delivery.md:
``<SUBSCRIPTION IN UPPER CASE>/<YYYY>/<M>/<D>/<H>/<guid>.json``, not zero-padded, one or more
events in a JSON array; delivery-and-retry.md: each event is the original one plus
``deadLetterReason``, ``deliveryAttempts``, ``lastDeliveryOutcome``, ``publishTime``,
``lastDeliveryAttemptTime``), with events built to the Blob Storage event schema by devhost.eventgrid.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from devhost.eventgrid import Sequencer, blob_created_event, blob_deleted_event
from devhost.samples import encode, picture
from devhost.services import free_port
from shared.blob_access import ensure_container, service_client, upload_bytes
from shared.deadletter import (
    HANDLED,
    OUTCOME,
    UnreadableDeadLetter,
    parse_dead_letter_blob,
    requeue_dead_letters,
)
from shared.models import BlobRef
from shared.settings import INPUT_CONTAINER
from shared.starter import instance_id_for
from shared.store import SqlStore
from tests.durable import DELAYS, CountingClient, counting_client, pipeline_engine

PNG = encode(picture((16, 8)), "PNG")
SUBSCRIPTION = "IMAGES-INPUT-TO-EVENTGRIDSTARTER"  # azd_hooks.SUBSCRIPTION_NAME, upper-cased by Event Grid


def dead_lettered(event: dict[str, Any], reason: str = "MaxDeliveryAttemptsExceeded") -> dict[str, Any]:
    """The event as Event Grid dead-letters it (delivery-and-retry.md, Dead-letter events)."""
    return {**event, "deadLetterReason": reason, "deliveryAttempts": 30, "lastDeliveryOutcome": "Probation",
            "publishTime": "2026-12-01T06:00:01.2345678Z", "lastDeliveryAttemptTime": "2026-12-02T06:00:00.1Z",
            "lastHttpStatusCode": 503}


def blob_name(hour: int = 7) -> str:
    return f"{SUBSCRIPTION}/2026/12/2/{hour}/{uuid.uuid4()}.json"


class DeadLetters:
    def __init__(self, storage: str, sql: str, orchestrators: dict[str, Any]) -> None:
        self.storage, self.sql = storage, sql
        self.container = f"deadletter-{uuid.uuid4().hex[:8]}"
        ensure_container(storage, self.container)
        self.engine = pipeline_engine(orchestrators)
        self.seq = Sequencer()

    def write(self, events: list[dict[str, Any]] | bytes, name: str | None = None) -> str:
        name = name or blob_name()
        body = events if isinstance(events, bytes) else json.dumps(events).encode()
        service_client(self.storage).get_blob_client(self.container, name).upload_blob(body)
        return name

    def upload(self, name: str) -> BlobRef:
        return upload_bytes(self.storage, INPUT_CONTAINER, name, PNG, "image/png")

    def requeue(self, client: CountingClient, sql: str | None = None, **kwargs: Any) -> Any:
        return requeue_dead_letters(client, host_storage=self.storage, images_storage=self.storage,
                                    sql_connection=sql or self.sql, retry_delays=DELAYS,
                                    input_container=INPUT_CONTAINER, container=self.container, **kwargs)

    def run(self, script: Any) -> tuple[CountingClient, Any]:
        async def main() -> tuple[CountingClient, Any]:
            async with counting_client(self.engine) as client:
                result = await script(client)
                self.engine.run_until_idle()
                return client, result

        return asyncio.run(main())

    def metadata(self, name: str) -> dict[str, str]:
        return service_client(self.storage).get_blob_client(self.container, name).get_blob_properties().metadata

    def rows(self) -> dict[str, dict[str, Any]]:
        return {r["BlobName"]: r for r in SqlStore(self.sql).rows()}


@pytest.fixture
def dl(storage_env: str, sql_env: str, orchestrators) -> DeadLetters:
    SqlStore(sql_env).ensure_schema()
    return DeadLetters(storage_env, sql_env, orchestrators)


def _name() -> str:
    return f"dl-{uuid.uuid4().hex[:8]}/photo.png"


def test_dead_lettered_events_are_delivered_again_once(dl):
    a, b, gone = _name(), _name(), _name()
    blob_a, blob_b = dl.upload(a), dl.upload(b)
    dl.upload(gone)
    first = dl.write([dead_lettered(blob_created_event(blob_a, dl.seq.next()))])
    # One blob may hold several events (manage-event-delivery.md).
    second = dl.write([dead_lettered(blob_created_event(blob_b, dl.seq.next()), "TimeToLiveExceeded")],
                      name=blob_name(hour=13))

    client, report = dl.run(dl.requeue)
    assert (report.blobs_seen, report.blobs_handled, report.events_requeued) == (2, 2, 2)
    assert report.outcomes == {"started": 2}
    assert report.reasons == {"MaxDeliveryAttemptsExceeded": 1, "TimeToLiveExceeded": 1}
    assert client.starts == {instance_id_for(INPUT_CONTAINER, a, blob_a.etag): 1,
                             instance_id_for(INPUT_CONTAINER, b, blob_b.etag): 1}
    rows = dl.rows()
    assert (rows[a]["Status"], rows[a]["ETag"]) == ("processed", blob_a.etag)
    assert (rows[b]["Status"], rows[b]["ETag"]) == ("processed", blob_b.etag)
    for name in (first, second):
        marks = dl.metadata(name)
        assert marks[HANDLED] and marks[OUTCOME] == "1 started"

    # A second pass re-queues nothing: the blobs are marked (and the event path would dedupe anyway).
    client, again = dl.run(dl.requeue)
    assert (again.blobs_seen, again.blobs_already_handled, again.events_requeued) == (2, 2, 0)
    assert not client.starts
    assert report.to_dict()["eventsRequeued"] == 2 and again.to_dict()["continuation"] is None


def test_a_dead_lettered_deletion_marks_the_row_deleted(dl):
    name = _name()
    blob = dl.upload(name)
    dl.run(lambda client: _start(dl, client, blob))
    service_client(dl.storage).get_blob_client(INPUT_CONTAINER, name).delete_blob()
    dl.write([dead_lettered(blob_deleted_event(blob, dl.seq.next()))])

    _, report = dl.run(dl.requeue)
    assert report.outcomes == {"deleted": 1}
    assert dl.rows()[name]["Status"] == "deleted"


async def _start(dl: DeadLetters, client: CountingClient, blob: BlobRef) -> None:
    from shared.events import handle_blob_event

    await handle_blob_event(blob_created_event(blob, dl.seq.next()), client, container=INPUT_CONTAINER,
                            storage_connection=dl.storage, sql_connection=dl.sql, retry_delays=DELAYS)


def test_a_blob_whose_handling_fails_is_left_for_the_next_run(dl):
    name = _name()
    blob = dl.upload(name)
    dl.run(lambda client: _start(dl, client, blob))
    service_client(dl.storage).get_blob_client(INPUT_CONTAINER, name).delete_blob()
    letter = dl.write([dead_lettered(blob_deleted_event(blob, dl.seq.next()))])
    down = f"Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port={free_port()};Database=x;Uid=x;Pwd=x;"

    _, failed = dl.run(lambda client: dl.requeue(client, sql=down))
    assert (failed.blobs_failed, failed.blobs_handled) == (1, 0)
    assert failed.problems[0].startswith(letter) and "DatabaseUnavailableError" in failed.problems[0]
    assert HANDLED not in dl.metadata(letter)
    assert dl.rows()[name]["Status"] == "processed"

    _, later = dl.run(dl.requeue)
    assert (later.blobs_handled, later.outcomes) == (1, {"deleted": 1})
    assert dl.rows()[name]["Status"] == "deleted"


@pytest.mark.parametrize("name, body, reason", [
    ("not-the-layout.json", b"[]", "Event Grid's dead-letter layout"),
    (None, b"{not json", "not JSON"),
    (None, b'{"id": "x", "data": {}}', "JSON array"),
    (None, b"[]", "non-empty JSON array"),
    (None, b'[{"id": "x"}]', "item 0 is not an event object"),
])
def test_blobs_not_in_event_grids_format_are_reported_kept_and_never_requeued(dl, name, body, reason):
    letter = dl.write(body, name=name)
    client, report = dl.run(dl.requeue)
    assert (report.blobs_unreadable, report.events_requeued) == (1, 0) and not client.starts
    assert report.problems[0].startswith(letter) and reason in report.problems[0]
    assert dl.metadata(letter)[OUTCOME].startswith("unreadable")
    with pytest.raises(UnreadableDeadLetter, match=reason.split("'")[0]):
        parse_dead_letter_blob(letter, body)
    _, again = dl.run(dl.requeue)
    assert (again.blobs_already_handled, again.blobs_unreadable) == (1, 0)


def test_parse_strips_what_event_grid_added_and_keeps_why(dl):
    event = blob_created_event(BlobRef(INPUT_CONTAINER, "x.png", "0x1", size=3, url="u", content_type="image/png"),
                               Sequencer().next())
    [parsed] = parse_dead_letter_blob(blob_name(), json.dumps([dead_lettered(event)]).encode())
    assert parsed.event == event
    assert (parsed.reason, parsed.delivery_attempts, parsed.last_outcome) == (
        "MaxDeliveryAttemptsExceeded", 30, "Probation")


def test_a_large_backlog_is_worked_through_page_by_page(dl):
    names = [_name() for _ in range(3)]
    for name in names:
        dl.write([dead_lettered(blob_created_event(dl.upload(name), dl.seq.next()))])

    async def all_pages(client: CountingClient) -> list[Any]:
        reports, token = [], None
        while True:
            report = await dl.requeue(client, max_blobs=1, continuation=token)
            reports.append(report)
            token = report.continuation
            if token is None:
                return reports

    client, reports = dl.run(all_pages)
    assert all(r.blobs_seen <= 1 for r in reports)
    assert sum(r.blobs_handled for r in reports) == 3 and len(client.starts) == 3
    assert all(dl.rows()[n]["Status"] == "processed" for n in names)


def test_no_dead_letter_container_means_nothing_was_dead_lettered(dl):
    dl.container = f"missing-{uuid.uuid4().hex[:8]}"
    client, report = dl.run(dl.requeue)
    assert report.blobs_seen == 0 and report.continuation is None and not client.starts


def test_the_reconciliation_pass_requeues_dead_letters_and_counts_them(dl):
    """The pass's first phase (shared.reconcile_pages, phase "deadletter") re-queues one page per
    step from the container the app setting names, and its totals say how many events went back."""
    from shared.reconcile_flow import PassSettings, advance, begin, reconcile_input, step_request
    from shared.reconcile_pages import Connections, run_step

    names = [_name() for _ in range(3)]
    for name in names:
        dl.write([dead_lettered(blob_created_event(dl.upload(name), dl.seq.next()))])
    conn = Connections(images=dl.storage, host=dl.storage, sql=dl.sql, container=INPUT_CONTAINER,
                       retry_delays=DELAYS, dead_letter_container=dl.container)

    async def deadletter_phase(client: CountingClient) -> dict[str, Any]:
        state = begin(reconcile_input(PassSettings()), datetime(2026, 1, 1, tzinfo=UTC))
        while state["phase"] == "deadletter":
            request = {**step_request(state), "cursor": state["cursor"]}
            state = advance(state, await run_step(client, request, conn), datetime.now(UTC), datetime.now(UTC))
        return state["totals"]

    client, totals = dl.run(deadletter_phase)
    assert (totals["deadLetterBlobs"], totals["deadLetterEventsRequeued"]) == (3, 3)
    assert len(client.starts) == 3
    # Negative control: pointed at another (empty) container it re-queues nothing.
    conn = Connections(images=dl.storage, host=dl.storage, sql=dl.sql, container=INPUT_CONTAINER,
                       retry_delays=DELAYS, dead_letter_container="no-such-deadletter")
    client, totals = dl.run(deadletter_phase)
    assert totals["deadLetterEventsRequeued"] == 0 and not client.starts
