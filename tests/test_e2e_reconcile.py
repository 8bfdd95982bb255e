"""Reconciliation and re-index end to end: the local host, Microsoft's worker, Azurite, SQLite.

The pass runs as the app deploys it: ReconcileBlobs (timer, or its admin endpoint) or the
Durable HTTP API starts ReconcileOrchestrator under its fixed instance id; each step is a
ReconcilePage activity that starts ImageOrchestrator runs through its durableClient binding.
Killed with SIGKILL mid-pass and restarted, the pass resumes from its last completed step and
finishes: no blob without its row at the newest extractor version for its final version, no
version started twice. Rates are measured from the task hub's record of starts (its
timestamps), not from wall-clock assertions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import pytest
from azure.durable_functions.models.utils import http_utils

from devhost.host import HostConfig, LocalHost
from devhost.passes import QUIET, run_pass
from devhost.samples import encode, picture
from shared.blob_access import list_blob_refs, service_client, upload_bytes
from shared.models import EXTRACTOR_VERSION, ImageMetadata, ImageRecord
from shared.reconcile_flow import PassSettings, reconcile_input, reindex_input, start_pass
from shared.settings import INPUT_CONTAINER, ORCHESTRATOR_NAME, RECONCILE_INSTANCE_ID
from shared.starter import instance_id_for
from shared.store import SqlStore
from tests.durable import max_starts_in_window
from tests.hosting import HostProcess

PNG = encode(picture((16, 8)), "PNG")
PACE = {"ReconcileListPageSize": "6", "ReconcileRowPageSize": "8", "ReconcilePagesPerGeneration": "3",
        "ReconcileStartsPerSecond": "8", "ReconcileStepSeconds": "1"}


def _upload(conn: str, names: list[str]) -> dict[str, Any]:
    with ThreadPoolExecutor(8) as pool:
        refs = list(pool.map(lambda n: upload_bytes(conn, INPUT_CONTAINER, n, PNG, "image/png"), names))
    return {r.name: r for r in refs}


def _starts(state: Path) -> list[tuple[str, datetime]]:
    with sqlite3.connect(state / "durable.db") as db:
        rows = db.execute("SELECT instance_id, at FROM starts WHERE name = ? ORDER BY at", (ORCHESTRATOR_NAME,))
        return [(i, datetime.fromisoformat(a.replace("Z", "+00:00"))) for i, a in rows]


def _instance(state: Path, instance_id: str = RECONCILE_INSTANCE_ID) -> tuple[str | None, Any]:
    with sqlite3.connect(state / "durable.db") as db:
        row = db.execute("SELECT status, output FROM instances WHERE instance_id = ?", (instance_id,)).fetchone()
    return (row[0], json.loads(row[1]) if row and row[1] else None) if row else (None, None)


def _active(state: Path) -> int:
    with sqlite3.connect(state / "durable.db") as db:
        return db.execute("SELECT COUNT(*) FROM instances WHERE status IN "
                          "('Pending', 'Running', 'ContinuedAsNew', 'Suspended')").fetchone()[0]




def _check_rows(storage: str, sql: str) -> None:
    """Every blob: exactly one row, for its current ETag, at the newest extractor version."""
    rows = SqlStore(sql).rows()
    names = Counter(r["BlobName"] for r in rows)
    assert max(names.values()) == 1
    by_name = {r["BlobName"]: r for r in rows}
    for ref in list_blob_refs(storage, INPUT_CONTAINER):
        row = by_name[ref.name]
        assert (row["ETag"], row["Status"], row["ExtractorVersion"]) == (ref.etag, "processed", EXTRACTOR_VERSION)


def test_a_pass_through_the_host_is_paced_bounded_and_complete(storage, sqlite_cs, tmp_path):
    names = [f"p/{i:03d}.png" for i in range(48)]
    _upload(storage, names)
    settings = {"AzureWebJobsStorage": storage, "SqlConnectionString": sqlite_cs, "RetryDelaysSeconds": "0.5,1"}
    pace = PassSettings(startsPerSecond=8, stepSeconds=1, pagesPerGeneration=3, listPageSize=6, rowPageSize=8)
    result = asyncio.run(run_pass(settings, tmp_path / "hub", reconcile_input(pace), timeout=180))
    assert result["runtimeStatus"] == "Completed"
    totals = result["result"]
    assert (totals["blobsListed"], totals["started"], totals["listCalls"]) == (48, 48, 8)
    _check_rows(storage, sqlite_cs)
    # continue_as_new every 3 steps: many generations, each history short whatever the container.
    assert result["generations"] >= totals["pages"] // 3
    assert result["longestGenerationHistory"] <= 3 * 2 * 2 + 3 * 4 + 6  # 3 steps + their timers, markers
    # Starts per second from the recorded start times: within the limit plus one step's share.
    times = [t for _, t in _starts(tmp_path / "hub")]
    assert len(times) == 48
    assert max_starts_in_window(times, 1.0) <= 2 * pace.max_starts
    span = (times[-1] - times[0]).total_seconds()
    assert (len(times) - pace.max_starts) / span <= pace.startsPerSecond * 1.05
    # Negative control: the same measurement on an unpaced pass exceeds that bound.
    fast_names = [f"q/{i:03d}.png" for i in range(48)]
    _upload(storage, fast_names)
    fast = PassSettings(startsPerSecond=10_000, stepSeconds=1, pagesPerGeneration=3, listPageSize=50, rowPageSize=50)
    asyncio.run(run_pass(settings, tmp_path / "hub2", reconcile_input(fast), timeout=180))
    fast_times = [t for _, t in _starts(tmp_path / "hub2")]
    assert len(fast_times) == 48
    assert max_starts_in_window(fast_times, 1.0) > 2 * pace.max_starts


def test_a_second_start_while_a_pass_runs_is_refused_with_a_log_line(storage, sqlite_cs, tmp_path, caplog,
                                                                    monkeypatch):
    _upload(storage, [f"s/{i:03d}.png" for i in range(30)])
    values = {"AzureWebJobsStorage": storage, "SqlConnectionString": sqlite_cs, "RetryDelaysSeconds": "0.5",
              **{f"AzureWebJobs.{n}.Disabled": "true" for n in QUIET}}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    slow = reconcile_input(PassSettings(startsPerSecond=5, stepSeconds=1, listPageSize=5))

    async def scenario() -> tuple[bool, bool, bool]:
        host = LocalHost(HostConfig(state_dir=tmp_path / "hub", settings=values))
        serving = asyncio.create_task(host.serve())
        try:
            while not host.port:
                await asyncio.sleep(0.01)
            http_utils._client_session = None
            client = df.DurableOrchestrationClient(host.binding)
            first = await start_pass(client, slow)
            second = await start_pass(client, reconcile_input(PassSettings()))
            while host.engine.status(RECONCILE_INSTANCE_ID)["runtimeStatus"] in ("Pending", "Running",
                                                                                 "ContinuedAsNew"):
                await asyncio.sleep(0.2)
            status = host.engine.status(RECONCILE_INSTANCE_ID)
            assert status["runtimeStatus"] == "Completed", status["output"]
            third = await start_pass(client, slow)  # negative control: a finished pass is replaced
            await http_utils._close_session()
            return first, second, third
        finally:
            host.stop()
            await serving

    with caplog.at_level(logging.WARNING, logger="shared.reconcile_flow"):
        first, second, third = asyncio.run(scenario())
    assert (first, second, third) == (True, False, True)
    refusals = [r.getMessage() for r in caplog.records if "already running" in r.getMessage()]
    assert len(refusals) == 1 and RECONCILE_INSTANCE_ID in refusals[0]


def _post(url: str, body: Any) -> int:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def _kill_then_finish(tmp_path: Path, storage: str, sql: str, kill_at: str, start: Any) -> None:
    env = {**PACE, "AzureWebJobs.BlobTriggerStarter.Disabled": "true",
           "AzureWebJobs.EventGridStarter.Disabled": "true", "AzureWebJobs.ReconcileBlobs.Disabled": "false",
           "ReconcileSchedule": "0 0 0 1 1 *"}
    state = tmp_path / "state"
    host = HostProcess(state, storage, sql, {**env, "DEVHOST_KILL_AT": kill_at})
    start(host.port)
    assert host.wait_exit(120) == -9, "the kill point was never reached"
    status, _ = _instance(state)
    assert status in ("Running", "ContinuedAsNew", "Pending"), f"killed after the pass ended ({status})"
    host = HostProcess(state, storage, sql, env)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            status, output = _instance(state)
            if status == "Completed" and _active(state) == 0:
                break
            assert status in ("Running", "ContinuedAsNew", "Pending", "Completed"), status
            time.sleep(0.3)
        else:
            raise AssertionError(f"the pass did not finish after the restart ({status})")
    finally:
        host.stop()
    _check_rows(storage, sql)
    starts = Counter(i for i, _ in _starts(state))
    assert starts and max(starts.values()) == 1, "a version was started twice"


@pytest.mark.parametrize("kill_at", ["activity-done:5", "after-episode:9"])
def test_reconciliation_killed_mid_pass_resumes_and_loses_nothing(storage, sqlite_cs, tmp_path, kill_at):
    names = [f"k/{i:03d}.png" for i in range(40)]
    refs = _upload(storage, names)
    # Some already indexed, some gone behind the pipeline's back: the pass must mark those.
    store = SqlStore(sqlite_cs)
    for name in names[:10]:
        store.upsert(ImageRecord.for_blob(refs[name], "processed", metadata=ImageMetadata(format="PNG")))
    for name in names[:3]:
        service_client(storage).get_container_client(INPUT_CONTAINER).delete_blob(name)

    def start(port: int) -> None:
        assert _post(f"http://127.0.0.1:{port}/admin/functions/ReconcileBlobs", {"input": ""}) == 202

    _kill_then_finish(tmp_path, storage, sqlite_cs, kill_at, start)
    gone = {r["BlobName"]: r["Status"] for r in SqlStore(sqlite_cs).rows() if r["BlobName"] in names[:3]}
    assert gone == dict.fromkeys(names[:3], "deleted")
    # Exactly the 30 versions without a row were started, once each (a step the kill cut off ran
    # again: the starts it had made were then refused as under way, so the totals may count fewer).
    expected = {instance_id_for(INPUT_CONTAINER, n, refs[n].etag) for n in names[10:]}
    assert {i for i, _ in _starts(tmp_path / "state")} == expected
    _, output = _instance(tmp_path / "state")
    assert output["started"] <= 30 and output["rowsMarkedGone"] == 3


def test_reindex_killed_mid_pass_resumes_and_loses_nothing(storage, sqlite_cs, tmp_path):
    names = [f"r/{i:03d}.png" for i in range(36)]
    refs = _upload(storage, names)
    store = SqlStore(sqlite_cs)
    for name in names:  # every row written by an older extractor
        store.upsert(ImageRecord.for_blob(refs[name], "processed",
                                          metadata=ImageMetadata(format="PNG", extractor_version=EXTRACTOR_VERSION - 1)))
    pace = PassSettings(startsPerSecond=8, stepSeconds=1, pagesPerGeneration=3, rowPageSize=5)

    def start(port: int) -> None:
        # The Durable extension's HTTP API, as on Azure (there with ?code=<durabletask_extension key>).
        url = f"http://127.0.0.1:{port}/durabletask/orchestrators/ReconcileOrchestrator/{RECONCILE_INSTANCE_ID}"
        assert _post(url, reindex_input(pace)) == 202

    _kill_then_finish(tmp_path, storage, sqlite_cs, "activity-done:6", start)
    expected = {instance_id_for(INPUT_CONTAINER, n, refs[n].etag) for n in names}
    assert {i for i, _ in _starts(tmp_path / "state")} == expected
    _, output = _instance(tmp_path / "state")
    assert output["mode"] == "reindex" and output["started"] <= 36


def test_a_pass_and_a_reindex_through_the_host_on_postgresql(storage, postgres_cs, tmp_path):
    """The same pass on a client/server database: a first pass indexes, a re-index by prefix
    re-runs only those rows (their Completed instances restarted), a routine pass does nothing."""
    names = [f"pg/{i:02d}.png" for i in range(12)] + [f"other/{i}.png" for i in range(4)]
    _upload(storage, names)
    settings = {"AzureWebJobsStorage": storage, "SqlConnectionString": postgres_cs, "RetryDelaysSeconds": "0.5,1"}
    pace = PassSettings(startsPerSecond=1000, stepSeconds=5, listPageSize=5, rowPageSize=6)
    first = asyncio.run(run_pass(settings, tmp_path / "hub", reconcile_input(pace), timeout=180))
    assert (first["runtimeStatus"], first["result"]["started"]) == ("Completed", 16)
    _check_rows(storage, postgres_cs)
    again = asyncio.run(run_pass(settings, tmp_path / "hub", reindex_input(pace, prefix="pg/"), timeout=180))
    assert (again["result"]["rowsSelected"], again["result"]["started"]) == (12, 12)
    routine = asyncio.run(run_pass(settings, tmp_path / "hub", reconcile_input(pace), timeout=180))
    assert (routine["result"]["started"], routine["result"]["rowsChecked"]) == (0, 16)
    starts = Counter(i for i, _ in _starts(tmp_path / "hub"))
    assert sorted(Counter(starts.values()).items()) == [(1, 4), (2, 12)]  # the prefix's rows once more
    _check_rows(storage, postgres_cs)
