"""Conformance with Azure's Python worker: the app loads through azure-functions-runtime-v1, and
known-bad variants fail there the way they fail on Azure.

Each negative control shows both halves: called directly, as our first local host did, the bad
function "works"; through the worker (the code Azure runs on Python 3.13) it is refused with the
worker's own message. So each test fails if the check it relies on were missing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import json
import sys
from pathlib import Path

import pytest

from devhost.functions import APP_ROOT, BindingError, check_v1_layout, discover, load_spec
from devhost.worker import Data, FunctionLoadFailed, FunctionWorker, InvocationFailed
from tests.conftest import add_function

STARTER_BINDINGS = [
    {"name": "myblob", "type": "blobTrigger", "direction": "in", "path": "images-input/{name}",
     "connection": "AzureWebJobsStorage"},
    {"name": "starter", "type": "durableClient", "direction": "in"},
]
ACTIVITY_BINDINGS = [{"name": "payload", "type": "activityTrigger", "direction": "in"}]
CLIENT_JSON = json.dumps({"taskHubName": "T", "rpcBaseUrl": "http://127.0.0.1:9/durabletask/"})


def direct_main(folder: Path):
    """The function's ``main`` imported directly, bypassing the worker (the old local-host path)."""
    if str(folder.parent) not in sys.path:
        sys.path.insert(0, str(folder.parent))
    return importlib.import_module(folder.name).main


def test_every_function_folder_loads_through_the_worker(worker: FunctionWorker):
    assert set(worker.functions) >= {"BlobTriggerStarter", "ImageOrchestrator", "ExtractMetadata",
                                     "StoreMetadata"}
    assert not {k: v for k, v in worker.load_errors.items() if k in discover()}
    for name, spec in discover().items():
        assert worker.functions[name].bindings == spec.bindings


def test_app_is_a_v1_app_with_no_function_app_py(tmp_path: Path):
    check_v1_layout(APP_ROOT)
    (tmp_path / "function_app.py").write_text("import azure.functions as func\napp = func.FunctionApp()\n")
    with pytest.raises(BindingError, match="v2 programming model"):
        check_v1_layout(tmp_path)


def test_durable_client_annotated_as_the_client_class_is_refused_at_load(worker, tmp_path):
    code = ("import azure.durable_functions as df\nimport azure.functions as func\n\n\n"
            "async def main(myblob: func.InputStream, starter: df.DurableOrchestrationClient) -> None:\n"
            "    return None\n")
    folder = tmp_path / "ClientAnnotatedStarter"
    with pytest.raises(FunctionLoadFailed, match='"durableClient" does not match its Python annotation'):
        add_function(worker, tmp_path, folder.name, STARTER_BINDINGS, code)
    assert asyncio.run(direct_main(folder)(None, CLIENT_JSON)) is None  # without the check: "fine"


def test_parameter_missing_from_function_json_is_refused_at_load(worker, tmp_path):
    code = "def main(item: dict) -> dict:\n    return item\n"
    folder = tmp_path / "RenamedActivity"
    with pytest.raises(FunctionLoadFailed, match="declared in Python but not in function.json"):
        add_function(worker, tmp_path, folder.name, ACTIVITY_BINDINGS, code)
    assert direct_main(folder)({"a": 1}) == {"a": 1}


def test_context_parameter_of_the_wrong_type_is_refused_at_load(worker, tmp_path):
    code = "def main(payload: dict, context: dict) -> dict:\n    return payload\n"
    folder = tmp_path / "WrongContextActivity"
    with pytest.raises(FunctionLoadFailed, match='"context" parameter is expected to be of type azure.functions.Context'):
        add_function(worker, tmp_path, folder.name, ACTIVITY_BINDINGS, code)
    assert direct_main(folder)({"a": 1}, {}) == {"a": 1}


def test_return_binding_with_direction_in_is_refused_at_load(worker, tmp_path):
    bindings = [*ACTIVITY_BINDINGS, {"name": "$return", "type": "blob", "direction": "in", "path": "x/y"}]
    with pytest.raises(FunctionLoadFailed, match='"\\$return" binding must have direction set to "out"'):
        add_function(worker, tmp_path, "InReturnActivity", bindings, "def main(payload):\n    return payload\n")


def test_starter_that_returns_a_value_fails_at_invocation(worker, tmp_path):
    code = "async def main(myblob, starter) -> str:\n    return 'started'\n"
    folder = add_function(worker, tmp_path, "ReturningStarter", STARTER_BINDINGS, code)
    with pytest.raises(InvocationFailed, match="without a \\$return binding"):
        worker.invoke("ReturningStarter", {"myblob": Data("bytes", b"x"), "starter": Data("string", CLIENT_JSON)},
                      {"BlobTrigger": Data("string", "images-input/x")})
    assert asyncio.run(direct_main(folder)(None, CLIENT_JSON)) == "started"


def test_activity_returning_a_datetime_fails_at_invocation(worker, tmp_path):
    code = "import datetime\n\n\ndef main(payload: dict):\n    return {'at': datetime.datetime(2026, 1, 1)}\n"
    folder = add_function(worker, tmp_path, "DatetimeActivity", ACTIVITY_BINDINGS, code)
    with pytest.raises(InvocationFailed, match="activity trigger output must be json serializable"):
        worker.invoke("DatetimeActivity", {"payload": Data("json", "{}")})
    assert direct_main(folder)({}) == {"at": dt.datetime(2026, 1, 1)}


def test_app_activities_pass_the_worker_encoding(worker):
    """A real activity's output leaves the worker as TypedData json (a configuration error here)."""
    out = worker.invoke("StoreMetadata", {"payload": Data("json", json.dumps({"record": {}}))})
    assert out is not None and out.kind == "json"
    assert json.loads(out.value)["outcome"] in {"permanent", "transient"}


def test_unsupported_trigger_is_a_clear_local_host_error(tmp_path: Path):
    folder = tmp_path / "HttpThing"
    folder.mkdir()
    (folder / "function.json").write_text(json.dumps({"bindings": [
        {"name": "req", "type": "httpTrigger", "direction": "in"}]}))
    with pytest.raises(BindingError, match="not supported by the local host"):
        load_spec(folder)
