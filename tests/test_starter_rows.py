"""start_for_blob's two checks (the row, then the instance) and the restart flag, on SQLite and
PostgreSQL through the real store, with the real SDK client talking HTTP to the local host.

The row check is what still stops a duplicate once the instance's history is purged; each case
that it must NOT stop is here too, and so is the database being down (the instance check decides).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest

from devhost.services import free_port
from shared.blob_access import upload_bytes
from shared.models import EXTRACTOR_VERSION, ImageMetadata, ImageRecord
from shared.settings import INPUT_CONTAINER
from shared.starter import ThreadStore, instance_id_for, start_for_blob
from shared.store import store_for
from tests.durable import DELAYS, CountingClient, counting_client, pipeline_engine


def _blob(storage: str) -> Any:
    return upload_bytes(storage, INPUT_CONTAINER, f"rows-{uuid.uuid4().hex[:8]}.jpg", b"\xff\xd8 x", "image/jpeg")


def _row(cs: str, blob: Any, status: str, version: int = EXTRACTOR_VERSION, etag: str | None = None) -> None:
    ref = blob if etag is None else type(blob)(**{**blob.to_dict(), "etag": etag})
    store_for(cs).upsert(ImageRecord.for_blob(ref, status, metadata=ImageMetadata(extractor_version=version)))


class World:
    def __init__(self, storage: str, cs: str, orchestrators: dict[str, Any]) -> None:
        self.storage, self.cs = storage, cs
        self.engine = pipeline_engine(orchestrators)

    def start(self, blob: Any, **kwargs: Any) -> tuple[CountingClient, Any]:
        async def main() -> tuple[CountingClient, Any]:
            async with counting_client(self.engine) as client:
                return client, await start_for_blob(client, blob, DELAYS, **kwargs)

        return asyncio.run(main())


@pytest.fixture
def world(storage_env: str, any_db_cs: str, monkeypatch: pytest.MonkeyPatch, orchestrators) -> World:
    monkeypatch.setenv("SqlConnectionString", any_db_cs)
    return World(storage_env, any_db_cs, orchestrators)


def test_a_final_row_of_this_version_starts_nothing_even_without_an_instance(world):
    for status in ("processed", "rejected"):
        blob = _blob(world.storage)
        _row(world.cs, blob, status)
        client, result = world.start(blob, store=ThreadStore(world.cs))
        assert (result.started, result.covered_by) == (False, "row")
        assert client.starts == {}
        assert world.engine.status(instance_id_for(INPUT_CONTAINER, blob.name, blob.etag)) is None
        # negative control: without the store the same delivery starts a run (the purged case)
        client, result = world.start(blob)
        assert result.started and client.starts == {instance_id_for(INPUT_CONTAINER, blob.name, blob.etag): 1}


@pytest.mark.parametrize("case", ["older extractor", "failed row", "deleted row", "other version", "no row"])
def test_rows_that_do_not_cover_the_version_let_it_start(world, case):
    blob = _blob(world.storage)
    if case == "older extractor":
        _row(world.cs, blob, "processed", version=EXTRACTOR_VERSION - 1)
    elif case == "failed row":
        _row(world.cs, blob, "failed")
    elif case == "deleted row":
        _row(world.cs, blob, "processed")
        store_for(world.cs).mark_deleted(INPUT_CONTAINER, blob.name, deleted_at=_later(blob), etag=blob.etag)
        assert store_for(world.cs).rows(" WHERE BlobName = ?", (blob.name,))[0]["Status"] == "deleted"
    elif case == "other version":
        _row(world.cs, blob, "processed", etag="0xOTHER")
    client, result = world.start(blob, store=ThreadStore(world.cs))
    assert result.started and result.covered_by == ""
    assert client.starts == {instance_id_for(INPUT_CONTAINER, blob.name, blob.etag): 1}


def _later(blob: Any) -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.fromisoformat(blob.last_modified).astimezone(UTC) + timedelta(seconds=1)


def test_a_row_from_a_newer_extractor_also_covers_the_version(world):
    blob = _blob(world.storage)
    _row(world.cs, blob, "processed", version=EXTRACTOR_VERSION + 1)
    _, result = world.start(blob, store=ThreadStore(world.cs))
    assert (result.started, result.covered_by) == (False, "row")


def test_restart_completed_reruns_a_finished_version_but_never_an_active_one(world):
    blob = _blob(world.storage)
    iid = instance_id_for(INPUT_CONTAINER, blob.name, blob.etag)
    _, first = world.start(blob, store=ThreadStore(world.cs))
    assert first.started
    # Pending: neither a delivery nor a repair starts it again
    for kwargs in ({}, {"restart_completed": True}):
        _, again = world.start(blob, store=ThreadStore(world.cs), **kwargs)
        assert (again.started, again.existing_status, again.covered_by) == (False, "Pending", "instance")
    world.engine.run_until_idle()
    assert world.engine.status(iid)["runtimeStatus"] == "Completed"
    [row] = store_for(world.cs).rows(" WHERE BlobName = ?", (blob.name,))
    assert row["ExtractorVersion"] == EXTRACTOR_VERSION
    created = world.engine.status(iid)["createdTime"]
    # a plain duplicate is stopped by the row (and would be by the Completed instance)
    _, dup = world.start(blob, store=ThreadStore(world.cs))
    assert (dup.started, dup.covered_by) == (False, "row")
    _, dup = world.start(blob)
    assert (dup.started, dup.existing_status) == (False, "Completed")
    # a repair skips the row check and replaces the Completed instance
    for status in ("Completed", "Failed", "Terminated"):
        world.engine.db.execute("UPDATE instances SET status = ? WHERE instance_id = ?", (status, iid))
        client, repair = world.start(blob, store=ThreadStore(world.cs), restart_completed=True)
        assert repair.started and repair.existing_status == status and client.starts == {iid: 1}
        assert world.engine.status(iid)["runtimeStatus"] == "Pending"
        assert world.engine.status(iid)["createdTime"] >= created
    for status in ("Running", "Suspended", "ContinuedAsNew"):
        world.engine.db.execute("UPDATE instances SET status = ? WHERE instance_id = ?", (status, iid))
        client, refused = world.start(blob, store=ThreadStore(world.cs), restart_completed=True)
        assert not refused.started and refused.existing_status == status and client.starts == {}


def test_a_database_outage_falls_back_on_the_instance_check(world, caplog):
    down = (f"Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port={free_port()};Database=x;"
            "Uid=postgres;Pwd=;")
    blob = _blob(world.storage)
    with caplog.at_level(logging.WARNING, logger="shared.starter"):
        client, result = world.start(blob, store=ThreadStore(down))
    assert result.started and client.starts  # the event is not lost: the run starts
    assert "could not be read" in caplog.text and "instance status alone" in caplog.text
    client, result = world.start(blob, store=ThreadStore(down))
    assert (result.started, result.existing_status) == (False, "Pending")  # and still only once
