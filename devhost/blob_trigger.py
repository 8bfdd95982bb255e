"""The blob trigger's input exactly as the Functions host hands it to the Python worker.

Sources (details and links in docs/host-protocol.md, "What the blob trigger hands the Python
function"):
- The host downloads the whole blob and sends it as TypedData ``bytes`` whatever ``dataType`` says
  (WebJobs TriggerAdapterBindingProvider tries byte[] first; host issue #3995; Microsoft's blob
  trigger docs: "the runtime must load the entire blob into memory more than one time").
- Trigger metadata comes from the blobs extension's ``BlobTriggerBinding`` binding data:
  ``BlobTrigger`` (container/name), ``Uri``, ``Properties`` (Azure.Storage.Blobs ``BlobProperties``),
  ``Metadata``, plus one entry per path token (``name``). The host sends strings as ``string`` and
  every other value as ``json`` written by Newtonsoft.Json with default settings
  (azure-functions-host ``GrpcMessageConversionExtensions.ToRpcDefault``), and drops nulls and ``sys``.
- Newtonsoft writes ``BlobProperties``' public properties in declaration order
  (Azure/azure-sdk-for-net ``sdk/storage/Azure.Storage.Blobs/src/Models/BlobProperties.cs``), PascalCase,
  enums as their integer values, ``DateTimeOffset`` as ISO 8601 with ``+00:00`` (unset ones as
  ``0001-01-01T00:00:00+00:00``), ``byte[]`` as base64, nulls kept, and the ``ETag`` struct (private
  fields only) as ``{}`` (azure-sdk-for-net #34410).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContainerClient

from devhost.worker import Data

UNSET_TIME = "0001-01-01T00:00:00+00:00"
# Azure.Storage.Blobs.Models enums, by their integer values.
BLOB_TYPES = {"BlockBlob": 0, "PageBlob": 1, "AppendBlob": 2}
LEASE_STATES = {"available": 0, "leased": 1, "expired": 2, "breaking": 3, "broken": 4}
LEASE_STATUSES = {"locked": 0, "unlocked": 1}
LEASE_DURATIONS = {"infinite": 0, "fixed": 1}
COPY_STATUSES = {"pending": 0, "success": 1, "aborted": 2, "failed": 3}


def newtonsoft_time(value: datetime | None) -> str:
    """DateTimeOffset as Newtonsoft writes it: no fraction when it is zero, offset +00:00."""
    if value is None:
        return UNSET_TIME
    value = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += ("." + f"{value.microsecond:06d}").rstrip("0")
    return text + "+00:00"


def _enum(table: dict[str, int], value: Any, default: int) -> int:
    key = getattr(value, "value", value)
    return table.get(str(key), default) if key is not None else default


def blob_properties_json(props: Any) -> dict[str, Any]:
    """azure-storage-blob's BlobProperties in the shape the host's Newtonsoft serialisation gives."""
    content = props.content_settings
    lease = props.lease
    copy = props.copy
    md5 = bytes(content.content_md5) if content and content.content_md5 else None
    copy_status = _enum(COPY_STATUSES, copy.status, -1) if copy and copy.status else None
    return {
        "LastModified": newtonsoft_time(props.last_modified),
        "CreatedOn": newtonsoft_time(props.creation_time),
        "Metadata": dict(props.metadata or {}),
        "ObjectReplicationDestinationPolicyId": props.object_replication_destination_policy,
        "ObjectReplicationSourceProperties": [],
        "BlobType": _enum(BLOB_TYPES, props.blob_type, 0),
        "CopyCompletedOn": newtonsoft_time(copy.completion_time if copy else None),
        "CopyStatusDescription": copy.status_description if copy else None,
        "CopyId": copy.id if copy else None,
        "CopyProgress": copy.progress if copy else None,
        "CopySource": copy.source if copy else None,
        "CopyStatus": copy_status if copy_status is not None else COPY_STATUSES["pending"],
        "BlobCopyStatus": copy_status,
        "IsIncrementalCopy": bool(copy and copy.incremental_copy),
        "DestinationSnapshot": copy.destination_snapshot if copy else None,
        "LeaseDuration": _enum(LEASE_DURATIONS, lease.duration if lease else None, 0),
        "LeaseState": _enum(LEASE_STATES, lease.state if lease else None, 0),
        "LeaseStatus": _enum(LEASE_STATUSES, lease.status if lease else None, 1),
        "ContentLength": props.size,
        "ContentType": content.content_type if content else None,
        "ETag": {},
        "ContentHash": base64.b64encode(md5).decode() if md5 else None,
        "ContentEncoding": content.content_encoding if content else None,
        "ContentDisposition": content.content_disposition if content else None,
        "ContentLanguage": content.content_language if content else None,
        "CacheControl": content.cache_control if content else None,
        "BlobSequenceNumber": props.page_blob_sequence_number or 0,
        "AcceptRanges": "bytes",
        "BlobCommittedBlockCount": props.append_blob_committed_block_count or 0,
        "IsServerEncrypted": bool(props.server_encrypted),
        "EncryptionKeySha256": props.encryption_key_sha256,
        "EncryptionScope": props.encryption_scope,
        "AccessTier": getattr(props.blob_tier, "value", props.blob_tier),
        "AccessTierInferred": bool(props.blob_tier_inferred),
        "ArchiveStatus": props.archive_status,
        "AccessTierChangedOn": newtonsoft_time(props.blob_tier_change_time),
        "SmartAccessTier": None,
        "VersionId": props.version_id,
        "IsLatestVersion": bool(props.is_current_version),
        "TagCount": props.tag_count or 0,
        "ExpiresOn": newtonsoft_time(None),
        "IsSealed": bool(props.is_append_blob_sealed),
        "RehydratePriority": props.rehydrate_priority,
        "LastAccessed": newtonsoft_time(props.last_accessed_on),
        "ImmutabilityPolicy": {"ExpiresOn": None, "PolicyMode": None},
        "HasLegalHold": bool(props.has_legal_hold),
    }


@dataclass
class TriggerInput:
    """One blob trigger invocation's wire data: the body and the trigger metadata."""

    body: bytes
    metadata: dict[str, Data]
    etag: str  # the version downloaded: the host's receipt key (the function never sees it)


