"""A blob whose starter keeps failing is set aside as poison, with the reason, after bounded tries."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from devhost.host import HostConfig, LocalHost
from shared.blob_access import upload_bytes


def _app_with_failing_starter(root: Path) -> Path:
    folder = root / "AlwaysFailingStarter"
    folder.mkdir(parents=True)
    (folder / "function.json").write_text(json.dumps({"bindings": [
        {"name": "myblob", "type": "blobTrigger", "direction": "in", "path": "images-input/{name}",
         "connection": "AzureWebJobsStorage"},
        {"name": "starter", "type": "durableClient", "direction": "in"}]}))
    (folder / "__init__.py").write_text(
        "async def main(myblob, starter):\n"
        "    raise RuntimeError('starter broke on ' + myblob.name)\n")
    return root


def test_failing_starter_goes_to_poison_after_five_tries_and_stays_there(azurite, tmp_path, monkeypatch):
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    ref = upload_bytes(azurite.connection_string, "images-input", "poison/p.png", b"\x89PNG")
    config = HostConfig(state_dir=tmp_path / "state", app_root=_app_with_failing_starter(tmp_path / "app"),
                        poll_interval=0.05, max_start_tries=5)

    async def scenario() -> list[dict]:
        host = LocalHost(config)
        serving = asyncio.create_task(host.serve())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(p["name"] == ref.name for p in host.poison()):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # more polls: a poisoned blob must not be retried
        poison = host.poison()
        tries = host.engine.db.execute("SELECT tries FROM receipts WHERE name = ?", (ref.name,)).fetchone()[0]
        host.stop()
        await serving
        return [dict(p, final_tries=tries) for p in poison]

    poison = [p for p in asyncio.run(scenario()) if p["name"] == ref.name]
    assert len(poison) == 1
    assert poison[0]["etag"] == ref.etag and poison[0]["tries"] == 5 and poison[0]["final_tries"] == 5
    assert "starter broke on images-input/poison/p.png" in poison[0]["reason"]
