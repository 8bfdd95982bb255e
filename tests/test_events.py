"""Blob Storage events (Event Grid schema) handled by shared.events on Azurite, SQLite and PostgreSQL.

Events are built by devhost.eventgrid to the published schema (MicrosoftDocs azure-docs,
articles/event-grid/event-schema-blob-storage.md); Event Grid delivers at least once and in
no guaranteed order, so duplicates and reordering are the cases that matter.
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from typing import Any

import pytest

from devhost.eventgrid import Sequencer, blob_created_event, blob_deleted_event
from devhost.samples import encode, picture
from devhost.services import free_port
from shared.blob_access import service_client, upload_bytes
from shared.errors import DatabaseUnavailableError, StorageUnavailableError
from shared.events import BlobEvent, IgnoredEvent, handle_blob_event, parse_blob_event
from shared.models import BlobRef
from shared.settings import INPUT_CONTAINER
from shared.starter import instance_id_for
from shared.store import SqlStore
from tests.durable import DELAYS, CountingClient, counting_client, pipeline_engine

PNG = encode(picture((16, 8)), "PNG")
PNG_WIDE = encode(picture((32, 8)), "PNG")
DOCS_SAMPLE = json.loads("""[{
  "topic": "/subscriptions/{subscription-id}/resourceGroups/Storage/providers/Microsoft.Storage/storageAccounts/my-storage-account",
  "subject": "/blobServices/default/containers/test-container/blobs/new-file.txt",
  "eventType": "Microsoft.Storage.BlobCreated",
  "eventTime": "2017-06-26T18:41:00.9584103Z",
  "id": "831e1650-001e-001b-66ab-eeb76e069631",
  "data": {
    "api": "PutBlockList",
    "clientRequestId": "6d79dbfb-0e37-4fc4-981f-442c9ca65760",
    "requestId": "831e1650-001e-001b-66ab-eeb76e000000",
    "eTag": "\\"0x8D4BCC2E4835CD0\\"",
    "contentType": "text/plain",
    "contentLength": 524288,
    "blobType": "BlockBlob",
    "url": "https://my-storage-account.blob.core.windows.net/testcontainer/new-file.txt",
    "sequencer": "00000000000004420000000000028963",
    "storageDiagnostics": {"batchId": "b68529f3-68cd-4744-baa4-3c0498ec19f0"}
  },
  "dataVersion": "",
  "metadataVersion": "1"
}]""")[0]


def test_docs_sample_parses_to_a_typed_created_event():
    """The BlobCreated sample of event-schema-blob-storage.md (Event Grid schema tab), verbatim."""
    parsed = parse_blob_event(DOCS_SAMPLE, "test-container")
    assert isinstance(parsed, BlobEvent)
    assert (parsed.kind, parsed.container, parsed.name) == ("created", "test-container", "new-file.txt")
    assert parsed.etag == "0x8D4BCC2E4835CD0"  # quotes removed
    assert (parsed.content_type, parsed.content_length) == ("text/plain", 524288)
    assert parsed.sequencer == "00000000000004420000000000028963"
    assert parsed.event_time.isoformat() == "2017-06-26T18:41:00.958410+00:00"
    ref = parsed.blob_ref()
    assert (ref.etag, ref.size, ref.sequencer) == ("0x8D4BCC2E4835CD0", 524288, parsed.sequencer)


def test_local_events_have_exactly_the_docs_sample_keys():
    seq = Sequencer()
    blob = BlobRef("images-input", "a/b c.png", "0x1", size=5, url="http://x/images-input/a/b c.png",
                   content_type="image/png")
    created = blob_created_event(blob, seq.next())
    deleted = blob_deleted_event(blob, seq.next())
    assert set(created) == set(DOCS_SAMPLE) and set(created["data"]) == set(DOCS_SAMPLE["data"])
    assert set(deleted["data"]) == {"api", "requestId", "contentType", "blobType", "url", "sequencer",
                                    "storageDiagnostics"}
    assert created["data"]["sequencer"] < deleted["data"]["sequencer"]
    parsed = parse_blob_event(deleted, "images-input")
    assert isinstance(parsed, BlobEvent) and (parsed.kind, parsed.name) == ("deleted", "a/b c.png")


def _broken(**changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(DOCS_SAMPLE)
    for key, value in changes.items():
        if key.startswith("data_"):
            event["data"][key[5:]] = value
        elif value is None:
            event.pop(key)
        else:
            event[key] = value
    return event


@pytest.mark.parametrize("event, reason", [
    (_broken(eventType="Microsoft.Storage.BlobTierChanged"), "not a blob creation or deletion"),
    (_broken(eventType="Microsoft.EventGrid.SubscriptionValidationEvent"), "not a blob creation"),
    (_broken(subject="/blobServices/default/containers/other/blobs/x.png"), "not 'test-container'"),
    (_broken(subject="/blobServices/default/containers/test-container"), "does not name a blob"),
    (_broken(subject=None), "does not name a blob"),
    (_broken(data="oops"), "no 'data' object"),
    (_broken(eventTime="yesterday"), "not an ISO 8601 time"),
    (_broken(data_contentLength="12"), "not a byte count"),
    (_broken(data_contentLength=-1), "not a byte count"),
    ("just a string", "not a JSON object"),
])
def test_unusable_events_are_ignored_with_a_reason(event, reason):
    parsed = parse_blob_event(event, "test-container")
    assert isinstance(parsed, IgnoredEvent) and reason in parsed.reason


# -- handling, on Azurite and a real database ------------------------------------------------------

def _upload(conn: str, name: str, data: bytes = PNG) -> BlobRef:
    return upload_bytes(conn, INPUT_CONTAINER, name, data, "image/png")


def _delete(conn: str, name: str) -> None:
    service_client(conn).get_blob_client(INPUT_CONTAINER, name).delete_blob()


class Scenario:
    """One test's pipeline: engine, client endpoint, event handler, sequencer."""

    def __init__(self, storage: str, sql: str, orchestrators: dict[str, Any]) -> None:
        self.storage, self.sql = storage, sql
        self.engine = pipeline_engine(orchestrators)
        self.seq = Sequencer()

    async def deliver(self, client: CountingClient, *events: dict[str, Any]) -> list[Any]:
        return [await handle_blob_event(e, client, container=INPUT_CONTAINER, storage_connection=self.storage,
                                        sql_connection=self.sql, retry_delays=DELAYS) for e in events]

    def run(self, script: Any) -> tuple[CountingClient, Any]:
        async def main() -> tuple[CountingClient, Any]:
            async with counting_client(self.engine) as client:
                return client, await script(client)

        return asyncio.run(main())

    def rows(self, name: str) -> list[dict[str, Any]]:
        return [r for r in SqlStore(self.sql).rows() if r["BlobName"] == name]


