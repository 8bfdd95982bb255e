"""History retention: the Durable client's purge by time window, the windowed purge timer, and
the end-to-end guarantee: index, purge, redeliver every event -> 0 new executions.

The purge request is the one azure-functions-durable 1.7 sends (``purge_instance_history_by``:
``DELETE {rpcBaseUrl}instances/?createdTimeFrom=..&createdTimeTo=..&runtimeStatus=..``, times as
``%Y-%m-%dT%H:%M:%S.%fZ``), answered as the extension's ``HandleDeleteHistoryWithFiltersRequestAsync``
does (docs/history-retention.md). Everything runs through the real SDK client over HTTP, the
real worker for BlobTriggerStarter and PurgeHistory, real Azurite and real databases.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import aiohttp
import azure.durable_functions as df
import pytest
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus
from azure.durable_functions.models.utils import http_utils

from devhost.engine import Engine, ManualClock, python_activity
from devhost.eventgrid import Sequencer, blob_created_event
from devhost.samples import encode, picture
from devhost.timers import timer_input
from devhost.worker import Data
from shared.blob_access import service_client, upload_bytes
from shared.events import handle_blob_event
from shared.retention import (
    CURSOR_BLOB,
    CURSOR_CONTAINER,
    BlobCursorStore,
    PurgeCursor,
    RetentionSettings,
    purge_history,
)
from shared.settings import INPUT_CONTAINER
from shared.store import SqlStore
from tests.durable import DELAYS, pipeline_engine
from tests.test_starter import client_endpoint, fired

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FINISHED = [OrchestrationRuntimeStatus.Completed, OrchestrationRuntimeStatus.Failed,
            OrchestrationRuntimeStatus.Terminated]


def _engine(orchestrators: dict[str, Any]) -> Engine:
    done = python_activity(lambda p: {"outcome": "ok"})
    return Engine(":memory:", orchestrators, {"ExtractMetadata": done, "StoreMetadata": done}, ManualClock(T0))


def _seed(engine: Engine, plan: list[tuple[timedelta, str]]) -> list[str]:
    """One instance per (age from T0, status), created in time order on the engine's clock."""
    ids = []
    for i, (offset, status) in enumerate(sorted(plan, key=lambda p: p[0])):
        engine.clock.advance_to(T0 + offset)
        iid = engine.start("ImageOrchestrator", f"img-seed-{i:04d}", json.dumps({"blob": {}}))
        engine.db.execute("DELETE FROM inbox WHERE instance_id = ?", (iid,))
        engine.db.execute("UPDATE instances SET status = ? WHERE instance_id = ?", (status, iid))
        ids.append(iid)
    return ids


async def _with_client(engine: Engine, script: Any, worker: Any = None) -> Any:
    """Run ``script(binding)`` against the engine's client endpoint. The SDK keeps one
    module-global HTTP session, usable only on the loop that made it: without the worker, a fresh
    one on this loop, closed on the way out; with it, the script runs on the worker's loop, where
    the functions it invokes make and keep theirs."""
    http_utils._client_session = None
    async with client_endpoint(engine) as binding:
        if worker is not None:
            return await worker.run(script(binding))
        try:
            return await script(binding)
        finally:
            await http_utils._close_session()


def test_sdk_purge_by_window_sends_the_documented_request_and_purges_only_finished_ones(orchestrators):
    engine = _engine(orchestrators)
    ids = _seed(engine, [(timedelta(hours=1), "Completed"), (timedelta(hours=2), "Failed"),
                         (timedelta(hours=3), "Terminated"), (timedelta(hours=4), "Running"),
                         (timedelta(hours=5), "Pending"), (timedelta(hours=30), "Completed")])
    sent: list[str] = []

    async def script(binding: str) -> tuple[int, int, int]:
        client = df.DurableOrchestrationClient(binding)
        real = client._delete_async_request

        async def spy(url: str, *args: Any) -> Any:
            sent.append(url)
            return await real(url, *args)

        client._delete_async_request = spy
        window = await client.purge_instance_history_by(created_time_from=T0, created_time_to=T0 + timedelta(days=1),
                                                        runtime_status=FINISHED)
        empty = await client.purge_instance_history_by(created_time_from=T0, created_time_to=T0 + timedelta(days=1),
                                                       runtime_status=FINISHED)
        async with aiohttp.ClientSession() as raw:
            async with raw.delete(binding and json.loads(binding)["rpcBaseUrl"] + "instances/") as response:
                missing_from = response.status
        return window.instances_deleted, empty.instances_deleted, missing_from

    deleted, again, missing_from = asyncio.run(_with_client(engine, script))
    assert (deleted, again, missing_from) == (3, 0, 400)
    url = urlparse(sent[0])
    assert url.path == "/durabletask/instances/"
    query = parse_qs(url.query)
    assert query == {"createdTimeFrom": ["2026-01-01T00:00:00.000000Z"],
                     "createdTimeTo": ["2026-01-02T00:00:00.000000Z"],
                     "runtimeStatus": ["Completed,Failed,Terminated"]}
    left = {i["instanceId"]: i["runtimeStatus"] for i in engine.query()}
    assert left == {ids[3]: "Running", ids[4]: "Pending", ids[5]: "Completed"}


