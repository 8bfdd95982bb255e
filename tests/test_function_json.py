"""The function folders: bindings as the Functions host will read them."""

from __future__ import annotations

import json

import pytest

from devhost.functions import APP_ROOT

EXPECTED = {
    "BlobTriggerStarter": [("myblob", "blobTrigger", "in"), ("starter", "durableClient", "in")],
    "ImageOrchestrator": [("context", "orchestrationTrigger", "in")],
    "ExtractMetadata": [("payload", "activityTrigger", "in")],
    "StoreMetadata": [("payload", "activityTrigger", "in")],
    "MakePreview": [("payload", "activityTrigger", "in")],
    "EventGridStarter": [("event", "eventGridTrigger", "in"), ("starter", "durableClient", "in")],
    "ReconcileBlobs": [("timer", "timerTrigger", "in"), ("starter", "durableClient", "in")],
    "PurgeHistory": [("timer", "timerTrigger", "in"), ("starter", "durableClient", "in")],
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_bindings_types_directions_and_names(name, worker):
    config = json.loads((APP_ROOT / name / "function.json").read_text())
    got = [(b["name"], b["type"], b["direction"]) for b in config["bindings"]]
    assert got == EXPECTED[name]
    assert name in worker.functions  # the worker checked main's parameters and annotations against them


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
    assert 'azure-functions>=2.0,<3; python_version >= "3.13"' in requirements


def test_shared_never_imports_azure_functions():
    for path in (APP_ROOT / "shared").glob("*.py"):
        text = path.read_text()
        assert "import azure.functions" not in text and "from azure.functions" not in text, path


def test_local_host_and_tests_are_not_deployed():
    ignored = (APP_ROOT / ".funcignore").read_text().split()
    for folder in ("devhost", "tests", "bench", ".venv", "local.settings.json"):
        assert folder in ignored


def test_reconcile_schedule_comes_from_an_app_setting():
    trigger = json.loads((APP_ROOT / "ReconcileBlobs" / "function.json").read_text())["bindings"][0]
    assert trigger["schedule"] == "%ReconcileSchedule%"
    assert json.loads((APP_ROOT / "local.settings.json").read_text())["Values"]["ReconcileSchedule"]


def test_disabled_setting_switches_a_function_off_at_discovery(monkeypatch):
    """AzureWebJobs.<Function>.Disabled = true or 1 (MicrosoftDocs disable-function.md)."""
    from devhost.functions import discover, is_disabled

    assert "EventGridStarter" in discover()
    for value in ("true", "True", "1"):
        monkeypatch.setenv("AzureWebJobs.EventGridStarter.Disabled", value)
        assert is_disabled("EventGridStarter") and "EventGridStarter" not in discover()
    for value in ("false", "0", ""):
        monkeypatch.setenv("AzureWebJobs.EventGridStarter.Disabled", value)
        assert "EventGridStarter" in discover()
