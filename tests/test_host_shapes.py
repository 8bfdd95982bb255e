"""Every input the local host hands a function has the real host's shape; each test names its source.

Sources, with links, also in docs/host-protocol.md:
- blob trigger: blobs extension ``BlobTriggerBinding`` binding data; host ``GrpcMessageConversionExtensions``
  (strings as ``string``, other values as Newtonsoft ``json``); Azure.Storage.Blobs ``BlobProperties.cs``
  (property order and types); azure-sdk-for-net #34410 (``"eTag": {}``).
- durableClient: durable extension ``BindingHelper.DurableOrchestrationClientToString`` and
  ``HttpApiHandler`` (creation / management URLs, ``code`` key, local RPC listener).
- client HTTP API: the extension answers 404 with no body for an unknown instance, HTTP 500 with its
  JSON error for a start on a Pending/Running/ContinuedAsNew/Suspended id, and replaces a
  Completed/Failed/Terminated one (``overridableExistingInstanceStates: NonRunningStates``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re

import aiohttp
import azure.durable_functions as df
import pytest
from aiohttp import web
from azure.functions.blob import InputStream
from azure.storage.blob import ContentSettings
from azure_functions_runtime_v1.bindings.meta import from_incoming_proto

from devhost.blob_trigger import trigger_input
from devhost.client_api import build_app, client_binding
from devhost.engine import Engine, ManualClock
from devhost.services import free_port
from shared.blob_access import service_client

# Public properties of Azure.Storage.Blobs.Models.BlobProperties in declaration order (Newtonsoft's order).
BLOB_PROPERTIES_ORDER = [
    "LastModified", "CreatedOn", "Metadata", "ObjectReplicationDestinationPolicyId",
    "ObjectReplicationSourceProperties", "BlobType", "CopyCompletedOn", "CopyStatusDescription", "CopyId",
    "CopyProgress", "CopySource", "CopyStatus", "BlobCopyStatus", "IsIncrementalCopy", "DestinationSnapshot",
    "LeaseDuration", "LeaseState", "LeaseStatus", "ContentLength", "ContentType", "ETag", "ContentHash",
    "ContentEncoding", "ContentDisposition", "ContentLanguage", "CacheControl", "BlobSequenceNumber",
    "AcceptRanges", "BlobCommittedBlockCount", "IsServerEncrypted", "EncryptionKeySha256", "EncryptionScope",
    "AccessTier", "AccessTierInferred", "ArchiveStatus", "AccessTierChangedOn", "SmartAccessTier", "VersionId",
    "IsLatestVersion", "TagCount", "ExpiresOn", "IsSealed", "RehydratePriority", "LastAccessed",
    "ImmutabilityPolicy", "HasLegalHold",
]
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?\+00:00$")


@pytest.fixture
def delivered(worker, storage_env):
    """A 300 KB blob with metadata, fired as the host fires it and decoded by the worker's own code."""
    body = bytes(range(256)) * 1200
    name = "shapes/quote's ünïcode \"name\".jpg"
    blob = service_client(storage_env).get_blob_client("images-input", name)
    blob.upload_blob(body, overwrite=True, metadata={"source": "camera"},
                     content_settings=ContentSettings(content_type="image/jpeg",
                                                      content_md5=bytearray(hashlib.md5(body).digest())))
    fired = trigger_input(service_client(storage_env).get_container_client("images-input"), name,
                          "images-input/{name}")
    assert fired is not None
    protos = worker.protos
    binding = protos.ParameterBinding(name="myblob", data=protos.TypedData(bytes=fired.body))
    metadata = {k: v.to_proto(protos) for k, v in fired.metadata.items()}
    stream = from_incoming_proto("blobTrigger", binding, trigger_metadata=metadata)
    return body, name, blob.get_blob_properties(), fired, stream


def test_blob_trigger_sends_the_whole_body_as_bytes(delivered):
    body, name, _, fired, stream = delivered
    assert isinstance(stream, InputStream)
    assert stream.read() == body and len(fired.body) == len(body)  # the host downloads all of it
    assert stream.name == f"images-input/{name}"
    assert stream.length == len(body)
    assert stream.uri == json.loads(fired.metadata["Uri"].value) and "/images-input/shapes/" in stream.uri


def test_blob_trigger_metadata_keys_and_wire_types(delivered):
    _, name, _, fired, _ = delivered
    kinds = {k: v.kind for k, v in fired.metadata.items()}
    assert kinds == {"BlobTrigger": "string", "Uri": "json", "Properties": "json", "Metadata": "json",
                     "name": "string"}
    assert fired.metadata["name"].value == name
    assert json.loads(fired.metadata["Metadata"].value) == {"source": "camera"}