def trigger_input(container: ContainerClient, name: str, path_pattern: str) -> TriggerInput | None:
    """Download the blob and describe it as the host does; None if it is gone by now (the host
    skips a blob that no longer exists)."""
    blob = container.get_blob_client(name)
    try:
        downloader = blob.download_blob()
        body = downloader.readall()
    except ResourceNotFoundError:
        return None
    props = downloader.properties
    path = f"{container.container_name}/{name}"
    metadata: dict[str, Data] = {
        "BlobTrigger": Data("string", path),
        "Uri": Data("json", json.dumps(blob.url)),
        "Properties": Data("json", json.dumps(blob_properties_json(props))),
        "Metadata": Data("json", json.dumps(dict(props.metadata or {}))),
    }
    for token, value in path_tokens(path_pattern, path).items():
        metadata[token] = Data("string", value)
    return TriggerInput(body, metadata, str(props.etag).strip('"'))


def path_tokens(pattern: str, path: str) -> dict[str, str]:
    """Binding data from the trigger's path pattern ("images-input/{name}" -> name=...)."""
    container, _, blob_pattern = pattern.partition("/")
    _, _, blob_name = path.partition("/")
    if blob_pattern.startswith("{") and blob_pattern.endswith("}") and blob_pattern.count("{") == 1:
        return {blob_pattern[1:-1]: blob_name}
    if "{" in blob_pattern:
        raise ValueError(f"blob trigger path {pattern!r}: only '<container>/{{token}}' is supported locally")
    return {}
