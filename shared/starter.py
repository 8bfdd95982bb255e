"""Starting one orchestration per blob version, at most once.

The blob trigger can deliver a version more than once (two hosts sharing a
storage account, a host id change, a replayed receipt). The instance id is
derived from container + name + ETag, and a version whose instance is pending,
running or completed is not started again. A failed or terminated one may be:
the Durable extension then replaces it. The race between the status check and
the start is closed by the extension refusing a duplicate id of a running
instance, and, past that, by the idempotent store.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from shared.blob_access import blob_version
from shared.log_context import bind
from shared.models import BlobRef, normalise_etag
from shared.orchestration import orchestration_input
from shared.settings import ORCHESTRATOR_NAME

log = logging.getLogger(__name__)

# Runtime statuses under which a repeated delivery must not start the version again.
DO_NOT_RESTART = frozenset({"Pending", "Running", "Completed", "ContinuedAsNew", "Suspended"})


def instance_id_for(container: str, name: str, etag: str) -> str:
    """A valid Durable instance id (no '/', '\\', '?', '#', under 256 chars) for one blob version."""
    key = f"{container}\n{name}\n{normalise_etag(etag)}".encode()
    return "img-" + hashlib.sha256(key).hexdigest()


def blob_path_from_trigger(path: str) -> tuple[str, str]:
    """(container, name) from the trigger's ``BlobTrigger`` path ("images-input/a/b.jpg")."""
    container, _, name = (path or "").partition("/")
    if not container or not name:
        raise ValueError(f"blob trigger path {path!r} has no container part")
    return container, name


@dataclass(frozen=True)
class StartResult:
    instance_id: str
    started: bool
    existing_status: str | None = None


async def start_for_blob(client: Any, blob: BlobRef, retry_delays: tuple[float, ...]) -> StartResult:
    """Start ImageOrchestrator for this blob version unless a run already covers it."""
    instance_id = instance_id_for(blob.container, blob.name, blob.etag)
    bind(instance_id=instance_id, blob_name=blob.name, etag=blob.etag)
    status = await client.get_status(instance_id)
    runtime = getattr(status, "runtime_status", None)
    existing = getattr(runtime, "value", runtime) if status else None
    if existing in DO_NOT_RESTART:
        log.info("blob %r version %s already has instance %s (%s): not starting again",
                 blob.name, blob.etag, instance_id, existing)
        return StartResult(instance_id, False, existing)
    try:
        await client.start_new(ORCHESTRATOR_NAME, instance_id, orchestration_input(blob, retry_delays))
    except Exception as exc:
        if "already exists" in str(exc).lower() or "OrchestrationAlreadyExists" in str(exc):
            log.info("instance %s was started by a concurrent delivery", instance_id)
            return StartResult(instance_id, False, "Running")
        raise
    log.info("started %s for blob %r version %s", instance_id, blob.name, blob.etag)
    return StartResult(instance_id, True, existing)


async def start_for_trigger(client: Any, connection_string: str, path: str,
                            retry_delays: tuple[float, ...]) -> StartResult | None:
    """The blob trigger's start: the version comes from storage (one Get Blob Properties call).

    The trigger's own ``Properties`` cannot say which version fired (the host sends ``ETag: {}``),
    and by the time the trigger runs the blob may have been overwritten (start the version that is
    there now: the trigger for it then finds it started) or deleted (nothing to index: return None,
    so the host records success and nothing is poisoned).
    """
    container, name = blob_path_from_trigger(path)
    blob = await asyncio.to_thread(blob_version, connection_string, container, name)
    if blob is None:
        log.warning("blob %r in %r was deleted before its trigger ran: nothing to index", name, container)
        return None
    return await start_for_blob(client, blob, retry_delays)