def test_blob_properties_have_the_newtonsoft_shape_with_an_empty_etag(delivered):
    body, _, props, _, stream = delivered
    shape = stream.blob_properties
    assert list(shape) == BLOB_PROPERTIES_ORDER
    assert shape["ETag"] == {}                                    # the version is NOT in the trigger
    assert shape["BlobType"] == 0 and shape["LeaseState"] == 0 and shape["LeaseStatus"] == 1
    assert shape["ContentLength"] == len(body) and shape["ContentType"] == "image/jpeg"
    assert shape["ContentHash"] == base64.b64encode(hashlib.md5(body).digest()).decode()
    assert TIME.match(shape["LastModified"]) and TIME.match(shape["CreatedOn"])
    assert shape["LastModified"] == props.last_modified.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    assert shape["CopyCompletedOn"] == "0001-01-01T00:00:00+00:00"   # unset DateTimeOffset
    assert "CopyId" in shape and shape["CopyId"] is None               # nulls kept
    assert shape["Metadata"] == {"source": "camera"}


def test_durable_client_binding_is_the_extensions_json():
    binding = json.loads(client_binding("http://127.0.0.1:7071", "ImageIndexHub", "k3y"))
    assert list(binding) == ["taskHubName", "connectionName", "creationUrls", "managementUrls", "baseUrl",
                             "requiredQueryStringParameters", "rpcBaseUrl", "httpBaseUrl",
                             "maxGrpcMessageSizeInBytes"]
    assert binding["rpcBaseUrl"] == "http://127.0.0.1:7071/durabletask/"
    assert binding["baseUrl"] == "http://127.0.0.1:7071/runtime/webhooks/durabletask"
    assert binding["requiredQueryStringParameters"] == "code=k3y"
    assert set(binding["creationUrls"]) == {"createNewInstancePostUri", "createAndWaitOnNewInstancePostUri"}
    assert set(binding["managementUrls"]) == {"id", "statusQueryGetUri", "sendEventPostUri", "terminatePostUri",
                                              "rewindPostUri", "purgeHistoryDeleteUri", "restartPostUri",
                                              "suspendPostUri", "resumePostUri"}
    assert binding["managementUrls"]["statusQueryGetUri"].endswith(
        "/instances/INSTANCEID?taskHub=ImageIndexHub&connection=Storage&code=k3y")
    assert binding["connectionName"] is None and binding["httpBaseUrl"] is None
    client = df.DurableOrchestrationClient(json.dumps(binding))
    assert client._orchestration_bindings.rpc_base_url == binding["rpcBaseUrl"]


def test_client_http_api_answers_as_the_extension_does():
    engine = Engine(":memory:", {"ImageOrchestrator": lambda ctx: "{}"}, {}, ManualClock())

    async def scenario() -> dict:
        runner = web.AppRunner(build_app(engine, "k3y"))
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        rpc = f"http://127.0.0.1:{port}/durabletask"
        out: dict = {}
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{rpc}/instances/img-none") as r:
                    out["unknown"] = (r.status, await r.read())
                async with http.post(f"{rpc}/orchestrators/ImageOrchestrator/img-1", json="{}") as r:
                    out["first"] = r.status
                async with http.post(f"{rpc}/orchestrators/ImageOrchestrator/img-1", json="{}") as r:
                    out["again"] = (r.status, await r.json())
                engine.db.execute("UPDATE instances SET status = 'Completed'")
                async with http.post(f"{rpc}/orchestrators/ImageOrchestrator/img-1", json="{}") as r:
                    out["replaced"] = r.status
                hook = f"http://127.0.0.1:{port}/runtime/webhooks/durabletask/instances/img-1"
                async with http.get(hook) as r:
                    out["no_key"] = r.status
                async with http.get(hook + "?code=k3y") as r:
                    out["with_key"] = r.status
        finally:
            await runner.cleanup()
        return out

    out = asyncio.run(scenario())
    assert out["unknown"] == (404, b"")
    assert out["first"] == 202
    status, body = out["again"]
    assert status == 500
    assert body["ExceptionType"] == "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException"
    assert "already exists" in body["ExceptionMessage"]
    assert out["replaced"] == 202 and engine.status("img-1")["runtimeStatus"] == "Pending"
    assert out["no_key"] == 401 and out["with_key"] == 202
