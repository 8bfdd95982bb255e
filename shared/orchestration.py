"""The orchestration: extract (and make previews, in parallel), then store, with classified
retries on durable timers.

This generator runs under Durable Functions replay, so it must be
deterministic: no I/O, no clock but ``context.current_utc_datetime``, no
random, and every setting it needs arrives in its input. Retries are written
here (not with ``call_activity_with_retry``) because 1.x RetryOptions retries
every failure alike and has no growing delay, while we retry only transient
faults, on a schedule long enough for a paused Azure SQL database to resume.

Outcomes of a run: Completed with a ``processed`` or ``rejected`` row; Completed ``superseded``
with no row (the version was overwritten or deleted before or while it was read, so the newer
version's run or the deletion decides the blob's row); Failed after a ``failed`` row was
written, that write retried on the same schedule as any other.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from dataclasses import replace
from datetime import timedelta
from typing import Any

from shared.models import (
    OUTCOME_OK,
    OUTCOME_REJECTED,
    OUTCOME_SUPERSEDED,
    OUTCOME_TRANSIENT,
    STATUS_FAILED,
    STATUS_PROCESSED,
    STATUS_REJECTED,
    ActivityOutcome,
    BlobRef,
    ImageMetadata,
    ImagePreview,
    ImageRecord,
)
from shared.settings import DEFAULT_RETRY_DELAYS, EXTRACT_ACTIVITY, PREVIEW_ACTIVITY, STORE_ACTIVITY

log = logging.getLogger(__name__)


class OrchestrationFailed(Exception):
    """Raised to end the instance as Failed, after the failed row was recorded."""


def orchestration_input(blob: BlobRef, retry_delays: tuple[float, ...], previews: bool = False) -> dict[str, Any]:
    """The instance's input; ``previews`` (from the starter's PreviewContainer setting) adds
    MakePreview beside ExtractMetadata, decided once so that replays never read a setting."""
    data: dict[str, Any] = {"blob": blob.to_dict(), "retryDelaysSeconds": list(retry_delays)}
    if previews:
        data["previews"] = True
    return data


def _outcome(name: str, raw: Any = None, exc: BaseException | None = None) -> ActivityOutcome:
    if exc is not None:  # a crashed activity (worker died...) may succeed later
        return ActivityOutcome(OUTCOME_TRANSIENT, reason=f"{name} failed: {exc}".strip())
    return ActivityOutcome.from_dict(raw)


def call_all_with_retry(
    context: Any, calls: dict[str, tuple[str, dict[str, Any]]], delays: list[float]
) -> Generator[Any, Any, dict[str, tuple[ActivityOutcome, int]]]:
    """Run activities in parallel (``task_all``); the transient ones again, together, after each
    durable timer. ``calls`` maps a key to (activity, input); the answer maps it to
    (outcome, attempts). One crashed activity fails the WhenAll at once, so each task is then
    awaited on its own (a finished task answers immediately, also on replay)."""
    results: dict[str, tuple[ActivityOutcome, int]] = {}
    pending = dict(calls)
    attempt = 0
    while pending:
        attempt += 1
        keys = list(pending)
        tasks = [context.call_activity(*pending[k]) for k in keys]
        outcomes: dict[str, ActivityOutcome] = {}
        try:
            raws = yield context.task_all(tasks)
            outcomes = {k: _outcome(pending[k][0], raw) for k, raw in zip(keys, raws, strict=True)}
        except Exception:  # noqa: BLE001 - sorted out per task below
            for key, task in zip(keys, tasks, strict=True):
                try:
                    outcomes[key] = _outcome(pending[key][0], (yield task))
                except Exception as exc:  # noqa: BLE001
                    outcomes[key] = _outcome(pending[key][0], exc=exc)
        for key in keys:
            outcome = outcomes[key]
            if outcome.outcome != OUTCOME_TRANSIENT or attempt > len(delays):
                results[key] = (outcome, attempt)
                del pending[key]
        if pending:
            yield context.create_timer(context.current_utc_datetime + timedelta(seconds=delays[attempt - 1]))
    return results


def preview_fields(outcome: ActivityOutcome | None, attempts: int) -> tuple[ImagePreview | None, list[str]]:
    """What the row takes from MakePreview (names, hashes, digests) and the warnings to add to
    its MetadataWarnings: a preview that failed for good never holds the row up."""
    if outcome is None:
        return None, []
    if outcome.outcome == OUTCOME_OK:
        preview = dict(outcome.preview or {})
        warnings = list(preview.pop("warnings", None) or [])
        return ImagePreview.from_dict(preview), warnings
    if outcome.outcome == OUTCOME_SUPERSEDED:
        return None, []
    return None, [f"preview: MakePreview {outcome.outcome} after {attempts} attempt(s): {outcome.reason}"]


def call_with_retry(
    context: Any, name: str, payload: dict[str, Any], delays: list[float]
) -> Generator[Any, Any, tuple[ActivityOutcome, int]]:
    """Call an activity; on a transient outcome wait on a durable timer and try again."""
    attempt = 0
    while True:
        attempt += 1
        try:
            raw = yield context.call_activity(name, payload)
            outcome = ActivityOutcome.from_dict(raw)
        except Exception as exc:  # noqa: BLE001 - a crashed activity (worker died...) may succeed later
            outcome = ActivityOutcome(OUTCOME_TRANSIENT, reason=f"{name} failed: {exc}".strip())
        if outcome.outcome != OUTCOME_TRANSIENT or attempt > len(delays):
            return outcome, attempt
        yield context.create_timer(context.current_utc_datetime + timedelta(seconds=delays[attempt - 1]))


def orchestrate(context: Any) -> Generator[Any, Any, dict[str, Any]]:
    data = context.get_input()
    blob = BlobRef.from_dict(data["blob"])
    delays = [float(d) for d in data.get("retryDelaysSeconds", DEFAULT_RETRY_DELAYS)]
    instance_id = context.instance_id

    def record(status: str, **kwargs: Any) -> dict[str, Any]:
        return {"record": ImageRecord.for_blob(blob, status, instance_id=instance_id, **kwargs).to_dict()}

    def ended(message: str, *args: Any) -> None:
        if not context.is_replaying:  # each episode replays the past: log the end once
            log.info(message, *args)

    context.set_custom_status({"stage": "extracting", "blob": blob.name})
    payload = {"blob": blob.to_dict(), "instanceId": instance_id}
    if data.get("previews"):
        done = yield from call_all_with_retry(
            context, {"extract": (EXTRACT_ACTIVITY, payload), "preview": (PREVIEW_ACTIVITY, payload)}, delays)
        extracted, extract_attempts = done["extract"]
        previews, preview_warnings = preview_fields(*done["preview"])
    else:
        extracted, extract_attempts = yield from call_with_retry(context, EXTRACT_ACTIVITY, payload, delays)
        previews, preview_warnings = None, []
    made = bool(previews and previews.previews)

    def discard_previews() -> Generator[Any, Any, tuple[ActivityOutcome, int]]:
        """Previews were made but no row will name them: MakePreview deletes them again."""
        return call_with_retry(context, PREVIEW_ACTIVITY, {**payload, "discard": True}, delays)

    if extracted.outcome == OUTCOME_SUPERSEDED:
        if made:
            yield from discard_previews()
        context.set_custom_status({"stage": "superseded", "blob": blob.name,
                                   "status": OUTCOME_SUPERSEDED, "reason": extracted.reason})
        ended("ImageOrchestrator %s: superseded, no row written (%s)", blob.name, extracted.reason)
        return {"blob": blob.name, "etag": blob.etag, "status": OUTCOME_SUPERSEDED,
                "reason": extracted.reason, "error": None, "applied": False}

    if extracted.last_modified:
        # The storage response's timestamp is authoritative for version ordering in the store.
        blob = replace(blob, last_modified=extracted.last_modified)

    if extracted.outcome == OUTCOME_OK:
        status, error = STATUS_PROCESSED, None
        metadata = ImageMetadata.from_dict(extracted.metadata or {})
        if preview_warnings:
            metadata.warnings = [*(metadata.warnings or []), *preview_warnings]
        row = record(STATUS_PROCESSED, metadata=metadata, size_bytes=extracted.size_bytes, preview=previews)
    elif extracted.outcome == OUTCOME_REJECTED:
        status, error = STATUS_REJECTED, extracted.reason
        row = record(STATUS_REJECTED, error=extracted.reason, size_bytes=extracted.size_bytes)
    else:
        status = STATUS_FAILED
        error = f"extraction failed after {extract_attempts} attempt(s): {extracted.reason}"
        row = record(STATUS_FAILED, error=error)

    if made and status != STATUS_PROCESSED:
        yield from discard_previews()
    context.set_custom_status({"stage": "storing", "blob": blob.name, "status": status})
    stored, store_attempts = yield from call_with_retry(context, STORE_ACTIVITY, row, delays)

    if status == STATUS_FAILED:
        context.set_custom_status({"stage": "failed", "blob": blob.name, "error": error,
                                   "failedRowRecorded": stored.outcome == OUTCOME_OK})
        ended("ImageOrchestrator %s: failed (%s)", blob.name, error)
        raise OrchestrationFailed(error)
    if stored.outcome != OUTCOME_OK:
        error = f"storing the row failed after {store_attempts} attempt(s): {stored.reason}"
        context.set_custom_status({"stage": "recording failure", "blob": blob.name, "error": error})
        failed_row, _ = yield from call_with_retry(
            context, STORE_ACTIVITY, record(STATUS_FAILED, error=error), delays)
        if made:
            yield from discard_previews()
        context.set_custom_status({"stage": "failed", "blob": blob.name, "error": error,
                                   "failedRowRecorded": failed_row.outcome == OUTCOME_OK})
        ended("ImageOrchestrator %s: failed (%s)", blob.name, error)
        raise OrchestrationFailed(error)

    context.set_custom_status({"stage": "done", "blob": blob.name, "status": status})
    ended("ImageOrchestrator %s: %s", blob.name, status)
    return {"blob": blob.name, "etag": blob.etag, "status": status, "error": error,
            "applied": stored.applied}
