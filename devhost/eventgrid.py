"""Event Grid for the local host: Blob Storage events, exact to the published schema.

Azurite has no Event Grid, so the host builds the events itself from what it sees in the
container. The shape is the "Event Grid event schema" tab of MicrosoftDocs azure-docs,
articles/event-grid/event-schema-blob-storage.md (BlobCreated and BlobDeleted samples):
top level ``topic``, ``subject``, ``eventType``, ``eventTime``, ``id``, ``data``,
``dataVersion`` ("") and ``metadataVersion`` ("1"); ``data`` of a creation: ``api``,
``clientRequestId``, ``requestId``, ``eTag`` (quoted, as in the sample), ``contentType``,
``contentLength``, ``blobType``, ``url``, ``sequencer``, ``storageDiagnostics``; of a deletion
the same without ``clientRequestId``, ``eTag`` and ``contentLength``, ``api`` "DeleteBlob".
The sequencer is 32 upper-case hex digits like the samples' and grows with every event the
host makes, so string comparison orders the events of one blob as Azure's does.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from shared.models import BlobRef

LOCAL_TOPIC = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/"
               "Microsoft.Storage/storageAccounts/devstoreaccount1")


class Sequencer:
    """Monotonic sequencer strings for one host (thread-safe)."""

    def __init__(self, start: int = 0) -> None:
        self._counter = itertools.count(start + 1)
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            return f"{next(self._counter):032X}"


def _time(moment: datetime | None) -> str:
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"  # seven fraction digits, as the samples


def blob_created_event(blob: BlobRef, sequencer: str, *, when: datetime | None = None,
                       api: str = "PutBlob", topic: str = LOCAL_TOPIC) -> dict[str, Any]:
    """A Microsoft.Storage.BlobCreated event for this blob version."""
    request = str(uuid.uuid4())
    return {
        "topic": topic,
        "subject": f"/blobServices/default/containers/{blob.container}/blobs/{blob.name}",
        "eventType": "Microsoft.Storage.BlobCreated",
        "eventTime": _time(when),
        "id": request,
        "data": {
            "api": api,
            "clientRequestId": str(uuid.uuid4()),
            "requestId": request,
            "eTag": f'"{blob.etag}"',
            "contentType": blob.content_type or "application/octet-stream",
            "contentLength": blob.size or 0,
            "blobType": "BlockBlob",
            "url": blob.url,
            "sequencer": sequencer,
            "storageDiagnostics": {"batchId": str(uuid.uuid4())},
        },
        "dataVersion": "",
        "metadataVersion": "1",
    }


def blob_deleted_event(blob: BlobRef, sequencer: str, *, when: datetime | None = None,
                       topic: str = LOCAL_TOPIC) -> dict[str, Any]:
    """A Microsoft.Storage.BlobDeleted event for the blob (the last version the host saw)."""
    request = str(uuid.uuid4())
    return {
        "topic": topic,
        "subject": f"/blobServices/default/containers/{blob.container}/blobs/{blob.name}",
        "eventType": "Microsoft.Storage.BlobDeleted",
        "eventTime": _time(when),
        "id": request,
        "data": {
            "api": "DeleteBlob",
            "requestId": request,
            "contentType": blob.content_type or "application/octet-stream",
            "blobType": "BlockBlob",
            "url": blob.url,
            "sequencer": sequencer,
            "storageDiagnostics": {"batchId": str(uuid.uuid4())},
        },
        "dataVersion": "",
        "metadataVersion": "1",
    }
