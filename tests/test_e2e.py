"""End to end: real Azurite, the local host running the real function folders, a real database."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from pathlib import Path

import azure.durable_functions as df
import pytest
from azure.durable_functions.models.utils import http_utils

from devhost import samples
from devhost.client_api import client_binding
from shared.blob_access import upload_bytes
from shared.settings import INPUT_CONTAINER
from shared.starter import instance_id_for
from tests.hosting import HostProcess, wait_for_rows

pytestmark = pytest.mark.e2e


def _no_orphaned_workers_after(seconds: float) -> bool:
    """True once no activity worker process is left without its host (re-parented to init)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        orphans = []
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                cmdline = (proc / "cmdline").read_bytes()
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if b"multiprocessing.spawn" in cmdline and ppid == 1:
                orphans.append(proc.name)
        if not orphans:
            return True
        time.sleep(0.2)
    return False


def retrying_store(state: Path) -> int:
    """Instances still running at the storing stage: they are waiting on a retry timer."""
    with sqlite3.connect(state / "durable.db") as db:
        return db.execute("SELECT COUNT(*) FROM instances WHERE status = 'Running' "
                          "AND custom_status LIKE '%storing%'").fetchone()[0]


def wait_for_retrying(state: Path, count: int, timeout: float = 30) -> int:
    """Poll until ``count`` instances wait to retry the store (each start first tries to read its
    row, which waits out the database's busy timeout before the start falls back on the instance)."""
    deadline = time.monotonic() + timeout
    while (found := retrying_store(state)) != count and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def upload(storage: str, blobs: dict[str, bytes]) -> dict[str, str]:
    return {name: upload_bytes(storage, INPUT_CONTAINER, name, data).etag for name, data in blobs.items()}


MIX_NAMES = {
    "photos/camera.jpg": samples.encode(samples.picture((320, 240)), "JPEG",
                                        samples.Exif(make="Sony", model="A7", orientation=8)),
    "photos/graph.png": samples.encode(samples.picture((64, 64), "RGBA"), "PNG"),
    "photos/anim.gif": samples.animated_gif(3),
    "photos/tile.webp": samples.encode(samples.picture((40, 30)), "WEBP"),
    ("ünïcødé 'single' \"double\" — 東京 " * 10)[:300] + ".png": samples.encode(samples.picture((9, 9)), "PNG"),
    "not-an-image.jpg": b"plain text pretending to be a JPEG",
    "zero.jpg": b"",
    "corrupt.jpg": samples.hostile_inputs()["corrupt.jpg"],
    "bomb.png": samples.png_header_only(30000, 30000),
}


def test_mixed_uploads_end_as_exactly_one_row_each(storage, sqlite_cs, tmp_path):
    host = HostProcess(tmp_path / "state", storage, sqlite_cs)
    try:
        etags = upload(storage, MIX_NAMES)
        rows = wait_for_rows(sqlite_cs, etags)
    finally:
        host.stop()
    assert len(rows) == len(MIX_NAMES)
    by_name = {r["BlobName"]: r for r in rows}
    for name in ("photos/camera.jpg", "photos/graph.png", "photos/anim.gif", "photos/tile.webp"):
        assert by_name[name]["Status"] == "processed", by_name[name]
    camera = by_name["photos/camera.jpg"]
    assert (camera["Width"], camera["Height"], camera["DisplayWidth"], camera["CameraMake"]) == (320, 240, 240, "Sony")
    assert by_name["photos/anim.gif"]["FrameCount"] == 3
    long_name = next(n for n in MIX_NAMES if n.startswith("ünïcødé"))
    assert by_name[long_name]["Status"] == "processed" and by_name[long_name]["FileName"] == long_name
    for name, reason in (("not-an-image.jpg", "not a supported image"), ("zero.jpg", "empty blob"),
                         ("corrupt.jpg", "not a supported image"), ("bomb.png", "over the limit")):
        assert by_name[name]["Status"] == "rejected" and reason in by_name[name]["Error"], by_name[name]
    assert by_name["zero.jpg"]["FileSizeBytes"] == 0


def _status(port: int, instance_id: str):
    async def go():
        client = df.DurableOrchestrationClient(client_binding(f"http://127.0.0.1:{port}", "H", "unused"))
        try:
            return await client.get_status(instance_id)
        finally:
            await http_utils._close_session()

    return asyncio.run(go())


