"""Every log line a function writes names the instance, blob and ETag it works on.

Unit checks of shared.log_context, then every function folder run through Microsoft's worker
(as Azure runs it) with the records captured: each record our code or the SDKs create during
the invocation carries ``InstanceId``/``BlobName``/``ETag`` attributes (custom dimensions
when the worker exports through OpenTelemetry) and the same values in its message (the only
part the host path forwards; docs/observability.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devhost import samples
from devhost.engine import Engine, ManualClock, python_activity
from devhost.eventgrid import blob_created_event
from devhost.functions import activity_call, discover
from devhost.timers import timer_input
from devhost.worker import Data, FunctionWorker
from shared.activities import extract_metadata
from shared.blob_access import ensure_container, upload_bytes
from shared.log_context import MARKER, bind, fields_from_event, log_context
from shared.models import BlobRef, ImageRecord
from shared.settings import INPUT_CONTAINER, RECONCILE_INSTANCE_ID
from shared.starter import instance_id_for
from tests.test_orchestrator import OK_EXTRACT, OK_STORE, Script
from tests.test_orchestrator import run as run_orchestrator
from tests.test_starter import client_endpoint, deliver, fired

SPECS = discover()
OURS = ("shared", "root")  # our modules and the adapters' logging.info(...)
log = logging.getLogger("shared.test")


def ctx(record: logging.LogRecord) -> dict[str, Any]:
    message = record.getMessage()
    assert MARKER in message, message
    return json.loads(message.rsplit(MARKER, 1)[1])


def named(records: list[logging.LogRecord], *prefixes: str) -> list[logging.LogRecord]:
    return [r for r in records if r.name.split(".")[0] in prefixes]


def assert_carries(records: list[logging.LogRecord], instance_id: str | None, blob: str, etag: str | None) -> None:
    assert records, "the function logged nothing"
    for record in records:
        carried = tuple(getattr(record, a, "missing") for a in ("InstanceId", "BlobName", "ETag"))
        assert carried == (instance_id, blob, etag), record.getMessage()
        expected = {k: v for k, v in (("instanceId", instance_id), ("blobName", blob), ("etag", etag)) if v}
        assert ctx(record) == expected


# ---- the module -------------------------------------------------------------------------------

def test_records_inside_carry_the_values_and_outside_do_not(caplog):
    with caplog.at_level(logging.INFO):
        log.info("before")
        with log_context(instance_id="img-1", blob_name="a/100% ünïcode \"q\".jpg", etag="0x8D1"):
            log.info("reading %s bytes at %d%%", 64, 0)
            logging.getLogger("azure.core.some.sdk").warning("an SDK's own line")
            log.info("no args, a literal 50%")
        log.info("after")
    before, inside, sdk, literal, after = caplog.records
    assert not hasattr(before, "InstanceId") and MARKER not in before.getMessage()
    assert not hasattr(after, "InstanceId") and MARKER not in after.getMessage()
    for record in (inside, sdk, literal):
        assert (record.InstanceId, record.BlobName, record.ETag) == ("img-1", "a/100% ünïcode \"q\".jpg", "0x8D1")
        assert ctx(record) == {"instanceId": "img-1", "blobName": "a/100% ünïcode \"q\".jpg", "etag": "0x8D1"}
    assert inside.getMessage().startswith("reading 64 bytes at 0%" + MARKER)
    assert literal.getMessage().startswith("no args, a literal 50%" + MARKER)


def test_nested_contexts_add_and_bind_is_dropped_on_exit(caplog):
    with caplog.at_level(logging.INFO):
        with log_context(blob_name="b.png"):
            bind(instance_id="img-2", etag="0x2")
            log.info("bound")
            with log_context(etag="0x3"):
                log.info("inner")
            log.info("outer again")
        bind(instance_id="ignored")  # outside any context: nothing to add to
        log.info("outside")
    bound, inner, outer, outside = caplog.records
    assert (bound.InstanceId, bound.ETag) == ("img-2", "0x2")
    assert (inner.InstanceId, inner.BlobName, inner.ETag) == ("img-2", "b.png", "0x3")
    assert outer.ETag == "0x2" and not hasattr(outside, "InstanceId")


def test_concurrent_tasks_and_threads_never_see_each_others_values(caplog):
    async def one(i: int) -> None:
        with log_context(blob_name=f"t{i}.jpg"):
            for _ in range(3):
                await asyncio.sleep(0)
                log.info("task %d", i)

    def thread(i: int) -> None:
        with log_context(blob_name=f"th{i}.jpg"):
            for _ in range(3):
                log.info("thread %d", i)

    async def main() -> None:
        with log_context():  # as ReconcileBlobs: each task binds in its own copy
            await asyncio.gather(*(one(i) for i in range(4)))

    with caplog.at_level(logging.INFO):
        asyncio.run(main())
        threads = [threading.Thread(target=thread, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(caplog.records) == 24
    for record in caplog.records:
        kind, i = record.msg.split()[0], record.args[0]
        assert record.BlobName == (f"t{i}.jpg" if kind == "task" else f"th{i}.jpg")


def test_fields_from_an_event():
    blob = BlobRef(INPUT_CONTAINER, "dir/x y.jpg", "0x8DCAFE")
    event = blob_created_event(blob, "0001")
    assert fields_from_event(event) == {"blob_name": "dir/x y.jpg", "etag": "0x8DCAFE"}
    assert fields_from_event({"subject": "/nonsense"}) == {"blob_name": None, "etag": None}


# ---- every function folder through the worker -------------------------------------------------

@pytest.fixture
def engine(orchestrators) -> Engine:
    """Starts land in a real engine whose activities are stand-ins (only the starters' lines count)."""
    done = python_activity(lambda p: {"outcome": "ok", "applied": True, "metadata": {"width": 1}})
    return Engine(":memory:", orchestrators, {"ExtractMetadata": done, "StoreMetadata": done}, ManualClock())


def test_extract_metadata_lines_carry_the_run(worker: FunctionWorker, caplog, monkeypatch):
    monkeypatch.setenv("AzureWebJobsStorage", "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                       "AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;")
    payload = {"blob": BlobRef(INPUT_CONTAINER, "logs/x.jpg", "0x1").to_dict(), "instanceId": "img-x"}
    with caplog.at_level(logging.INFO):
        out = json.loads(activity_call(worker, SPECS["ExtractMetadata"])(json.dumps(payload)))
    assert out["outcome"] == "transient"
    assert_carries(named(caplog.records, *OURS), "img-x", "logs/x.jpg", "0x1")


def test_negative_control_the_same_body_without_its_adapter_carries_nothing(caplog, monkeypatch):
    monkeypatch.setenv("AzureWebJobsStorage", "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                       "AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;")
    with caplog.at_level(logging.INFO):
        extract_metadata({"blob": BlobRef(INPUT_CONTAINER, "logs/x.jpg", "0x1").to_dict(), "instanceId": "img-x"})
    [line] = named(caplog.records, *OURS)
    assert not hasattr(line, "InstanceId")
    with pytest.raises(AssertionError):
        assert_carries([line], "img-x", "logs/x.jpg", "0x1")


def test_store_metadata_lines_carry_the_run(worker: FunctionWorker, caplog, monkeypatch):
    monkeypatch.delenv("SqlConnectionString", raising=False)
    record = ImageRecord.for_blob(BlobRef(INPUT_CONTAINER, "logs/s.png", "0x2"), "processed", instance_id="img-s")
    with caplog.at_level(logging.INFO):
        out = json.loads(activity_call(worker, SPECS["StoreMetadata"])(json.dumps({"record": record.to_dict()})))
    assert out["outcome"] == "permanent"
    assert_carries(named(caplog.records, *OURS), "img-s", "logs/s.png", "0x2")


def test_orchestrator_lines_carry_the_run_and_are_written_once(orchestrators, caplog):
    with caplog.at_level(logging.INFO):
        _, status = run_orchestrator(orchestrators, Script([OK_EXTRACT], [OK_STORE]))
    assert status["runtimeStatus"] == "Completed"
    lines = named(caplog.records, *OURS)
    assert [r.getMessage().split(MARKER)[0] for r in lines] == ["ImageOrchestrator holiday/eiffel.jpg: processed"]
    assert_carries(lines, "img-test", "holiday/eiffel.jpg", "0x8DC")


def test_blob_trigger_starter_lines_carry_the_version_it_started(worker, engine, storage_env, sql_env, caplog):
    ref = upload_bytes(storage_env, INPUT_CONTAINER, "logs/trigger.jpg", samples.encode(samples.picture(), "JPEG"))
    with caplog.at_level(logging.INFO):
        asyncio.run(deliver(worker, engine, [fired(storage_env, "logs/trigger.jpg")]))
    lines = named(caplog.records, *OURS)
    assert len(lines) >= 2  # the starter's "started …" and the adapter's own line
    assert_carries(lines, instance_id_for(INPUT_CONTAINER, ref.name, ref.etag), ref.name, ref.etag)


def test_event_grid_starter_lines_carry_the_event_version(worker, engine, storage_env, sql_env, caplog):
    ref = upload_bytes(storage_env, INPUT_CONTAINER, "logs/event.jpg", samples.encode(samples.picture(), "JPEG"))
    event = blob_created_event(ref, "00000000000000000000000000000001")

    async def send() -> None:
        async with client_endpoint(engine) as binding:
            await worker.invoke_async("EventGridStarter", {"event": Data("json", json.dumps(event)),
                                                           "starter": Data("string", binding)},
                                      {"data": Data.json_of(event["data"])})

    with caplog.at_level(logging.INFO):
        asyncio.run(send())
    lines = named(caplog.records, *OURS)
    assert any("EventGridStarter" in r.getMessage() for r in lines)
    assert_carries(lines, instance_id_for(INPUT_CONTAINER, ref.name, ref.etag), ref.name, ref.etag)


def test_reconcile_lines_name_each_version_started(worker, engine, storage, monkeypatch, sql_env, caplog):
    """The timer's line names the pass's instance; a ReconcilePage step's start lines name each
    version it started (bound by the starter in that start's task)."""
    monkeypatch.setenv("AzureWebJobsStorage", storage)
    ensure_container(storage, INPUT_CONTAINER)
    refs = {r.name: r for r in (upload_bytes(storage, INPUT_CONTAINER, f"logs/r{i}.png",
                                             samples.encode(samples.picture(seed=i), "PNG")) for i in range(3))}
    now = datetime.now(UTC)
    step = {"phase": "list", "cursor": None, "passId": "logs", "maxStarts": 100, "budgetSeconds": 30,
            "listPageSize": 5000, "rowPageSize": 100, "filter": None}

    async def tick() -> None:
        async with client_endpoint(engine) as binding:
            await worker.invoke_async("ReconcileBlobs", {
                "timer": Data("json", timer_input(None, now + timedelta(hours=1), now)),
                "starter": Data("string", binding)})
            await worker.invoke_async("ReconcilePage", {"step": Data("json", json.dumps(step)),
                                                        "starter": Data("string", binding)})

    with caplog.at_level(logging.INFO):
        asyncio.run(tick())
    [timer_line] = [r for r in named(caplog.records, "shared") if r.getMessage().startswith("started reconcile pass")]
    assert getattr(timer_line, "InstanceId", None) == RECONCILE_INSTANCE_ID
    started = [r for r in named(caplog.records, "shared") if r.getMessage().startswith("started img-")]
    assert len(started) == 3
    for record in started:
        ref = refs[record.BlobName]
        assert_carries([record], instance_id_for(INPUT_CONTAINER, ref.name, ref.etag), ref.name, ref.etag)
