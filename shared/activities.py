"""The bodies of the two activities, returning classified outcomes as plain dicts.

A failure that escapes an activity reaches the orchestrator as a bare
``Exception`` with only a message, so each body catches what it knows and says
whether the failure is transient (retry), permanent, or a rejection of the input.
"""

from __future__ import annotations

import logging
from typing import Any

from shared.blob_access import BlobGone, BlobReader, blob_version
from shared.errors import PipelineError, RejectedInput
from shared.extraction import extract_from_ranges
from shared.models import (
    OUTCOME_OK,
    OUTCOME_PERMANENT,
    OUTCOME_REJECTED,
    OUTCOME_SUPERSEDED,
    OUTCOME_TRANSIENT,
    STATUS_DELETED,
    ActivityOutcome,
    BlobRef,
    ImageRecord,
    normalise_etag,
)
from shared.preview_blobs import delete_previews
from shared.read_guard import GuardedFetch
from shared.settings import (
    Limits,
    load_limits,
    load_preview_settings,
    sql_connection_string,
    storage_connection_string,
)
from shared.store import APPLIED, SUPERSEDED, TIED, blob_key, is_transient, store_for

log = logging.getLogger(__name__)


def failure_outcome(exc: BaseException) -> ActivityOutcome:
    if isinstance(exc, RejectedInput):
        return ActivityOutcome(OUTCOME_REJECTED, reason=str(exc))
    if isinstance(exc, PipelineError):
        return ActivityOutcome(OUTCOME_TRANSIENT if exc.transient else OUTCOME_PERMANENT, reason=str(exc))
    if is_transient(exc):
        return ActivityOutcome(OUTCOME_TRANSIENT, reason=f"{type(exc).__name__}: {exc}")
    return ActivityOutcome(OUTCOME_PERMANENT, reason=f"{type(exc).__name__}: {exc}")


def extract_metadata(payload: dict[str, Any], limits: Limits | None = None) -> dict[str, Any]:
    """Read the blob's head by ranges and describe the image it holds.

    Every read is pinned to the version's ETag: a version overwritten or deleted before or while
    it is read answers ``superseded`` (no row: the newer version's run or the deletion decides).
    A storage fault on any read stays what it is, even where the extractor swallowed it."""
    try:
        blob = BlobRef.from_dict(payload["blob"])
        limits = limits or load_limits()
        reader = BlobReader(storage_connection_string(), blob)
        head = reader.head(limits.head_bytes)
        try:
            with GuardedFetch(reader.fetch) as fetch:
                meta = extract_from_ranges(head.size, fetch, limits, first_chunk=head.data)
        except RejectedInput as exc:
            return ActivityOutcome(OUTCOME_REJECTED, reason=str(exc), size_bytes=head.size,
                                   last_modified=head.last_modified).to_dict()
        return ActivityOutcome(OUTCOME_OK, metadata=meta.to_dict(), size_bytes=head.size,
                               last_modified=head.last_modified).to_dict()
    except BlobGone as exc:
        log.info("ExtractMetadata superseded: %s", exc)
        return ActivityOutcome(OUTCOME_SUPERSEDED, reason=str(exc)).to_dict()
    except Exception as exc:  # noqa: BLE001 - every failure is classified and returned as data
        outcome = failure_outcome(exc)
        log.warning("ExtractMetadata %s: %s", outcome.outcome, outcome.reason)
        return outcome.to_dict()


def store_metadata(payload: dict[str, Any]) -> dict[str, Any]:
    """Upsert one row for the blob version in ``payload['record']``.

    When the stored row holds another ETag with the same Last-Modified (one-second precision) and
    no sequencer orders them, neither is "newer": storage's current ETag decides (one Get Blob
    Properties), and the write then replaces only the row it was decided on (compare-and-swap).
    """
    try:
        record = ImageRecord.from_dict(payload["record"])
        store = store_for(sql_connection_string())
        previews_container = load_preview_settings().container
        key = blob_key(record.container, record.blob_name)
        before = store.rows_by_keys([key]).get(key) if previews_container else None
        result = store.upsert_outcome(record)
        if result == TIED:
            current = blob_version(storage_connection_string(), record.container, record.blob_name)
            is_current = current is not None and normalise_etag(current.etag) == record.etag
            result = store.resolve_tie(record, is_current)
        if previews_container:
            tidy_previews(store, record, result == APPLIED, before, previews_container)
        reason = "storage holds another version of the blob" if result == SUPERSEDED else None
        return ActivityOutcome(OUTCOME_OK, applied=result == APPLIED, reason=reason).to_dict()
    except Exception as exc:  # noqa: BLE001
        outcome = failure_outcome(exc)
        log.warning("StoreMetadata %s: %s", outcome.outcome, outcome.reason)
        return outcome.to_dict()


def tidy_previews(store: Any, record: ImageRecord, applied: bool, before: dict[str, Any] | None,
                  container: str) -> None:
    """After the write, leave in the preview container only what the blob's row names.

    Applied: the version the row held before is older; its previews go. Not applied: this
    version's previews go unless the stored row names them (a duplicate run's row was kept).
    Only named versions are deleted, never "all but this one": a newer version's previews may
    already be uploaded for a row not yet written. (Previews of a run whose row names none, a
    rejected or failed row, are discarded by the orchestrator through MakePreview.) Storage is
    only called when a row named previews."""
    doomed: set[str] = set()
    if applied:
        if before and before.get("Previews") and normalise_etag(before.get("ETag")) != record.etag:
            doomed.add(normalise_etag(before.get("ETag")))
    elif record.preview.previews:
        key = blob_key(record.container, record.blob_name)
        row = store.rows_by_keys([key]).get(key)
        if (row is None or normalise_etag(row.get("ETag")) != record.etag or row.get("Status") == STATUS_DELETED
                or not row.get("Previews")):
            doomed.add(record.etag)
    if doomed:
        delete_previews(storage_connection_string(), container, record.blob_name, etags=doomed)