def test_duplicate_delivery_and_new_version_keep_one_row(storage, sqlite_cs, tmp_path):
    first = upload(storage, {"dup.png": samples.encode(samples.picture((10, 10)), "PNG")})
    host = HostProcess(tmp_path / "state", storage, sqlite_cs)
    wait_for_rows(sqlite_cs, first)
    status = _status(host.port, instance_id_for(INPUT_CONTAINER, "dup.png", first["dup.png"]))
    assert status.runtime_status.value == "Completed" and status.output["status"] == "processed"
    host.stop()
    # The same version delivered again: receipts lost, and a second host on the same storage with
    # a task hub of its own (no instance to find): the final row says the version is done.
    with sqlite3.connect(tmp_path / "state" / "durable.db") as db:
        db.execute("DELETE FROM receipts")
    again = HostProcess(tmp_path / "state", storage, sqlite_cs)
    other = HostProcess(tmp_path / "other-state", storage, sqlite_cs)
    try:
        deadline = time.monotonic() + 30
        fired = 0
        while time.monotonic() < deadline:
            with sqlite3.connect(tmp_path / "other-state" / "durable.db") as db:
                fired = db.execute("SELECT COUNT(*) FROM receipts WHERE name = 'dup.png' AND status = 'done'"
                                   ).fetchone()[0]
            if fired:
                break
            time.sleep(0.2)
        assert fired == 1                                  # the other host's trigger ran ...
        with sqlite3.connect(tmp_path / "other-state" / "durable.db") as db:
            assert db.execute("SELECT COUNT(*) FROM instances").fetchone()[0] == 0  # ... and started nothing
        with sqlite3.connect(tmp_path / "state" / "durable.db") as db:
            assert db.execute("SELECT COUNT(*) FROM instances").fetchone()[0] == 1
        newer = upload(storage, {"dup.png": samples.encode(samples.picture((20, 30)), "PNG")})
        rows = wait_for_rows(sqlite_cs, newer)
    finally:
        again.stop()
        other.stop()
    assert len(rows) == 1
    assert (rows[0]["ETag"], rows[0]["Width"], rows[0]["Height"]) == (newer["dup.png"], 20, 30)


@pytest.mark.parametrize("kill_at", ["after-start:3", "after-episode:4", "activity-start:5", "activity-done:6"])
def test_sigkill_at_any_point_then_restart_completes_every_blob_once(storage, sqlite_cs, tmp_path, kill_at):
    blobs = {f"crash/{i}.png": samples.encode(samples.picture((8 + i, 8)), "PNG") for i in range(6)}
    host = HostProcess(tmp_path / "state", storage, sqlite_cs, {"DEVHOST_KILL_AT": kill_at})
    etags = upload(storage, blobs)
    assert host.wait_exit(60) == -9, "the kill point was never reached"
    assert _no_orphaned_workers_after(5), "worker processes outlived their SIGKILLed host"
    restarted = HostProcess(tmp_path / "state", storage, sqlite_cs)
    try:
        rows = wait_for_rows(sqlite_cs, etags)
        with sqlite3.connect(tmp_path / "state" / "durable.db") as db:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                statuses = Counter(s for (s,) in db.execute("SELECT status FROM instances"))
                if statuses == Counter({"Completed": len(blobs)}):
                    break
                time.sleep(0.2)
    finally:
        restarted.stop()
    assert len(rows) == len(blobs)
    assert Counter(r["BlobName"] for r in rows) == Counter(list(blobs))
    assert all(r["Status"] == "processed" for r in rows)
    assert statuses == Counter({"Completed": len(blobs)})


def test_locked_database_is_outlasted_by_retries(storage, tmp_path):
    db_path = tmp_path / "locked.db"
    sql = f"Driver={{SQLite3}};Database={db_path};Timeout=200;"
    from shared.store import SqlStore

    SqlStore(sql).ensure_schema()
    holder = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    host = HostProcess(tmp_path / "state", storage, sql)
    try:
        etags = upload(storage, {f"locked/{i}.png": samples.encode(samples.picture((5, 5)), "PNG")
                                 for i in range(3)})
        assert wait_for_retrying(tmp_path / "state", 3) == 3, "orchestrations should be waiting to retry the store"
        holder.execute("COMMIT")
        rows = wait_for_rows(sql, etags, timeout=60)
    finally:
        host.stop()
        holder.close()
    assert len(rows) == 3 and all(r["Status"] == "processed" for r in rows)


@pytest.mark.postgres
def test_postgres_stopped_then_started_again_completes_through_retries(storage, postgres, tmp_path):
    sql = postgres.create_database("paused")
    host = HostProcess(tmp_path / "state", storage, sql)
    try:
        postgres.stop()
        etags = upload(storage, {f"pg/{i}.jpg": samples.encode(samples.picture((12, 7)), "JPEG")
                                 for i in range(3)})
        assert wait_for_retrying(tmp_path / "state", 3) == 3, "the store should be retried while PostgreSQL is down"
        postgres.start()
        rows = wait_for_rows(sql, etags, timeout=90)
    finally:
        host.stop()
        postgres.start()
    assert len(rows) == 3 and all(r["Status"] == "processed" for r in rows)
    assert all(r["Width"] == 12 for r in rows)
