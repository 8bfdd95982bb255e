"""Previews under chaos, end to end: the local host (every function through Microsoft's worker,
Event Grid emulated) SIGKILLed during uploads, overwrites and deletions, changes made while it is
down, then restarted: every live blob's row names its previews, every preview is named by a live
row (none orphaned, none missing), a deleted blob has none."""

from __future__ import annotations

import io
import time
from typing import Any

import pytest
from PIL import Image

from devhost import samples
from shared.blob_access import service_client, upload_bytes
from shared.preview_blobs import all_preview_names
from shared.settings import DEFAULT_PREVIEW_CONTAINER, INPUT_CONTAINER
from shared.store import SqlStore
from shared.store.store import previews_of
from tests.hosting import HostProcess
from tests.test_e2e_events import EVENTS_ONLY, wait_for_baseline

pytestmark = pytest.mark.e2e


def jpeg(seed: int) -> bytes:
    return samples.encode(samples.picture((640, 480), seed=seed), "JPEG",
                          samples.Exif(orientation=6, gps=(48.85, 2.29, 30.0)))


def mismatch(storage: str, sql: str, prefix: str) -> tuple[set[str], set[str]]:
    """(orphans, missing): previews no live row names, and names live rows hold that do not exist."""
    named: set[str] = set()
    for row in SqlStore(sql).rows():
        if row["BlobName"].startswith(prefix) and row["Status"] == "processed":
            named |= set((previews_of(row["Previews"]) or {}).values())
    present = {n for n in all_preview_names(storage, DEFAULT_PREVIEW_CONTAINER) if n.startswith(prefix)}
    return present - named, named - present


@pytest.mark.parametrize("kill_at", ["activity-start:10", "activity-done:17", "after-episode:12"])
def test_host_killed_during_uploads_and_deletions_leaves_no_orphan_and_no_missing_preview(
        storage, sqlite_cs, tmp_path, kill_at):
    state = tmp_path / "state"
    host = HostProcess(state, storage, sqlite_cs, {**EVENTS_ONLY, "DEVHOST_KILL_AT": kill_at})
    wait_for_baseline(state)
    names = [f"chaos/{i:02d}.jpg" for i in range(12)]
    blobs = service_client(storage).get_container_client(INPUT_CONTAINER)
    refs = {n: upload_bytes(storage, INPUT_CONTAINER, n, jpeg(i)) for i, n in enumerate(names)}
    time.sleep(0.3)
    for i, n in enumerate(names[:3]):
        refs[n] = upload_bytes(storage, INPUT_CONTAINER, n, jpeg(100 + i))  # overwritten
    for n in names[3:6]:
        blobs.delete_blob(n)
    assert host.wait_exit(90) == -9, "the kill point was never reached"
    for n in names[6:8]:  # while the host is down
        blobs.delete_blob(n)
    refs["chaos/late.jpg"] = upload_bytes(storage, INPUT_CONTAINER, "chaos/late.jpg", jpeg(200))
    deleted = set(names[3:8])
    live = {n: refs[n].etag for n in refs if n not in deleted}

    restarted = HostProcess(state, storage, sqlite_cs, EVENTS_ONLY)
    try:
        deadline = time.monotonic() + 120
        by_name: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline:
            by_name = {r["BlobName"]: r for r in SqlStore(sqlite_cs).rows()}
            rows_done = (all(n in by_name and by_name[n]["ETag"] == e and by_name[n]["Status"] == "processed"
                             for n, e in live.items())
                         and all(by_name.get(n, {}).get("Status") == "deleted" for n in deleted))
            if rows_done and mismatch(storage, sqlite_cs, "chaos/") == (set(), set()):
                break
            time.sleep(0.5)
    finally:
        restarted.stop()
    orphans, missing = mismatch(storage, sqlite_cs, "chaos/")
    assert (orphans, missing) == (set(), set())
    for name, etag in live.items():
        previews = previews_of(by_name[name]["Previews"]) or {}
        assert sorted(previews) == ["1024", "256"] and all(f"/{etag}/" in p for p in previews.values())
    present = all_preview_names(storage, DEFAULT_PREVIEW_CONTAINER)
    assert not [p for p in present if any(p.startswith(n + "/") for n in deleted)]
    small = service_client(storage).get_blob_client(DEFAULT_PREVIEW_CONTAINER, previews_of(
        by_name["chaos/late.jpg"]["Previews"])["256"]).download_blob().readall()
    assert Image.open(io.BytesIO(small)).size == (192, 256)  # upright (orientation 6)
