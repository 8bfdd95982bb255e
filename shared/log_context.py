"""Every log line written while a function works on a blob version names it.

A function folder's adapter opens ``log_context(instance_id=…, blob_name=…, etag=…)`` around
its call into ``shared``; every record created inside it, by any logger (ours, the Azure SDK's),
carries the three values two ways:

- as record attributes ``InstanceId``, ``BlobName`` and ``ETag``. Application Insights shows
  them as custom dimensions only when the worker exports logs itself through OpenTelemetry
  (``PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true`` with azure-monitor-opentelemetry): the
  OpenTelemetry logging handler turns a record's extra attributes into log attributes, which the
  Azure Monitor exporter writes as custom properties;
- in the message text, as a JSON object after `` ctx=``, because through the Functions host
  (the default) the Python worker sends only the formatted message, level, category and
  invocation id of a record (its ``RpcLog``), and ``extra`` attributes never arrive.

docs/observability.md gives the sources and the KQL that reads either form. The values live in a
context variable, so concurrent invocations (async starters on one loop, sync functions on the
worker's threads) never see each other's.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import threading
from collections.abc import Iterator, Mapping
from typing import Any

# Record attribute -> key in the message's ctx object.
FIELDS = {"InstanceId": "instanceId", "BlobName": "blobName", "ETag": "etag"}
MARKER = " ctx="

_current: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "image_indexer_log_context", default=None)
_install_lock = threading.Lock()
_installed = False


def _stamp(record: logging.LogRecord, values: dict[str, str]) -> None:
    for attribute in FIELDS:
        if attribute not in record.__dict__:
            setattr(record, attribute, values.get(attribute))
    suffix = MARKER + json.dumps({FIELDS[a]: v for a, v in values.items() if v},
                                 ensure_ascii=False, separators=(",", ":"))
    # getMessage() applies % only when there are args: escape the suffix only then.
    record.msg = f"{record.msg}{suffix.replace('%', '%%') if record.args else suffix}"


def install() -> None:
    """Chain a record factory once per process (the documented hook for contextual data)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            values = _current.get()
            if values:
                _stamp(record, values)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True


@contextlib.contextmanager
def log_context(*, instance_id: str | None = None, blob_name: str | None = None,
                etag: str | None = None) -> Iterator[None]:
    """Name this run's blob version on every record created inside; nested contexts add to
    (never erase) the outer one's values."""
    install()
    outer = _current.get() or {}
    given = {"InstanceId": instance_id, "BlobName": blob_name, "ETag": etag}
    token = _current.set({**outer, **{k: str(v) for k, v in given.items() if v}})
    try:
        yield
    finally:
        _current.reset(token)


def bind(*, instance_id: str | None = None, etag: str | None = None,
         blob_name: str | None = None) -> None:
    """Add values learnt inside an open context (a starter learns the ETag and instance id
    only once it has read the blob's version); a no-op outside one. The enclosing
    ``log_context`` drops them on exit; an asyncio task (``gather``) or ``to_thread`` call binds
    in its own copy of the context, so concurrent starts never see each other's."""
    values = _current.get()
    if values is None:
        return
    given = {"InstanceId": instance_id, "BlobName": blob_name, "ETag": etag}
    _current.set({**values, **{k: str(v) for k, v in given.items() if v}})


def fields_from_payload(payload: Any) -> dict[str, str | None]:
    """The values from an activity's input: ``{"blob": BlobRef dict, "instanceId"}`` for
    ExtractMetadata, ``{"record": ImageRecord dict}`` for StoreMetadata."""
    if not isinstance(payload, Mapping):
        return {}
    record = payload.get("record")
    if isinstance(record, Mapping):
        return {"instance_id": record.get("instance_id"), "blob_name": record.get("blob_name"),
                "etag": record.get("etag")}
    blob = payload.get("blob")
    blob = blob if isinstance(blob, Mapping) else {}
    return {"instance_id": payload.get("instanceId"), "blob_name": blob.get("name"),
            "etag": blob.get("etag")}


def fields_from_orchestration(body: Any) -> dict[str, str | None]:
    """The values from an orchestrator's context JSON (``instanceId``, and ``input`` a JSON
    string holding the orchestration input ``{"blob": …}``)."""
    try:
        context = json.loads(body) if isinstance(body, str | bytes) else body
        raw = context.get("input")
        data = json.loads(raw) if isinstance(raw, str | bytes) else raw
        blob = data.get("blob") if isinstance(data, Mapping) else None
    except (ValueError, AttributeError):
        return {}
    blob = blob if isinstance(blob, Mapping) else {}
    return {"instance_id": context.get("instanceId"), "blob_name": blob.get("name"),
            "etag": blob.get("etag")}


def fields_from_event(event: Any) -> dict[str, str | None]:
    """The values from a Blob Storage event (``subject`` ``…/containers/<c>/blobs/<name>``,
    ``data.eTag``); the instance id is bound by the starter when it starts one."""
    if not isinstance(event, Mapping):
        return {}
    _, found, name = str(event.get("subject") or "").partition("/blobs/")
    data = event.get("data")
    etag = data.get("eTag") if isinstance(data, Mapping) else None
    return {"blob_name": name if found else None,
            "etag": str(etag).strip().strip('"') if etag else None}
