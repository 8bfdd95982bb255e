"""Typed records that cross function boundaries as plain dicts.

Durable Functions serialises activity inputs and outputs as JSON, so every
type here round-trips through ``to_dict``/``from_dict`` and nothing else.
"""

from __future__ import annotations

import posixpath
from dataclasses import asdict, dataclass, field, fields
from typing import Any, TypeVar

T = TypeVar("T")

STATUS_PROCESSED = "processed"
STATUS_REJECTED = "rejected"
STATUS_FAILED = "failed"
# The blob is gone: the row is kept (what the image was) with the time it was seen deleted.
STATUS_DELETED = "deleted"

# Bumped whenever a change could alter what an image's row says; every row records the
# version that wrote it, so rows written by an older extractor can be found and re-run.
EXTRACTOR_VERSION = 4

OUTCOME_OK = "ok"
OUTCOME_REJECTED = "rejected"
OUTCOME_TRANSIENT = "transient"
OUTCOME_PERMANENT = "permanent"
# The version was overwritten or deleted before (or while) it was read: the run writes nothing,
# because the newer version's own run (or the deletion) decides the blob's row.
OUTCOME_SUPERSEDED = "superseded"


def _from_dict(cls: type[T], data: dict[str, Any]) -> T:
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


def normalise_etag(etag: str | None) -> str:
    """ETags arrive quoted from some APIs and bare from others; store them bare."""
    return (etag or "").strip().strip('"')


@dataclass(frozen=True)
class BlobRef:
    """Where a blob version lives; passed instead of its bytes."""

    container: str
    name: str
    etag: str
    size: int | None = None
    last_modified: str | None = None
    url: str | None = None
    content_type: str | None = None
    # Event Grid's per-blob order of events (compared as strings), when the version came from one.
    sequencer: str | None = None

    @property
    def file_name(self) -> str:
        return posixpath.basename(self.name) or self.name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BlobRef:
        ref = _from_dict(cls, data)
        return BlobRef(**{**asdict(ref), "etag": normalise_etag(ref.etag)})


@dataclass
class ImageMetadata:
    """What extraction learns from an image's header. ``None`` means unknown."""

    format: str | None = None
    content_type: str | None = None
    width: int | None = None
    height: int | None = None
    mode: str | None = None
    bit_depth: int | None = None
    has_alpha: bool | None = None
    animated: bool | None = None
    frame_count: int | None = None
    orientation: int | None = None
    display_width: int | None = None
    display_height: int | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    lens_model: str | None = None
    software: str | None = None
    captured_at: str | None = None
    captured_at_offset: str | None = None
    exposure_time: float | None = None
    f_number: float | None = None
    iso: int | None = None
    focal_length: float | None = None
    gps_latitude: float | None = None
    gps_longitude: float | None = None
    gps_altitude: float | None = None
    dpi_x: float | None = None
    dpi_y: float | None = None
    icc_profile: str | None = None
    bytes_read: int | None = None
    read_requests: int | None = None
    # Where the capture time came from (exif | xmp | iptc) and the absolute instant, when knowable.
    captured_at_source: str | None = None
    captured_at_utc: str | None = None
    captured_at_utc_source: str | None = None
    time_zone: str | None = None  # IANA name at the GPS position
    gps_date_time: str | None = None  # GPSDateStamp + GPSTimeStamp, UTC by definition
    # Descriptive metadata people search by (EXIF, IPTC, XMP in the MWG order).
    title: str | None = None
    description: str | None = None
    keywords: list[str] | None = None
    rating: int | None = None  # -1 (rejected) .. 5, XMP xmp:Rating / EXIF Rating
    artist: str | None = None
    copyright: str | None = None
    # Place names from the GPS position (GeoNames, nearest populated place within 25 km).
    country: str | None = None
    region: str | None = None
    city: str | None = None
    extractor_version: int | None = None
    warnings: list[str] | None = None  # field-level failures (a broken XMP packet, an XML bomb)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageMetadata:
        return _from_dict(cls, data)


@dataclass
class ImagePreview:
    """What the preview step learns from the image's bytes and pixels. ``None`` means not made
    (the step is off, the pixels could not be decoded, or the bytes were not all read).

    ``previews`` maps the long-edge size (as text, a JSON object key) to the preview blob's name
    in the preview container; ``thumb_hash`` is the ThumbHash in base64; the digests are lower-case
    hex of the whole blob (``content_md5`` from storage's Content-MD5 when it holds one);
    ``perceptual_hash`` is the 64-bit pHash as a signed integer (shared.hash_bands.to_signed).
    """

    previews: dict[str, str] | None = None
    thumb_hash: str | None = None
    content_md5: str | None = None
    content_sha256: str | None = None
    perceptual_hash: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImagePreview:
        return _from_dict(cls, data)


@dataclass
class ImageRecord:
    """One row of ImageMetadata: a blob version and what became of it."""

    container: str
    blob_name: str
    file_name: str
    etag: str
    status: str
    size_bytes: int | None = None
    blob_last_modified: str | None = None
    error: str | None = None
    instance_id: str | None = None
    metadata: ImageMetadata = field(default_factory=ImageMetadata)
    sequencer: str | None = None
    preview: ImagePreview = field(default_factory=ImagePreview)

    @property
    def size_kb(self) -> float | None:
        return None if self.size_bytes is None else round(self.size_bytes / 1024, 2)

    @classmethod
    def for_blob(
        cls,
        blob: BlobRef,
        status: str,
        *,
        metadata: ImageMetadata | None = None,
        error: str | None = None,
        instance_id: str | None = None,
        size_bytes: int | None = None,
        preview: ImagePreview | None = None,
    ) -> ImageRecord:
        return cls(
            container=blob.container,
            blob_name=blob.name,
            file_name=blob.file_name,
            etag=normalise_etag(blob.etag),
            status=status,
            size_bytes=blob.size if size_bytes is None else size_bytes,
            blob_last_modified=blob.last_modified,
            error=error,
            instance_id=instance_id,
            metadata=metadata or ImageMetadata(),
            sequencer=blob.sequencer,
            preview=preview or ImagePreview(),
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["metadata"] = self.metadata.to_dict()
        data["preview"] = self.preview.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageRecord:
        record = _from_dict(cls, data)
        record.metadata = ImageMetadata.from_dict(data.get("metadata") or {})
        record.preview = ImagePreview.from_dict(data.get("preview") or {})
        return record


@dataclass(frozen=True)
class ActivityOutcome:
    """An activity's answer: success, or a failure classified for the orchestrator."""

    outcome: str
    reason: str | None = None
    metadata: dict[str, Any] | None = None
    size_bytes: int | None = None
    last_modified: str | None = None
    applied: bool | None = None
    # MakePreview's answer: {"previews": {size: name}, "warnings": [...], ...} (shared.preview_activity)
    preview: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Any) -> ActivityOutcome:
        if not isinstance(data, dict) or "outcome" not in data:
            return cls(OUTCOME_TRANSIENT, reason=f"activity returned an unexpected value: {data!r}")
        return _from_dict(cls, data)
