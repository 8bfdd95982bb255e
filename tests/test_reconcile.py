"""Reconciliation on a container of thousands, on Azurite with SQLite and PostgreSQL.

The container holds blobs that were evented and indexed, blobs never evented (older than the
subscription, lost events), blobs whose run ended Failed, blobs overwritten without an event
and blobs deleted behind the pipeline's back. After one reconciliation and the runs it started,
every blob has exactly one row for its current version, every gone blob's row is marked
deleted, and no version was started twice (the failed ones exactly once more) — also with live
events delivered while it runs.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from devhost.eventgrid import Sequencer, blob_created_event
from devhost.samples import encode, picture
from shared.activities import extract_metadata
from shared.blob_access import ensure_container, list_blob_refs, service_client, upload_bytes
from shared.events import handle_blob_event
from shared.models import BlobRef
from shared.reconcile import reconcile
from shared.starter import instance_id_for
from shared.store import SqlStore
from tests.durable import DELAYS, CountingClient, counting_client, pipeline_engine

COUNT = 2000
PNG = encode(picture((16, 8)), "PNG")


def _upload_all(conn: str, container: str, names: list[str], data: bytes) -> dict[str, BlobRef]:
    with ThreadPoolExecutor(8) as pool:
        refs = list(pool.map(lambda n: upload_bytes(conn, container, n, data, "image/png"), names))
    return {r.name: r for r in refs}


@pytest.fixture
def world(storage_env: str, any_db_cs: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("SqlConnectionString", any_db_cs)
    container = f"recon-{uuid.uuid4().hex[:10]}"
    ensure_container(storage_env, container)
    rng = random.Random(8)
    names = [f"{rng.choice(['a', 'b', 'c'])}/{i:05d}-{uuid.uuid4().hex[:6]}.png" for i in range(COUNT)]
    rng.shuffle(names)
    sets = {"evented": names[:1300], "failed": names[1300:1400], "deleted": names[1400:1500],
            "overwritten": names[1500:1600], "never": names[1600:1950], "live": names[1950:]}
    return {"storage": storage_env, "sql": any_db_cs, "container": container, "names": names, "sets": sets,
            "refs": _upload_all(storage_env, container, names, PNG)}


def test_every_blob_ends_with_one_row_for_its_final_version(world, orchestrators):
    storage, sql, container, sets = world["storage"], world["sql"], world["container"], world["sets"]
    failing = set(sets["failed"])

    def extract(payload: dict[str, Any]) -> dict[str, Any]:
        if payload["blob"]["name"] in failing:
            return {"outcome": "transient", "reason": "test: storage unreachable"}
        return extract_metadata(payload)

    engine = pipeline_engine(orchestrators, extract)
    seq = Sequencer()
    refs: dict[str, BlobRef] = world["refs"]

    async def deliver(client: CountingClient, name: str) -> Any:
        return await handle_blob_event(blob_created_event(refs[name], seq.next()), client, container=container,
                                       storage_connection=storage, sql_connection=sql, retry_delays=DELAYS)

    async def scenario() -> tuple[CountingClient, Any, Any]:
        async with counting_client(engine) as client:
            # Before: events for most blobs, some runs failing, then changes no event announces.
            for name in sets["evented"] + sets["failed"] + sets["deleted"] + sets["overwritten"]:
                await deliver(client, name)
            engine.run_until_idle()
            failing.clear()
            container_client = service_client(storage).get_container_client(container)
            for name in sets["deleted"]:
                container_client.delete_blob(name)
            refs.update(_upload_all(storage, container, sets["overwritten"], encode(picture((24, 8)), "PNG")))
            # Reconciliation, with live events for other blobs arriving meanwhile.
            results = await asyncio.gather(
                reconcile(client, container=container, storage_connection=storage, sql_connection=sql,
                          retry_delays=DELAYS, list_page_size=300, sql_batch=100, row_page_size=250),
                *(deliver(client, name) for name in sets["live"]),
            )
            engine.run_until_idle()
            again = await reconcile(client, container=container, storage_connection=storage,
                                    sql_connection=sql, retry_delays=DELAYS, list_page_size=300,
                                    sql_batch=100, row_page_size=250)
            return client, results[0], again

    client, report, again = asyncio.run(scenario())

    # What the first pass found and did.
    assert report.blobs_listed == COUNT - len(sets["deleted"])
    assert report.list_calls == -(-report.blobs_listed // 300)
    assert report.missing_rows >= len(sets["never"])  # live blobs may or may not have a row yet
    assert report.other_version_rows == len(sets["overwritten"])
    assert report.failed_rows == len(sets["failed"])
    assert report.marked_deleted == len(sets["deleted"])
    must_start = len(sets["never"]) + len(sets["overwritten"]) + len(sets["failed"])
    # Live blobs are started by their event or by the pass, whichever asks first: never by both.
    assert must_start <= report.started <= must_start + len(sets["live"])
    # A second pass finds nothing to do.
    assert (again.started, again.marked_deleted, again.missing_rows, again.failed_rows,
            again.other_version_rows) == (0, 0, 0, 0, 0)

    # Every blob: exactly one row, for its current version, processed; every gone blob: deleted.
    rows = [r for r in SqlStore(sql).rows() if r["Container"] == container]
    by_name: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_name.setdefault(r["BlobName"], []).append(r)
    assert all(len(v) == 1 for v in by_name.values())
    current = {r.name: r for r in list_blob_refs(storage, container)}
    assert len(current) == COUNT - len(sets["deleted"])
    for name, ref in current.items():
        [row] = by_name[name]
        assert (row["ETag"], row["Status"]) == (ref.etag, "processed"), name
    assert {by_name[n][0]["Status"] for n in sets["deleted"]} == {"deleted"}

    # No version started twice; a failed run's version exactly once more.
    failed_ids = {instance_id_for(container, n, world["refs"][n].etag) for n in sets["failed"]}
    assert {iid: n for iid, n in client.starts.items() if n > 1}.keys() == failed_ids
    assert all(client.starts[i] == 2 for i in failed_ids)
    versions = {instance_id_for(container, n, ref.etag) for n, ref in current.items()}
    assert versions <= set(client.starts)
    assert sum(client.starts.values()) == len(set(client.starts)) + len(failed_ids)


class ForgetfulClient(CountingClient):
    """Negative control: a client whose status check never finds an instance."""

    async def get_status(self, instance_id: str, *args: Any, **kwargs: Any) -> Any:
        return await super().get_status("img-never-there")


@pytest.mark.parametrize("client_type, expected", [(CountingClient, {1}), (ForgetfulClient, {2})])
def test_two_concurrent_passes_start_each_version_once(storage_env, sqlite_cs, monkeypatch, orchestrators,
                                                       client_type, expected):
    """Two reconciliations at once, then a third after the runs completed: one start per version.
    Without the status check (ForgetfulClient) the third pass starts completed versions again."""
    monkeypatch.setenv("SqlConnectionString", sqlite_cs)
    container = f"recon-{uuid.uuid4().hex[:10]}"
    ensure_container(storage_env, container)
    _upload_all(storage_env, container, [f"n{i:03d}.png" for i in range(150)], PNG)
    # Rows stay missing: only the status check can keep the passes from starting a version again.
    engine = pipeline_engine(orchestrators, lambda payload: {"outcome": "ok", "metadata": {}},
                             lambda payload: {"outcome": "ok", "applied": True})

    async def scenario() -> CountingClient:
        async with counting_client(engine, client_type) as client:
            kwargs = {"container": container, "storage_connection": storage_env, "sql_connection": sqlite_cs,
                      "retry_delays": DELAYS, "list_page_size": 40}
            await asyncio.gather(reconcile(client, **kwargs), reconcile(client, **kwargs))
            engine.run_until_idle()
            await reconcile(client, **kwargs)
            return client

    client = asyncio.run(scenario())
    assert len(client.starts) == 150
    assert set(client.starts.values()) == expected
