"""End to end through the local host on Azurite: the Event Grid starter (emulated Event Grid that
duplicates and reorders), its webhook, and the reconciliation timer run on demand.

Every function is invoked through Microsoft's worker with the host's inputs: the event as JSON
TypedData (devhost.eventgrid, after the Event Grid extension's HttpRequestProcessor and trigger
binding), the timer's TimerInfo JSON (devhost.timers).
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from devhost import samples
from devhost.eventgrid import blob_created_event
from shared.blob_access import ensure_container, service_client, upload_bytes
from shared.settings import INPUT_CONTAINER
from shared.store import SqlStore
from tests.hosting import HostProcess

pytestmark = pytest.mark.e2e

EVENTS_ONLY = {"AzureWebJobs.BlobTriggerStarter.Disabled": "true", "AzureWebJobs.EventGridStarter.Disabled": "false"}


def png(width: int) -> bytes:
    return samples.encode(samples.picture((width, 8)), "PNG")


def wait_until(sql: str, check: Any, timeout: float = 90) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = SqlStore(sql).rows()
        if check({r["BlobName"]: r for r in rows}):
            return rows
        time.sleep(0.3)
    raise AssertionError(f"condition not met within {timeout} s; rows: {[(r['BlobName'], r['Status']) for r in rows]}")


def wait_for_baseline(state: Path, timeout: float = 30) -> None:
    """The emulated subscription's first listing is its baseline (no events for what it holds):
    wait until the host recorded it before changing the container."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(state / "durable.db") as db:
                if db.execute("SELECT last FROM eventgrid_sequence").fetchone() is not None:
                    return
        except sqlite3.OperationalError:
            pass
        time.sleep(0.1)
    raise AssertionError("the host took no Event Grid baseline listing")