class MemoryCursors:
    def __init__(self) -> None:
        self.cursor: PurgeCursor | None = None
        self.saves = 0

    def load(self) -> PurgeCursor | None:
        return self.cursor

    def save(self, cursor: PurgeCursor) -> None:
        self.cursor, self.saves = cursor, self.saves + 1


def test_purge_walks_windows_within_its_budget_and_resumes_from_the_cursor(orchestrators):
    engine = _engine(orchestrators)
    # 60 finished instances over 10 days (a burst of 20 in one hour on day 2), 2 still running.
    plan = [(timedelta(hours=6 * i), "Completed") for i in range(40)]
    plan += [(timedelta(days=2, minutes=2 * i), "Failed" if i % 2 else "Completed") for i in range(20)]
    plan += [(timedelta(days=1), "Running"), (timedelta(days=3), "Suspended")]
    _seed(engine, plan)
    now = T0 + timedelta(days=14)
    cutoff = now - timedelta(days=7)
    settings = RetentionSettings(retention_days=7, lookback_days=30, window_minutes=60, batch_instances=4,
                                 budget_seconds=6)
    ticks = iter(range(10_000))
    cursors = MemoryCursors()

    windows: list[tuple[datetime, datetime, int]] = []

    async def script(binding: str) -> list[Any]:
        client = df.DurableOrchestrationClient(binding)
        real = client.purge_instance_history_by

        async def spy(**kwargs: Any) -> Any:
            result = await real(**kwargs)
            windows.append((kwargs["created_time_from"], kwargs["created_time_to"], result.instances_deleted))
            return result

        client.purge_instance_history_by = spy
        reports = []
        while not reports or not reports[-1].caught_up:
            reports.append(await purge_history(client, cursors, FINISHED, now=now, settings=settings,
                                               monotonic=lambda: float(next(ticks))))
            assert len(reports) < 50
        return reports

    reports = asyncio.run(_with_client(engine, script))
    assert len(reports) > 1                                   # the budget cut runs short ...
    for earlier, later in zip(reports, reports[1:], strict=False):
        assert later.started_from == earlier.purged_until     # ... and each run resumed from the cursor
    assert reports[0].started_from == (cutoff - timedelta(days=30)).isoformat()
    assert reports[-1].purged_until == cutoff.isoformat()
    expected = sum(1 for offset, status in plan if T0 + offset <= cutoff and status not in ("Running", "Suspended"))
    assert sum(r.instances_deleted for r in reports) == expected == 29 + 20
    wire = "%Y-%m-%dT%H:%M:%S.%fZ"
    left = engine.query()
    assert sorted(i["runtimeStatus"] for i in left if i["createdTime"] <= cutoff.strftime(wire)) == [
        "Running", "Suspended"]
    assert len(left) == len(plan) - expected
    assert cursors.saves == len(windows) == sum(r.windows for r in reports)
    # windows are contiguous, widen over empty stretches and narrow after a crowded one
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:], strict=False))
    widths = [to - frm for frm, to, _ in windows]
    assert widths[:6] == [timedelta(hours=h) for h in (1, 2, 4, 8, 16, 24)]  # empty: doubled up to a day
    crowded = [i for i, (_, _, n) in enumerate(windows) if n > settings.batch_instances]
    assert crowded and all(widths[i + 1] <= widths[i] / 2 or windows[i + 1][1] == cutoff for i in crowded)


