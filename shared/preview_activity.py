"""MakePreview's body: read the blob version whole, render its previews, upload them, and
compute from the same read what the duplicate queries need (content digests of the bytes,
ThumbHash and perceptual hash of the pixels).

Classified like every activity: a storage fault is transient (the orchestrator retries it on
its durable schedule); a picture that cannot be previewed (pixels that do not decode, a bomb,
a raw photo without an embedded picture, a blob over ``PreviewMaxBytes``) is an ``ok`` outcome
with no previews and the reason as a warning, so the metadata row is never held up by it.
With ``discard`` in its input it deletes the version's previews instead (the orchestrator's
superseded end: no row will name them). After uploading, one Get Blob Properties checks the version is still the blob's: if it was
overwritten or deleted meanwhile, this version's previews are deleted again (the newer
version's run, or the deletion, may have finished before they were written).
"""

from __future__ import annotations

import logging
from typing import Any

from shared.activities import failure_outcome
from shared.blob_access import BlobGone, BlobReader, blob_version
from shared.image_hashes import ContentDigests, md5_hex_from_storage, perceptual_hash, thumb_hash
from shared.models import OUTCOME_OK, OUTCOME_SUPERSEDED, ActivityOutcome, BlobRef, normalise_etag
from shared.preview_blobs import delete_previews, preview_name, upload_preview
from shared.previews import NoPreview, PreviewOptions, render_previews
from shared.settings import PreviewSettings, load_limits, load_preview_settings, storage_connection_string

log = logging.getLogger(__name__)


def _digests(data: bytes | None, stored_md5: bytes | None) -> dict[str, str | None]:
    """Content digests of the whole blob: MD5 from storage where it holds one (single-shot
    uploads), else computed; SHA-256 always (the bytes are read anyway)."""
    if data is None:
        return {"content_md5": md5_hex_from_storage(stored_md5), "content_sha256": None}
    digests = ContentDigests()
    digests.update(data)
    return {"content_md5": md5_hex_from_storage(stored_md5) or digests.md5_hex,
            "content_sha256": digests.sha256_hex}


def _no_preview(reason: str, digests: dict[str, str | None]) -> dict[str, Any]:
    log.info("MakePreview: no preview: %s", reason)
    return ActivityOutcome(OUTCOME_OK, preview={"previews": None, **digests,
                                                "warnings": [f"preview: {reason}"]}).to_dict()


def make_preview(payload: dict[str, Any], settings: PreviewSettings | None = None) -> dict[str, Any]:
    try:
        blob = BlobRef.from_dict(payload["blob"])
        settings = settings or load_preview_settings()
        if not settings.enabled:
            return ActivityOutcome(OUTCOME_OK, preview={"previews": None, "warnings": []}).to_dict()
        target = storage_connection_string()
        if payload.get("discard"):
            deleted = delete_previews(target, settings.container, blob.name, etags={blob.etag})
            return ActivityOutcome(OUTCOME_OK, preview={"previews": None, "deleted": deleted}).to_dict()
        whole = BlobReader(target, blob).head(settings.max_bytes + 1)
        if whole.size > settings.max_bytes:
            return _no_preview(f"the blob is {whole.size:,} bytes, over PreviewMaxBytes={settings.max_bytes:,}",
                               _digests(None, whole.content_md5))
        digests = _digests(whole.data, whole.content_md5)
        options = PreviewOptions(settings.sizes, settings.output, settings.quality, load_limits().max_pixels)
        try:
            rendering = render_previews(whole.data, options)
        except NoPreview as exc:
            return _no_preview(str(exc), digests)
        names: dict[str, str] = {}
        written: dict[bytes, str] = {}
        for preview in rendering.previews:  # smallest first
            if preview.data in written:  # a picture smaller than both sizes: one blob serves both
                names[str(preview.size)] = written[preview.data]
                continue
            name = preview_name(blob.name, blob.etag, preview.size, preview.extension)
            upload_preview(target, settings.container, name, preview.data, preview.content_type)
            names[str(preview.size)] = written[preview.data] = name
        current = blob_version(target, blob.container, blob.name)
        if current is None or normalise_etag(current.etag) != blob.etag:
            delete_previews(target, settings.container, blob.name, etags={blob.etag})
            raise BlobGone("blob was overwritten or deleted while its previews were made")
        return ActivityOutcome(OUTCOME_OK, preview={
            "previews": names, "warnings": rendering.warnings, **digests,
            # From the smallest preview's pixels: upright, sRGB, as the image is seen.
            "thumb_hash": thumb_hash(rendering.small), "perceptual_hash": perceptual_hash(rendering.small),
            "sources": sorted({p.source for p in rendering.previews})}).to_dict()
    except BlobGone as exc:
        log.info("MakePreview superseded: %s", exc)
        return ActivityOutcome(OUTCOME_SUPERSEDED, reason=str(exc)).to_dict()
    except Exception as exc:  # noqa: BLE001 - every failure is classified and returned as data
        outcome = failure_outcome(exc)
        log.warning("MakePreview %s: %s", outcome.outcome, outcome.reason)
        return outcome.to_dict()
