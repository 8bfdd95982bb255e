"""Reconciliation and re-index steps on a real container (Azurite) and table (SQLite, PostgreSQL).

The container holds blobs that were evented and indexed, blobs never evented (older than the
subscription, lost events), blobs whose run ended with a failed row (its instance Completed),
blobs overwritten without an event, blobs deleted behind the pipeline's back, and indexed blobs
whose row was wrongly marked deleted. One pass of steps (``shared.reconcile_pages.run_step``,
sequenced by the orchestration's own pure functions ``begin`` / ``step_request`` / ``advance``)
and the runs it started leave every blob with exactly one row for its current version, every gone
blob's row marked deleted, and no version started twice except the repairs (failed rows, wrong
tombstones: once more each, although their instances Completed). A second pass does nothing.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devhost.eventgrid import Sequencer, blob_created_event
from devhost.samples import encode, picture
from shared.activities import extract_metadata
from shared.blob_access import ensure_container, list_blob_refs, service_client, upload_bytes
from shared.events import handle_blob_event
from shared.listed_keys import STATE_CONTAINER
from shared.models import BlobRef
from shared.reconcile_flow import PassSettings, advance, begin, reconcile_input, reindex_input, step_request
from shared.reconcile_pages import Connections, run_step
from shared.starter import instance_id_for
from shared.store import SqlStore
from tests.durable import DELAYS, CountingClient, counting_client, pipeline_engine

COUNT = 600
PNG = encode(picture((16, 8)), "PNG")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _upload_all(conn: str, container: str, names: list[str], data: bytes) -> dict[str, BlobRef]:
    with ThreadPoolExecutor(8) as pool:
        refs = list(pool.map(lambda n: upload_bytes(conn, container, n, data, "image/png"), names))
    return {r.name: r for r in refs}


async def run_steps(client: Any, conn: Connections, pass_input: dict[str, Any]) -> dict[str, Any]:
    """One pass, step after step, as the orchestration sequences them (times made up: no pacing)."""
    state = begin(pass_input, T0)
    now = T0
    while state["phase"] != "done":
        result = await run_step(client, step_request(state), conn)
        state = advance(state, result, now, now + timedelta(seconds=1))
        now += timedelta(seconds=3600)
    return state["totals"]


@pytest.fixture
def world(storage_env: str, any_db_cs: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("SqlConnectionString", any_db_cs)
    container = f"recon-{uuid.uuid4().hex[:10]}"
    ensure_container(storage_env, container)
    rng = random.Random(8)
    names = [f"{rng.choice(['a', 'b', 'c'])}/{i:05d}-{uuid.uuid4().hex[:6]}.png" for i in range(COUNT)]
    rng.shuffle(names)
    sets = {"evented": names[:300], "failed": names[300:360], "deleted": names[360:420],
            "overwritten": names[420:480], "tombstoned": names[480:500], "never": names[500:]}
    conn = Connections(images=storage_env, host=storage_env, sql=any_db_cs, container=container,
                       retry_delays=DELAYS)
    return {"conn": conn, "names": names, "sets": sets, "refs": _upload_all(storage_env, container, names, PNG)}


def test_a_pass_leaves_one_row_per_blob_for_its_final_version(world, orchestrators):
    conn, sets = world["conn"], world["sets"]
    storage, sql, container = conn.images, conn.sql, conn.container
    failing = set(sets["failed"])

    def extract(payload: dict[str, Any]) -> dict[str, Any]:
        if payload["blob"]["name"] in failing:
            return {"outcome": "transient", "reason": "test: storage unreachable"}
        return extract_metadata(payload)

    engine = pipeline_engine(orchestrators, extract)
    seq = Sequencer()
    refs: dict[str, BlobRef] = world["refs"]
    settings = PassSettings(startsPerSecond=1000, stepSeconds=60, listPageSize=70, rowPageSize=90)

    async def scenario() -> tuple[CountingClient, dict[str, int], dict[str, int]]:
        async with counting_client(engine) as client:
            for name in sets["evented"] + sets["failed"] + sets["deleted"] + sets["overwritten"] + sets["tombstoned"]:
                await handle_blob_event(blob_created_event(refs[name], seq.next()), client, container=container,
                                        storage_connection=storage, sql_connection=sql, retry_delays=DELAYS)
            engine.run_until_idle()
            failing.clear()
            blobs = service_client(storage).get_container_client(container)
            for name in sets["deleted"]:
                blobs.delete_blob(name)
            refs.update(_upload_all(storage, container, sets["overwritten"], encode(picture((24, 8)), "PNG")))
            for name in sets["tombstoned"]:
                SqlStore(sql).mark_deleted(container, name, deleted_at=datetime.now(UTC), etag=refs[name].etag)
            first = await run_steps(client, conn, reconcile_input(settings))
            engine.run_until_idle()
            again = await run_steps(client, conn, reconcile_input(settings))
            return client, first, again

    client, first, again = asyncio.run(scenario())

    listed = COUNT - len(sets["deleted"])
    assert first["blobsListed"] == listed
    assert first["listCalls"] == -(-listed // 70)
    assert first["missingRows"] == len(sets["never"])
    assert first["otherVersionRows"] == len(sets["overwritten"])
    assert first["failedRows"] == len(sets["failed"])
    assert first["deletedRowsOfPresentBlobs"] == len(sets["tombstoned"])
    assert first["rowsMarkedGone"] == len(sets["deleted"])
    assert first["propertyReads"] == len(sets["deleted"])  # only rows the listing did not see
    repairs = len(sets["failed"]) + len(sets["tombstoned"])
    assert first["started"] == len(sets["never"]) + len(sets["overwritten"]) + repairs
    for name in ("started", "rowsMarkedGone", "missingRows", "failedRows", "otherVersionRows",
                 "deletedRowsOfPresentBlobs"):
        assert again[name] == 0, name
    assert again["rowsChecked"] == listed

    rows = [r for r in SqlStore(sql).rows() if r["Container"] == container]
    by_name: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_name.setdefault(r["BlobName"], []).append(r)
    assert all(len(v) == 1 for v in by_name.values())
    current = {r.name: r for r in list_blob_refs(storage, container)}
    assert len(current) == listed
    for name, ref in current.items():
        [row] = by_name[name]
        assert (row["ETag"], row["Status"]) == (ref.etag, "processed"), name
    assert {by_name[n][0]["Status"] for n in sets["deleted"]} == {"deleted"}

    # No version started twice but the repairs, whose instances had Completed: once more each.
    repaired = {instance_id_for(container, n, world["refs"][n].etag) for n in sets["failed"] + sets["tombstoned"]}
    assert {iid for iid, n in client.starts.items() if n > 1} == repaired
    assert all(client.starts[i] == 2 for i in repaired)
    # The pass's state was deleted at its end.
    assert list(service_client(storage).get_container_client(STATE_CONTAINER).list_blobs()) == []


def test_a_step_cut_short_by_its_start_budget_resumes_after_the_last_name(storage_env, sqlite_cs, orchestrators):
    """maxStarts bounds the starts of one step; the next step re-lists the same page from the
    same token and goes on after the last name handled: each version started once, none skipped."""
    container = f"recon-{uuid.uuid4().hex[:10]}"
    ensure_container(storage_env, container)
    names = [f"n{i:03d}.png" for i in range(25)]
    _upload_all(storage_env, container, names, PNG)
    conn = Connections(images=storage_env, host=storage_env, sql=sqlite_cs, container=container, retry_delays=DELAYS)
    engine = pipeline_engine(orchestrators)

    async def scenario() -> tuple[CountingClient, list[dict[str, Any]]]:
        async with counting_client(engine) as client:
            step = {"phase": "list", "cursor": None, "passId": "p1", "maxStarts": 4, "budgetSeconds": 60,
                    "listPageSize": 10, "rowPageSize": 10, "filter": None}
            results = []
            while True:
                result = await run_step(client, step, conn)
                results.append(result)
                if result["cursor"] is None:
                    return client, results
                step = {**step, "cursor": result["cursor"]}

    client, results = asyncio.run(scenario())
    assert all(r["counters"].get("started", 0) <= 4 for r in results)
    assert sum(r["counters"].get("started", 0) for r in results) == 25
    assert sum(r["counters"]["blobsListed"] for r in results) == 25
    assert set(client.starts.values()) == {1} and len(client.starts) == 25
    assert any("resumeAfter" in (r["cursor"] or {}) for r in results)
    # Negative control: without the budget the first step starts its whole page.
    engine2 = pipeline_engine(orchestrators)

    async def unbounded() -> dict[str, Any]:
        async with counting_client(engine2) as client:
            return await run_step(client, {"phase": "list", "cursor": None, "passId": "p2", "maxStarts": 1000,
                                           "budgetSeconds": 60, "listPageSize": 10, "rowPageSize": 10,
                                           "filter": None}, conn)

    assert asyncio.run(unbounded())["counters"]["started"] == 10


def test_reindex_takes_rows_by_filter_skips_deleted_and_marks_gone(storage_env, any_db_cs, orchestrators, monkeypatch):
    """Default: rows of an older ExtractorVersion; STATUS / PREFIX / BEFORE filters; deleted rows
    never; a row whose blob is gone is marked deleted (for its ETag), not started."""
    from shared.models import ImageMetadata, ImageRecord

    monkeypatch.setenv("SqlConnectionString", any_db_cs)
    container = f"reidx-{uuid.uuid4().hex[:10]}"
    ensure_container(storage_env, container)
    names = [f"old/{i}.png" for i in range(6)] + [f"new/{i}.png" for i in range(4)] + ["old/gone.png", "old/dead.png"]
    refs = _upload_all(storage_env, container, names, PNG)
    store = SqlStore(any_db_cs)
    for name, ref in refs.items():
        version = 2 if name.startswith("old/") else 3
        status = "rejected" if name in ("new/0.png", "old/0.png") else "processed"
        store.upsert(ImageRecord.for_blob(ref, status, metadata=ImageMetadata(format="PNG", extractor_version=version)))
    store.mark_deleted(container, "old/dead.png", deleted_at=datetime.now(UTC), etag=refs["old/dead.png"].etag)
    service_client(storage_env).get_container_client(container).delete_blob("old/gone.png")
    conn = Connections(images=storage_env, host=storage_env, sql=any_db_cs, container=container, retry_delays=DELAYS)
    settings = PassSettings(rowPageSize=3)

    def reindex(**flt: Any) -> tuple[CountingClient, dict[str, int]]:
        engine = pipeline_engine(orchestrators)

        async def scenario() -> tuple[CountingClient, dict[str, int]]:
            async with counting_client(engine) as client:
                totals = await run_steps(client, conn, reindex_input(settings, **flt))
                engine.run_until_idle()
                return client, totals

        return asyncio.run(scenario())

    client, totals = reindex()
    assert totals["rowsSelected"] == 7  # old/0..5 and old/gone; not old/dead (deleted), not new/*
    assert totals["started"] == 6 and totals["rowsMarkedGone"] == 1
    assert {r["BlobName"]: r["Status"] for r in store.rows() if r["BlobName"] in ("old/gone.png", "old/dead.png")} \
        == {"old/gone.png": "deleted", "old/dead.png": "deleted"}
    assert all(r["ExtractorVersion"] == 3 for r in store.rows() if r["Status"] != "deleted")
    again_client, again = reindex()
    assert (again["rowsSelected"], again["started"]) == (0, 0)  # every live row is now at the newest version
    # STATUS=rejected: rows at the current version too (old/0 was re-extracted above and is now
    # processed; new/0 is still rejected), their Completed instances started again.
    client, totals = reindex(statuses=("rejected",))
    assert totals["rowsSelected"] == 1 and totals["started"] == 1
    client, totals = reindex(prefix="new/")
    assert totals["rowsSelected"] == 4 and totals["started"] == 4
    client, totals = reindex(before=datetime(2000, 1, 1, tzinfo=UTC))
    assert totals["rowsSelected"] == 0  # negative control of the time filter
    client, totals = reindex(before=datetime.now(UTC) + timedelta(minutes=5))
    assert totals["rowsSelected"] == 10
