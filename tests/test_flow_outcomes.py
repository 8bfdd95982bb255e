"""Every outcome of a run, on SQLite and PostgreSQL: ImageOrchestrator replayed through Microsoft's
worker by the local engine, the real activity bodies on real Azurite and the real database.

- a version overwritten or deleted before, or while, it is read ends Completed ``superseded``
  and writes nothing (the newer version's row stays as it was, even within the same second);
- a storage fault while the extractor reads past the head is retried and the row is complete;
- a database down through the whole retry schedule gets the ``failed`` row once it is back,
  that write retried on the same schedule.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from devhost import samples
from devhost.engine import Engine
from shared.activities import store_metadata
from shared.blob_access import service_client, upload_bytes
from shared.models import BlobRef
from shared.orchestration import orchestration_input
from shared.settings import INPUT_CONTAINER
from shared.store import SqlStore
from tests.durable import pipeline_engine
from tests.test_read_faults import FAULTS, FailingReads, tiff_with_far_subdirectories

DELAYS = (1.0, 2.0)
# A database that refuses connections: the real driver's error, classified by the real code.
DOWN = "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=9;Database=down;Uid=u;Pwd=p;"


def png(width: int) -> bytes:
    return samples.encode(samples.picture((width, 8), seed=width), "PNG")


@pytest.fixture
def db(any_db_cs: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SqlConnectionString", any_db_cs)
    return any_db_cs


def run(engine: Engine, ref: BlobRef, instance_id: str) -> dict[str, Any]:
    engine.start("ImageOrchestrator", instance_id, json.dumps(orchestration_input(ref, DELAYS)))
    engine.run_until_idle()
    status = engine.status(instance_id)
    assert status is not None
    return status


def rows(cs: str, name: str) -> list[dict[str, Any]]:
    return [r for r in SqlStore(cs).rows() if r["BlobName"] == name]


def test_version_overwritten_before_extraction_is_superseded_and_the_newer_row_stays(
        orchestrators, storage_env, db):
    name = "flow/overwritten.png"
    v1 = upload_bytes(storage_env, INPUT_CONTAINER, name, png(16))
    v2 = upload_bytes(storage_env, INPUT_CONTAINER, name, png(32))  # most often within the same second
    engine = pipeline_engine(orchestrators)
    assert run(engine, v2, "v2")["runtimeStatus"] == "Completed"
    before = rows(db, name)
    assert [(r["ETag"], r["Status"], r["Width"]) for r in before] == [(v2.etag, "processed", 32)]

    late = run(engine, v1, "v1-late")
    assert late["runtimeStatus"] == "Completed"
    assert late["output"]["status"] == "superseded" and late["output"]["applied"] is False
    assert late["customStatus"]["stage"] == "superseded"
    assert rows(db, name) == before


def test_version_deleted_before_extraction_is_superseded_and_writes_nothing(orchestrators, storage_env, db):
    name = "flow/deleted.png"
    ref = upload_bytes(storage_env, INPUT_CONTAINER, name, png(16))
    service_client(storage_env).get_blob_client(INPUT_CONTAINER, name).delete_blob()
    status = run(pipeline_engine(orchestrators), ref, "deleted")
    assert (status["runtimeStatus"], status["output"]["status"]) == ("Completed", "superseded")
    assert rows(db, name) == []


def test_version_overwritten_while_it_is_read_is_superseded(orchestrators, storage_env, db, monkeypatch):
    name = "flow/during.tiff"
    v1 = upload_bytes(storage_env, INPUT_CONTAINER, name, tiff_with_far_subdirectories())
    reads = FailingReads(monkeypatch, storage_env)
    reads.arm(2, overwrite=png(24))  # the head is read, then the blob changes under the extractor
    engine = pipeline_engine(orchestrators)
    status = run(engine, v1, "during-v1")
    assert (status["runtimeStatus"], status["output"]["status"]) == ("Completed", "superseded")
    assert rows(db, name) == []
    reads.arm(None)
    v2 = BlobRef.from_dict({**v1.to_dict(), "etag": service_client(storage_env).get_blob_client(
        INPUT_CONTAINER, name).get_blob_properties().etag, "last_modified": None})
    assert run(engine, v2, "during-v2")["runtimeStatus"] == "Completed"
    assert [(r["ETag"], r["Status"], r["Width"]) for r in rows(db, name)] == [(v2.etag, "processed", 24)]


@pytest.mark.parametrize("fault", ["503", "reset"])
def test_storage_fault_past_the_head_is_retried_and_the_row_is_complete(
        orchestrators, storage_env, db, monkeypatch, fault):
    name = f"flow/fault-{fault}.tiff"
    ref = upload_bytes(storage_env, INPUT_CONTAINER, name, tiff_with_far_subdirectories())
    reads = FailingReads(monkeypatch, storage_env)
    reads.arm(3, FAULTS[fault])  # the GPS sub-directory's read, on the first attempt only
    status = run(pipeline_engine(orchestrators), ref, f"fault-{fault}")
    assert status["runtimeStatus"] == "Completed" and status["output"]["status"] == "processed"
    assert reads.calls == 6  # 3 requests that broke at the third, then 3 that went through
    [row] = rows(db, name)
    assert (row["Status"], row["CameraMake"], row["FNumber"]) == ("processed", "Leica", 2.8)
    assert row["CapturedAt"] is not None and round(row["GpsLatitude"], 4) == 48.8583


def test_failed_row_is_retried_on_the_schedule_until_the_database_is_back(
        orchestrators, storage_env, db, monkeypatch):
    name = "flow/db-down.png"
    ref = upload_bytes(storage_env, INPUT_CONTAINER, name, png(16))
    calls: list[str] = []
    down_for = len(DELAYS) + 1 + 2  # the processed row's whole schedule, then two failed-row tries

    def store(payload: dict[str, Any]) -> dict[str, Any]:
        calls.append(payload["record"]["status"])
        monkeypatch.setenv("SqlConnectionString", DOWN if len(calls) <= down_for else db)
        return store_metadata(payload)

    status = run(pipeline_engine(orchestrators, store=store), ref, "db-down")
    assert status["runtimeStatus"] == "Failed"
    assert calls == ["processed"] * (len(DELAYS) + 1) + ["failed"] * 3
    assert status["customStatus"]["failedRowRecorded"] is True
    [row] = rows(db, name)
    assert row["Status"] == "failed" and row["ETag"] == ref.etag
    assert "storing the row failed after 3 attempt(s)" in row["Error"] and "08001" in row["Error"]