def post(port: int, path: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", **(headers or {})}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_event_grid_starter_end_to_end_with_duplicates_reordering_and_deletions(storage, sqlite_cs, tmp_path):
    """Uploads, overwrites, deletions and delete-then-re-upload while Event Grid (emulated) delivers
    some events twice and holds some back behind newer ones: every blob ends with one row for its
    final version, every deleted blob's row is marked deleted."""
    env = {**EVENTS_ONLY, "EVENTGRID_DUPLICATE_RATE": "0.4", "EVENTGRID_REORDER_RATE": "0.4", "EVENTGRID_SEED": "3"}
    host = HostProcess(tmp_path / "state", storage, sqlite_cs, env)
    try:
        wait_for_baseline(tmp_path / "state")
        names = [f"eg/{i:02d}.png" for i in range(24)]
        refs = {n: upload_bytes(storage, INPUT_CONTAINER, n, png(16), "image/png") for n in names}
        time.sleep(0.5)
        blobs = service_client(storage).get_container_client(INPUT_CONTAINER)
        for n in names[:4]:
            refs[n] = upload_bytes(storage, INPUT_CONTAINER, n, png(24), "image/png")  # overwritten
        for n in names[4:8]:
            blobs.delete_blob(n)  # deleted
        for n in names[8:11]:
            blobs.delete_blob(n)
        time.sleep(0.5)
        for n in names[8:11]:
            refs[n] = upload_bytes(storage, INPUT_CONTAINER, n, png(32), "image/png")  # deleted, then re-uploaded
        live = {n: refs[n].etag for n in names if n not in names[4:8]}

        def settled(by_name: dict[str, dict[str, Any]]) -> bool:
            return (all(n in by_name and by_name[n]["ETag"] == e and by_name[n]["Status"] == "processed"
                        for n, e in live.items())
                    and all(by_name.get(n, {}).get("Status") == "deleted" for n in names[4:8]))

        rows = wait_until(sqlite_cs, settled)
    finally:
        host.stop()
    assert len(rows) == len(names)
    widths = {r["BlobName"]: r["Width"] for r in rows}
    assert {widths[n] for n in names[:4]} == {24} and {widths[n] for n in names[8:11]} == {32}
    stats = json.loads((tmp_path / "state" / "host-stats.json").read_text())["event_grid"]
    assert stats["duplicated"] > 0 and stats["reordered"] > 0 and stats["dead_lettered"] == 0
    assert stats["invocations"] >= stats["delivered"] >= 24 + 4 + 4 + 6

def test_webhook_accepts_the_quickstart_post_and_answers_like_the_extension(storage, sqlite_cs, tmp_path):
    host = HostProcess(tmp_path / "state", storage, sqlite_cs, EVENTS_ONLY)
    try:
        ref = upload_bytes(storage, INPUT_CONTAINER, "hook/by-hand.png", png(40), "image/png")
        event = blob_created_event(ref, "0000000000000000000000000000FFFF")
        hook = "/runtime/webhooks/eventgrid?functionName=EventGridStarter"
        assert post(host.port, hook, [event], {"aeg-event-type": "Notification"})[0] == 202
        rows = wait_until(sqlite_cs, lambda r: r.get("hook/by-hand.png", {}).get("Status") == "processed")
        assert [r["Width"] for r in rows if r["BlobName"] == "hook/by-hand.png"] == [40]
        assert post(host.port, hook, [event], {})[0] == 400  # no aeg-event-type header
        status, text = post(host.port, "/runtime/webhooks/eventgrid?functionName=Nope", [event],
                            {"aeg-event-type": "Notification"})
        assert (status, text) == (404, "cannot find function: 'Nope'")
        validation = [{"id": "1", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
                       "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}}]
        status, text = post(host.port, hook, validation, {"aeg-event-type": "SubscriptionValidation"})
        assert (status, json.loads(text)) == (200, {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"})
        # An event the starter cannot use is acknowledged (retrying would never help): 202.
        assert post(host.port, hook, {"eventType": "Microsoft.Storage.BlobTierChanged", "id": "x"},
                    {"aeg-event-type": "Notification"})[0] == 202
    finally:
        host.stop()


def test_blob_trigger_and_reconciliation_timer_on_demand(storage, sqlite_cs, tmp_path):
    """Blob trigger starter (the default locally); a blob deleted behind its back and one uploaded
    while the trigger was off are settled by ReconcileBlobs run through the admin API."""
    ensure_container(storage, INPUT_CONTAINER)
    kept = upload_bytes(storage, INPUT_CONTAINER, "tr/kept.png", png(16), "image/png")
    gone = upload_bytes(storage, INPUT_CONTAINER, "tr/gone.png", png(16), "image/png")
    host = HostProcess(tmp_path / "state", storage, sqlite_cs, {"AzureWebJobs.ReconcileBlobs.Disabled": "false",
                                                                 "ReconcileSchedule": "0 0 0 1 1 *"})
    try:
        wait_until(sqlite_cs, lambda r: {n for n, row in r.items() if row["Status"] == "processed"}
                   >= {"tr/kept.png", "tr/gone.png"})
    finally:
        host.stop()
    service_client(storage).get_container_client(INPUT_CONTAINER).delete_blob("tr/gone.png")
    late = upload_bytes(storage, INPUT_CONTAINER, "tr/late.png", png(48), "image/png")
    host = HostProcess(tmp_path / "state2", storage, sqlite_cs,
                       {"AzureWebJobs.ReconcileBlobs.Disabled": "false", "ReconcileSchedule": "0 0 0 1 1 *",
                        "AzureWebJobs.BlobTriggerStarter.Disabled": "true"})
    try:
        assert post(host.port, "/admin/functions/ReconcileBlobs", {"input": ""})[0] == 202
        rows = wait_until(sqlite_cs, lambda r: r.get("tr/gone.png", {}).get("Status") == "deleted"
                          and r.get("tr/late.png", {}).get("ETag") == late.etag
                          and r.get("tr/late.png", {}).get("Status") == "processed")
    finally:
        host.stop()
    by_name = {r["BlobName"]: r for r in rows}
    assert by_name["tr/kept.png"]["ETag"] == kept.etag and by_name["tr/gone.png"]["ETag"] == gone.etag
