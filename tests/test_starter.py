"""BlobTriggerStarter with a real DurableOrchestrationClient over HTTP to the local endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import azure.durable_functions as df
import pytest
from aiohttp import web
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus
from azure.durable_functions.models.utils import http_utils
from azure.functions.blob import InputStream

import BlobTriggerStarter
from devhost.client_api import build_app, client_binding
from devhost.engine import Engine, ManualClock
from devhost.functions import discover, registries
from devhost.services import free_port
from shared.starter import blob_ref_from_trigger, instance_id_for


def trigger(name: str, etag: str = '"0x8DC1"', size: int = 1234) -> InputStream:
    props = {"ETag": etag, "ContentLength": size, "LastModified": "2026-01-01T10:00:00+00:00",
             "ContentType": "image/jpeg"}
    return InputStream(data=b"", name=f"images-input/{name}", length=size,
                            uri=f"http://127.0.0.1:10000/devstoreaccount1/images-input/{name}",
                            blob_properties=props)


@contextlib.asynccontextmanager
async def client_endpoint(engine: Engine) -> AsyncIterator[str]:
    """The durable client HTTP API on a free loopback port; yields the durableClient binding JSON."""
    runner = web.AppRunner(build_app(engine))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield client_binding(f"http://127.0.0.1:{port}/durabletask/", "TestHub")
    finally:
        await http_utils._close_session()
        await runner.cleanup()


async def _serve(engine: Engine, deliveries: list[InputStream], concurrent: bool = False) -> list[Any]:
    async with client_endpoint(engine) as binding:
        calls = [BlobTriggerStarter.main(d, binding) for d in deliveries]
        if concurrent:
            return await asyncio.gather(*calls, return_exceptions=True)
        return [await c for c in calls]


@pytest.fixture
def engine() -> Engine:
    orchestrators, _ = registries(discover())
    done = {"outcome": "ok", "applied": True, "metadata": {"width": 1}}
    return Engine(":memory:", orchestrators, {"ExtractMetadata": lambda p: done,
                                              "StoreMetadata": lambda p: done}, ManualClock())


def instances(engine: Engine) -> list[dict[str, Any]]:
    return engine.query()


def test_instance_id_is_deterministic_valid_and_per_version():
    weird = "ünïcode 'q' \"d\" / ? # \\ " * 12
    a = instance_id_for("images-input", weird, '"0x1"')
    assert a == instance_id_for("images-input", weird, "0x1")
    assert a != instance_id_for("images-input", weird, "0x2")
    assert a != instance_id_for("images-input", weird + "x", "0x1")
    assert len(a) < 256 and not a.startswith("@")
    assert re.fullmatch(r"[A-Za-z0-9-]+", a)


def test_blob_ref_comes_from_trigger_metadata_not_the_body():
    stream = trigger("holiday/a.jpg")
    ref = blob_ref_from_trigger(stream.name, stream.uri, stream.length, stream.blob_properties)
    assert (ref.container, ref.name, ref.etag, ref.size) == ("images-input", "holiday/a.jpg", "0x8DC1", 1234)
    assert ref.content_type == "image/jpeg" and ref.url.endswith("/holiday/a.jpg")
    with pytest.raises(ValueError, match="no ETag"):
        blob_ref_from_trigger("images-input/a.jpg", None, 1, {})


def test_starter_starts_orchestration_with_blob_reference(engine):
    asyncio.run(_serve(engine, [trigger("a.jpg")]))
    [inst] = instances(engine)
    assert inst["name"] == "ImageOrchestrator" and inst["runtimeStatus"] == "Pending"
    assert inst["instanceId"] == instance_id_for("images-input", "a.jpg", "0x8DC1")
    assert inst["input"]["blob"]["name"] == "a.jpg"
    assert inst["input"]["blob"]["etag"] == "0x8DC1"
    assert inst["input"]["retryDelaysSeconds"] == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]


def test_duplicate_delivery_while_pending_or_after_completion_starts_nothing(engine):
    asyncio.run(_serve(engine, [trigger("a.jpg"), trigger("a.jpg")]))
    assert len(instances(engine)) == 1
    history_before = engine.status(instances(engine)[0]["instanceId"], show_history=True)
    engine.run_until_idle()
    assert instances(engine)[0]["runtimeStatus"] == "Completed"
    asyncio.run(_serve(engine, [trigger("a.jpg")]))
    [inst] = instances(engine)
    assert inst["runtimeStatus"] == "Completed"
    assert history_before["createdTime"] == inst["createdTime"]


def test_concurrent_duplicate_deliveries_start_one_instance(engine):
    results = asyncio.run(_serve(engine, [trigger("a.jpg")] * 5, concurrent=True))
    assert not [r for r in results if isinstance(r, BaseException)]
    assert len(instances(engine)) == 1
    assert len(engine.db.execute("SELECT * FROM inbox").fetchall()) == 1


def test_new_version_gets_its_own_instance(engine):
    asyncio.run(_serve(engine, [trigger("a.jpg", '"0x1"'), trigger("a.jpg", '"0x2"')]))
    assert len(instances(engine)) == 2


def test_failed_run_may_be_started_again(engine):
    asyncio.run(_serve(engine, [trigger("a.jpg")]))
    iid = instances(engine)[0]["instanceId"]
    engine.db.execute("UPDATE instances SET status = 'Failed'")
    engine.db.execute("DELETE FROM inbox")
    asyncio.run(_serve(engine, [trigger("a.jpg")]))
    status = engine.status(iid)
    assert status["runtimeStatus"] == "Pending"
    engine.run_until_idle()
    assert engine.status(iid)["runtimeStatus"] == "Completed"


def test_client_status_api_reports_missing_and_existing_instances(engine):
    async def scenario() -> tuple[Any, Any]:
        async with client_endpoint(engine) as binding:
            client = df.DurableOrchestrationClient(binding)
            missing = await client.get_status("img-nope")
            iid = await client.start_new("ImageOrchestrator", "img-1", {"blob": {"container": "c", "name": "n",
                                                                                 "etag": "e"}})
            found = await client.get_status(iid, show_input=True)
            return missing, found

    missing, found = asyncio.run(scenario())
    assert not missing
    assert found.runtime_status.value == "Pending" and found.input_ == {"blob": {"container": "c",
                                                                                 "name": "n", "etag": "e"}}
    assert json.loads(engine.db.execute("SELECT input FROM instances").fetchone()[0])["blob"]["name"] == "n"


def test_client_queries_instances_by_status_and_prefix(engine):
    async def scenario() -> tuple[Any, Any, Any]:
        async with client_endpoint(engine) as binding:
            client = df.DurableOrchestrationClient(binding)
            for i in range(3):
                await client.start_new("ImageOrchestrator", f"img-q{i}", {"blob": {"container": "c",
                                                                                  "name": f"n{i}", "etag": "e"}})
            engine.terminate("img-q0", "test")
            everything = await client.get_status_all()
            pending = await client.get_status_by(runtime_status=[OrchestrationRuntimeStatus.Pending])
            prefixed = await client.get_status_by(instance_id_prefix="img-q1")
            return everything, pending, prefixed

    everything, pending, prefixed = asyncio.run(scenario())
    assert len(everything) == 3
    assert sorted(s.instance_id for s in pending) == ["img-q1", "img-q2"]
    assert [s.instance_id for s in prefixed] == ["img-q1"]
