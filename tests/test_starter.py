"""BlobTriggerStarter through Microsoft's worker, fed exactly what the host sends, on real Azurite.

Each delivery is an InvocationRequest whose blob input is the downloaded body as bytes and whose
trigger metadata is the blobs extension's (``Properties`` with ``ETag: {}``; devhost.blob_trigger
cites the sources); the durableClient input is the extension's JSON, and the client is the real
``DurableOrchestrationClient`` talking HTTP to the local endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import azure.durable_functions as df
import pytest
from aiohttp import web
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus

from devhost.blob_trigger import TriggerInput, trigger_input
from devhost.client_api import build_app, client_binding
from devhost.engine import Engine, ManualClock, python_activity
from devhost.services import free_port
from devhost.worker import Data, FunctionWorker
from shared.blob_access import service_client, upload_bytes
from shared.models import EXTRACTOR_VERSION
from shared.starter import blob_path_from_trigger, instance_id_for

CONTAINER = "images-input"


@contextlib.asynccontextmanager
async def client_endpoint(engine: Engine) -> AsyncIterator[str]:
    """The durable client HTTP API on a free loopback port; yields the durableClient binding JSON."""
    runner = web.AppRunner(build_app(engine, "test-key"))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield client_binding(f"http://127.0.0.1:{port}", "TestHub", "test-key")
    finally:
        await runner.cleanup()


def fired(conn: str, name: str) -> TriggerInput:
    """What the host sends for the blob as it is now (it downloads the whole body first)."""
    found = trigger_input(service_client(conn).get_container_client(CONTAINER), name, f"{CONTAINER}/{{name}}")
    assert found is not None
    return found


async def deliver(worker: FunctionWorker, engine: Engine, deliveries: list[TriggerInput],
                  concurrent: bool = False) -> list[Any]:
    async with client_endpoint(engine) as binding:
        calls = [worker.invoke_async("BlobTriggerStarter", {"myblob": Data("bytes", d.body),
                                                             "starter": Data("string", binding)}, d.metadata)
                 for d in deliveries]
        if concurrent:
            return await asyncio.gather(*calls, return_exceptions=True)
        return [await c for c in calls]


@pytest.fixture(autouse=True)
def _database(sql_env: str) -> str:
    """BlobTriggerStarter reads the row of the version it is asked to start (SqlConnectionString)."""
    return sql_env


@pytest.fixture
def engine(orchestrators) -> Engine:
    done = python_activity(lambda p: {"outcome": "ok", "applied": True, "metadata": {"width": 1}})
    return Engine(":memory:", orchestrators, {"ExtractMetadata": done, "StoreMetadata": done}, ManualClock())


def instances(engine: Engine) -> list[dict[str, Any]]:
    return engine.query()


def test_instance_id_is_deterministic_valid_and_per_version():
    weird = "ünïcode 'q' \"d\" / ? # \\ " * 12
    a = instance_id_for("images-input", weird, '"0x1"')
    assert a == instance_id_for("images-input", weird, "0x1")
    assert a == instance_id_for("images-input", weird, "0x1", EXTRACTOR_VERSION)
    assert a != instance_id_for("images-input", weird, "0x1", EXTRACTOR_VERSION + 1)  # re-index: new id
    assert a != instance_id_for("images-input", weird, "0x2")
    assert a != instance_id_for("images-input", weird + "x", "0x1")
    assert len(a) < 100 and not a.startswith("@")  # Durable Task Scheduler allows 100 characters
    assert re.fullmatch(r"[A-Za-z0-9-]+", a)


def test_trigger_path_gives_container_and_name():
    assert blob_path_from_trigger("images-input/holiday/a b.jpg") == ("images-input", "holiday/a b.jpg")
    for bad in ("", "images-input", "images-input/", "/a.jpg"):
        with pytest.raises(ValueError, match="no container part"):
            blob_path_from_trigger(bad)


def test_starter_takes_the_version_from_storage_not_from_the_trigger(worker, engine, storage_env):
    ref = upload_bytes(storage_env, CONTAINER, "st/a.jpg", b"\xff\xd8 not really a jpeg", "image/jpeg")
    asyncio.run(deliver(worker, engine, [fired(storage_env, "st/a.jpg")]))
    [inst] = instances(engine)
    assert inst["name"] == "ImageOrchestrator" and inst["runtimeStatus"] == "Pending"
    assert inst["instanceId"] == instance_id_for(CONTAINER, "st/a.jpg", ref.etag)
    blob = inst["input"]["blob"]
    assert (blob["name"], blob["etag"], blob["size"]) == ("st/a.jpg", ref.etag, ref.size)
    assert blob["last_modified"] == ref.last_modified and blob["content_type"] == "image/jpeg"
    assert blob["url"].endswith("/images-input/st/a.jpg")
    assert inst["input"]["retryDelaysSeconds"] == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]


def test_duplicate_delivery_while_pending_or_after_completion_starts_nothing(worker, engine, storage_env):
    upload_bytes(storage_env, CONTAINER, "st/dup.jpg", b"x" * 100)
    delivery = fired(storage_env, "st/dup.jpg")
    asyncio.run(deliver(worker, engine, [delivery, delivery]))
    assert len(instances(engine)) == 1
    created = instances(engine)[0]["createdTime"]
    engine.run_until_idle()
    assert instances(engine)[0]["runtimeStatus"] == "Completed"
    asyncio.run(deliver(worker, engine, [delivery]))
    [inst] = instances(engine)
    assert inst["runtimeStatus"] == "Completed" and inst["createdTime"] == created


def test_concurrent_duplicate_deliveries_start_one_instance(worker, engine, storage_env):
    upload_bytes(storage_env, CONTAINER, "st/conc.jpg", b"x" * 100)
    results = asyncio.run(deliver(worker, engine, [fired(storage_env, "st/conc.jpg")] * 5, concurrent=True))
    assert not [r for r in results if isinstance(r, BaseException)]
    assert len(instances(engine)) == 1
    assert len(engine.db.execute("SELECT * FROM inbox").fetchall()) == 1


def test_blob_overwritten_before_its_trigger_starts_the_version_there_now(worker, engine, storage_env):
    upload_bytes(storage_env, CONTAINER, "st/over.jpg", b"first")
    stale = fired(storage_env, "st/over.jpg")          # the host downloaded version 1 ...
    v2 = upload_bytes(storage_env, CONTAINER, "st/over.jpg", b"second version")  # ... then it changed
    asyncio.run(deliver(worker, engine, [stale]))
    [inst] = instances(engine)
    assert inst["instanceId"] == instance_id_for(CONTAINER, "st/over.jpg", v2.etag)
    assert inst["input"]["blob"]["size"] == len(b"second version")
    asyncio.run(deliver(worker, engine, [fired(storage_env, "st/over.jpg")]))  # the trigger for v2
    assert len(instances(engine)) == 1


def test_blob_deleted_before_its_trigger_starts_nothing_and_succeeds(worker, engine, storage_env, caplog):
    upload_bytes(storage_env, CONTAINER, "st/gone.jpg", b"soon gone")
    delivery = fired(storage_env, "st/gone.jpg")
    service_client(storage_env).get_blob_client(CONTAINER, "st/gone.jpg").delete_blob()
    with caplog.at_level(logging.WARNING, logger="shared.starter"):
        results = asyncio.run(deliver(worker, engine, [delivery]))
    assert results == [None]                         # a success: the host will not retry or poison it
    assert instances(engine) == []
    assert "deleted before its trigger ran" in caplog.text


def test_new_version_gets_its_own_instance(worker, engine, storage_env):
    upload_bytes(storage_env, CONTAINER, "st/v.jpg", b"one")
    first = fired(storage_env, "st/v.jpg")
    asyncio.run(deliver(worker, engine, [first]))
    upload_bytes(storage_env, CONTAINER, "st/v.jpg", b"two!")
    asyncio.run(deliver(worker, engine, [fired(storage_env, "st/v.jpg")]))
    assert len(instances(engine)) == 2


def test_failed_run_may_be_started_again(worker, engine, storage_env):
    upload_bytes(storage_env, CONTAINER, "st/f.jpg", b"abc")
    delivery = fired(storage_env, "st/f.jpg")
    asyncio.run(deliver(worker, engine, [delivery]))
    iid = instances(engine)[0]["instanceId"]
    engine.db.execute("UPDATE instances SET status = 'Failed'")
    engine.db.execute("DELETE FROM inbox")
    asyncio.run(deliver(worker, engine, [delivery]))
    assert engine.status(iid)["runtimeStatus"] == "Pending"
    engine.run_until_idle()
    assert engine.status(iid)["runtimeStatus"] == "Completed"


def test_client_status_api_reports_missing_and_existing_instances(worker, engine):
    async def scenario() -> tuple[Any, Any]:
        async with client_endpoint(engine) as binding:
            client = df.DurableOrchestrationClient(binding)
            missing = await worker.run(client.get_status("img-nope"))
            iid = await worker.run(client.start_new("ImageOrchestrator", "img-1",
                                                    {"blob": {"container": "c", "name": "n", "etag": "e"}}))
            found = await worker.run(client.get_status(iid, show_input=True))
            return missing, found

    missing, found = asyncio.run(scenario())
    assert not missing
    assert found.runtime_status.value == "Pending"
    assert found.input_ == {"blob": {"container": "c", "name": "n", "etag": "e"}}


def test_client_queries_instances_by_status_and_prefix(worker, engine):
    async def scenario() -> tuple[Any, Any, Any]:
        async with client_endpoint(engine) as binding:
            client = df.DurableOrchestrationClient(binding)
            for i in range(3):
                await worker.run(client.start_new("ImageOrchestrator", f"img-q{i}",
                                                  {"blob": {"container": "c", "name": f"n{i}", "etag": "e"}}))
            engine.terminate("img-q0", "test")
            everything = await worker.run(client.get_status_all())
            pending = await worker.run(client.get_status_by(runtime_status=[OrchestrationRuntimeStatus.Pending]))
            prefixed = await worker.run(client.get_status_by(instance_id_prefix="img-q1"))
            return everything, pending, prefixed

    everything, pending, prefixed = asyncio.run(scenario())
    assert len(everything) == 3
    assert sorted(s.instance_id for s in pending) == ["img-q1", "img-q2"]
    assert [s.instance_id for s in prefixed] == ["img-q1"]
