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

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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


def _first(props: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if props.get(key) not in (None, ""):
            return props[key]
    return None


def blob_ref_from_trigger(
    path: str, uri: str | None, length: int | None, properties: Mapping[str, Any] | None
) -> BlobRef:
    """Build the reference from what the blob trigger passes, never from the body."""
    if "/" not in path:
        raise ValueError(f"blob trigger path {path!r} has no container part")
    container, name = path.split("/", 1)
    props = properties or {}
    etag = normalise_etag(str(_first(props, "ETag", "Etag", "etag") or ""))
    if not etag:
        raise ValueError(f"blob trigger for {path!r} carried no ETag; cannot identify the version")
    size = _first(props, "ContentLength", "Length", "length")
    return BlobRef(
        container=container,
        name=name,
        etag=etag,
        size=int(size) if size is not None else length,
        last_modified=_first(props, "LastModified", "lastModified"),
        url=uri,
        content_type=_first(props, "ContentType", "contentType"),
    )


@dataclass(frozen=True)
class StartResult:
    instance_id: str
    started: bool
    existing_status: str | None = None


async def start_for_blob(client: Any, blob: BlobRef, retry_delays: tuple[float, ...]) -> StartResult:
    """Start ImageOrchestrator for this blob version unless a run already covers it."""
    instance_id = instance_id_for(blob.container, blob.name, blob.etag)
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
