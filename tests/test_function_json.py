"""The four function folders: bindings as the Functions host will read them."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from devhost.functions import APP_ROOT, BindingError, discover, load_function

EXPECTED = {
    "BlobTriggerStarter": [("myblob", "blobTrigger", "in"), ("starter", "durableClient", "in")],
    "ImageOrchestrator": [("context", "orchestrationTrigger", "in")],
    "ExtractMetadata": [("payload", "activityTrigger", "in")],
    "StoreMetadata": [("payload", "activityTrigger", "in")],
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_bindings_types_directions_and_names_match_main(name):
    config = json.loads((APP_ROOT / name / "function.json").read_text())
    got = [(b["name"], b["type"], b["direction"]) for b in config["bindings"]]
    assert got == EXPECTED[name]
    spec = discover()[name]
    assert list(inspect.signature(spec.main).parameters) == [b[0] for b in EXPECTED[name]]


def test_blob_trigger_watches_images_input_on_the_storage_connection_with_polling():
    trigger = json.loads((APP_ROOT / "BlobTriggerStarter" / "function.json").read_text())["bindings"][0]
    assert trigger["path"] == "images-input/{name}"
    assert trigger["connection"] == "AzureWebJobsStorage"
    assert "source" not in trigger  # polling: the source that works with Azurite


def test_host_json_and_settings():
    host = json.loads((APP_ROOT / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensionBundle"]["version"] == "[4.*, 5.0.0)"
    assert host["extensions"]["durableTask"]["hubName"]
    assert host["extensions"]["blobs"]["poisonBlobThreshold"] >= 1
    values = json.loads((APP_ROOT / "local.settings.json").read_text())["Values"]
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert values["SqlConnectionString"].startswith("Driver={SQLite3};")
    requirements = (APP_ROOT / "requirements.txt").read_text()
    assert "azure-functions-durable>=1.7,<2" in requirements


def test_shared_never_imports_azure_functions():
    for path in (APP_ROOT / "shared").glob("*.py"):
        text = path.read_text()
        assert "import azure.functions" not in text and "from azure.functions" not in text, path


def test_local_host_and_tests_are_not_deployed():
    ignored = (APP_ROOT / ".funcignore").read_text().split()
    for folder in ("devhost", "tests", "bench", ".venv", "local.settings.json"):
        assert folder in ignored


def test_mismatched_binding_name_is_a_clear_error(tmp_path: Path):
    folder = tmp_path / "BadFunction"
    folder.mkdir()
    (folder / "function.json").write_text(json.dumps({"bindings": [
        {"name": "item", "type": "activityTrigger", "direction": "in"}]}))
    (folder / "__init__.py").write_text("def main(payload):\n    return payload\n")
    with pytest.raises(BindingError, match="do not match the binding names"):
        load_function(folder)


def test_unsupported_binding_is_a_clear_error(tmp_path: Path):
    folder = tmp_path / "HttpThing"
    folder.mkdir()
    (folder / "function.json").write_text(json.dumps({"bindings": [
        {"name": "req", "type": "httpTrigger", "direction": "in"}]}))
    (folder / "__init__.py").write_text("def main(req):\n    return None\n")
    with pytest.raises(BindingError, match="not supported by the local host"):
        load_function(folder)