def test_the_purge_timer_runs_through_the_worker_with_its_cursor_in_storage(worker, orchestrators, storage_env,
                                                                              monkeypatch):
    engine = _engine(orchestrators)
    _seed(engine, [(timedelta(hours=1), "Completed"), (timedelta(hours=2), "Running")])
    engine.clock.advance_to(T0 + timedelta(days=9))
    monkeypatch.setenv("HistoryRetentionDays", "7")
    monkeypatch.setenv("HistoryPurgeLookbackDays", "3")
    blob = service_client(storage_env).get_blob_client(CURSOR_CONTAINER, CURSOR_BLOB)
    if blob.exists():
        blob.delete_blob()
    monkeypatch.setattr("shared.retention.datetime", _FrozenDatetime)

    async def script(binding: str) -> None:
        now = T0 + timedelta(days=9)
        await worker.invoke_async("PurgeHistory", {"timer": Data("json", timer_input(None, now, now)),
                                                   "starter": Data("string", binding)})

    asyncio.run(_with_client(engine, script, worker))
    assert [i["runtimeStatus"] for i in engine.query()] == ["Running"]
    saved = BlobCursorStore(storage_env).load()
    assert saved is not None and saved.purged_until == T0 + timedelta(days=2)


class _FrozenDatetime(datetime):
    """The timer's "now" pinned to the engine's clock (its instances were made on that clock)."""

    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        return T0 + timedelta(days=9)


# -- index, purge, redeliver ----------------------------------------------------------------------

PNG = encode(picture((16, 8)), "PNG")


@pytest.mark.parametrize("row_check", [True, False], ids=["row check", "negative control: no row check"])
def test_index_purge_redeliver_every_event_starts_nothing(worker, orchestrators, storage_env, any_db_cs,
                                                         monkeypatch, row_check):
    monkeypatch.setenv("SqlConnectionString", any_db_cs)
    if not row_check:
        monkeypatch.setattr("shared.starter.row_covers", lambda *args, **kwargs: False)
    engine = pipeline_engine(orchestrators)
    seq = Sequencer()
    names = [f"purge-{row_check}-{i}.png" for i in range(3)]
    blobs = [upload_bytes(storage_env, INPUT_CONTAINER, n, PNG, "image/png") for n in names]
    receipts = [fired(storage_env, n) for n in names]             # what the blob trigger delivers
    events = [blob_created_event(b, seq.next()) for b in blobs]   # what Event Grid delivers

    async def deliver_all(binding: str) -> list[Any]:
        for receipt in receipts:
            await worker.invoke_async("BlobTriggerStarter", {"myblob": Data("bytes", receipt.body),
                                                             "starter": Data("string", binding)}, receipt.metadata)
        client = df.DurableOrchestrationClient(binding)
        return [await handle_blob_event(e, client, container=INPUT_CONTAINER, storage_connection=storage_env,
                                        sql_connection=any_db_cs, retry_delays=DELAYS) for e in events]

    asyncio.run(_with_client(engine, deliver_all, worker))
    engine.run_until_idle()
    assert len(engine.query()) == 3 and {i["runtimeStatus"] for i in engine.query()} == {"Completed"}
    rows = [r for r in SqlStore(any_db_cs).rows() if r["BlobName"] in names]
    assert sorted(r["Status"] for r in rows) == ["processed"] * 3

    engine.clock.advance_to(engine.clock.now() + timedelta(days=8))

    async def purge(binding: str) -> Any:
        return await purge_history(df.DurableOrchestrationClient(binding), MemoryCursors(), FINISHED,
                                   now=engine.clock.now(), settings=RetentionSettings(lookback_days=30))

    report = asyncio.run(_with_client(engine, purge, worker))
    assert report.instances_deleted == 3 and engine.query() == []

    outcomes = asyncio.run(_with_client(engine, deliver_all, worker))  # every event again
    started = engine.query()
    if row_check:
        assert started == []                                       # 0 new executions
        assert [o.action for o in outcomes] == ["already covered"] * 3
        assert {o.detail for o in outcomes} == {"row is final"}
    else:
        assert len(started) == 3                                   # the gap the row check closes


def test_purge_refuses_any_status_but_the_finished_ones():
    running = FINISHED + [OrchestrationRuntimeStatus.Running]
    with pytest.raises(ValueError, match="never a running instance"):
        asyncio.run(purge_history(None, MemoryCursors(), running))