@pytest.fixture
def scenario(storage_env: str, any_db_cs: str, monkeypatch: pytest.MonkeyPatch, orchestrators) -> Scenario:
    monkeypatch.setenv("SqlConnectionString", any_db_cs)
    return Scenario(storage_env, any_db_cs, orchestrators)


def _name() -> str:
    return f"ev-{uuid.uuid4().hex[:8]}/photo.png"


def test_created_event_starts_the_version_once_despite_duplicates(scenario):
    name = _name()
    blob = _upload(scenario.storage, name)
    event = blob_created_event(blob, scenario.seq.next())

    async def script(client: CountingClient) -> list[Any]:
        first = await scenario.deliver(client, event, event)
        scenario.engine.run_until_idle()
        return first + await scenario.deliver(client, event)

    client, outcomes = scenario.run(script)
    assert [o.action for o in outcomes] == ["started", "already covered", "already covered"]
    assert client.starts == {instance_id_for(INPUT_CONTAINER, name, blob.etag): 1}
    [row] = scenario.rows(name)
    assert (row["Status"], row["ETag"], row["Width"], row["Sequencer"]) == (
        "processed", blob.etag, 16, event["data"]["sequencer"])


def test_out_of_order_creations_end_with_the_newest_version(scenario):
    """v1 then v2 uploaded; v2's event and run come first, v1's late run finds v1 overwritten."""
    name = _name()
    v1 = _upload(scenario.storage, name)
    e1 = blob_created_event(v1, scenario.seq.next())
    v2 = _upload(scenario.storage, name, PNG_WIDE)
    e2 = blob_created_event(v2, scenario.seq.next())

    async def script(client: CountingClient) -> list[Any]:
        out = await scenario.deliver(client, e2)
        scenario.engine.run_until_idle()
        out += await scenario.deliver(client, e1, e2)
        scenario.engine.run_until_idle()
        return out

    client, outcomes = scenario.run(script)
    assert [o.action for o in outcomes] == ["started", "started", "already covered"]
    assert sorted(client.starts.values()) == [1, 1]
    [row] = scenario.rows(name)
    assert (row["ETag"], row["Status"], row["Width"]) == (v2.etag, "processed", 32)


def test_deletion_marks_the_row_and_duplicates_change_nothing(scenario):
    name = _name()
    blob = _upload(scenario.storage, name)

    async def script(client: CountingClient) -> list[Any]:
        out = await scenario.deliver(client, blob_created_event(blob, scenario.seq.next()))
        scenario.engine.run_until_idle()
        _delete(scenario.storage, name)
        gone = blob_deleted_event(blob, scenario.seq.next())
        return out + await scenario.deliver(client, gone, gone)

    _, outcomes = scenario.run(script)
    assert [o.action for o in outcomes] == ["started", "deleted", "unchanged"]
    [row] = scenario.rows(name)
    assert (row["Status"], row["ETag"], row["Width"]) == ("deleted", blob.etag, 16)
    assert row["DeletedAt"] is not None


def test_delete_then_reupload_in_order_and_reordered(scenario):
    """upload v1, delete, upload v2: delivered in order (a), and with the delete last (b)."""
    results = {}
    for case in ("in order", "delete last"):
        name = _name()
        v1 = _upload(scenario.storage, name)
        c1 = blob_created_event(v1, scenario.seq.next())
        _delete(scenario.storage, name)
        d1 = blob_deleted_event(v1, scenario.seq.next())
        v2 = _upload(scenario.storage, name)
        c2 = blob_created_event(v2, scenario.seq.next())
        order = [c1, d1, c2] if case == "in order" else [c2, c1, d1]

        async def script(client: CountingClient, order=order) -> list[Any]:
            out = []
            for event in order:
                out += await scenario.deliver(client, event)
                scenario.engine.run_until_idle()
            return out

        _, outcomes = scenario.run(script)
        [row] = scenario.rows(name)
        results[case] = ([o.action for o in outcomes], row["Status"], row["ETag"] == v2.etag)
    # The delete finds v2 in storage: it is older than the current blob and leaves the row alone.
    assert results["in order"] == (["started", "stale delete", "started"], "processed", True)
    assert results["delete last"] == (["started", "started", "stale delete"], "processed", True)


def test_old_delete_after_the_new_upload_was_itself_deleted_is_ordered_by_sequencer(scenario):
    """v1 deleted (d1), v2 uploaded, indexed and deleted (d2); d2 arrives, then the old d1."""
    name = _name()
    v1 = _upload(scenario.storage, name)
    _delete(scenario.storage, name)
    d1 = blob_deleted_event(v1, scenario.seq.next())
    v2 = _upload(scenario.storage, name)
    c2 = blob_created_event(v2, scenario.seq.next())

    async def script(client: CountingClient) -> list[Any]:
        out = await scenario.deliver(client, c2)
        scenario.engine.run_until_idle()
        _delete(scenario.storage, name)
        d2 = blob_deleted_event(v2, scenario.seq.next())
        return out + await scenario.deliver(client, d2, d1)

    _, outcomes = scenario.run(script)
    assert [o.action for o in outcomes] == ["started", "deleted", "unchanged"]
    [row] = scenario.rows(name)
    assert (row["Status"], row["ETag"]) == ("deleted", v2.etag)


def test_delete_arriving_before_the_creation_leaves_a_tombstone_the_late_run_respects(scenario):
    name = _name()
    v1 = _upload(scenario.storage, name)
    c1 = blob_created_event(v1, scenario.seq.next())
    _delete(scenario.storage, name)
    d1 = blob_deleted_event(v1, scenario.seq.next())

    async def script(client: CountingClient) -> list[Any]:
        out = await scenario.deliver(client, d1, c1)
        scenario.engine.run_until_idle()  # the run finds the blob gone: its rejection must not win
        return out

    _, outcomes = scenario.run(script)
    assert [o.action for o in outcomes] == ["deleted", "started"]
    [row] = scenario.rows(name)
    assert row["Status"] == "deleted"


def test_created_event_without_etag_takes_the_version_from_storage(scenario):
    name = _name()
    blob = _upload(scenario.storage, name)
    event = blob_created_event(blob, scenario.seq.next())
    del event["data"]["eTag"]

    async def script(client: CountingClient) -> list[Any]:
        return await scenario.deliver(client, event)

    client, outcomes = scenario.run(script)
    assert outcomes[0].action == "started"
    assert client.starts == {instance_id_for(INPUT_CONTAINER, name, blob.etag): 1}


def test_ignored_events_start_nothing_and_raise_nothing(scenario):
    other = blob_created_event(BlobRef("other-container", "x.png", "0x1"), scenario.seq.next())

    async def script(client: CountingClient) -> list[Any]:
        return await scenario.deliver(client, other, {"eventType": "Microsoft.Storage.BlobCreated"})

    client, outcomes = scenario.run(script)
    assert [o.action for o in outcomes] == ["ignored", "ignored"]
    assert not client.starts and scenario.engine.query() == []


def test_storage_down_raises_so_event_grid_retries(scenario):
    port = free_port()
    down = (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
            f"{scenario.storage.split('AccountKey=')[1].split(';')[0]};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;")
    event = blob_deleted_event(BlobRef(INPUT_CONTAINER, _name(), "0x1"), scenario.seq.next())

    async def script(client: CountingClient) -> None:
        await handle_blob_event(event, client, container=INPUT_CONTAINER, storage_connection=down,
                                sql_connection=scenario.sql, retry_delays=DELAYS)

    with pytest.raises(StorageUnavailableError, match="cannot reach blob storage"):
        scenario.run(script)


def test_database_down_raises_so_event_grid_retries(storage_env, orchestrators):
    down = f"Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port={free_port()};Database=x;Uid=x;Pwd=x;"
    scenario = Scenario(storage_env, down, orchestrators)
    event = blob_deleted_event(BlobRef(INPUT_CONTAINER, _name(), "0x1"), scenario.seq.next())

    async def script(client: CountingClient) -> None:
        await scenario.deliver(client, event)

    with pytest.raises(DatabaseUnavailableError):
        scenario.run(script)
