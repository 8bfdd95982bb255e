"""The ImageMetadata columns, what each holds, and how long text may be in each engine's unit.

Lengths: SQL Server's NVARCHAR(n) holds n byte-pairs, i.e. UTF-16 code units, so a supplementary
character (an emoji) takes two ("nchar and nvarchar", learn.microsoft.com/sql/t-sql/data-types/
nchar-and-nvarchar-transact-sql); PostgreSQL's VARCHAR(n) counts characters ("Character Types",
postgresql.org/docs/current/datatype-character.html); SQLite does not enforce lengths, and the
store applies the character limit there too so every engine keeps the same text. Free text is cut
to fit, never in the middle of a surrogate pair; identifying values (names, ETag, sequencer) are
never cut: one that cannot fit is refused with the column's name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.hash_bands import BANDS, band
from shared.models import EXTRACTOR_VERSION, ImageRecord

TABLE = "ImageMetadata"
KEYWORD_TABLE = "ImageKeyword"
KEYWORD_SIZE = 200

UNIT_UTF16 = "utf16"
UNIT_CHARS = "chars"


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # key | text | char | ascii | int | bigint | decimal | float | bool | datetime
    size: int = 0
    value: Callable[[ImageRecord], Any] | None = None
    # text only: True cuts what does not fit (free text); False refuses it (identity)
    cut: bool = True
    # JSON array of strings (or object of strings): whole items are dropped from the end instead
    # of cutting the JSON
    json_list: bool = False
    # the size on T-SQL, in UTF-16 code units, when it differs from ``size`` (characters)
    tsql_size: int = 0

    def size_in(self, unit: str) -> int:
        return self.tsql_size or self.size if unit == UNIT_UTF16 else self.size


def blob_key(container: str, blob_name: str) -> str:
    """SHA-256 of ``container/blob name`` in hex: the one uniqueness every dialect arbitrates."""
    return hashlib.sha256(f"{container}/{blob_name}".encode()).hexdigest()


def text_length(text: str, unit: str) -> int:
    """Length as the engine counts it: UTF-16 code units for T-SQL NVARCHAR, characters elsewhere."""
    if unit == UNIT_UTF16:
        return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)
    return len(text)


def cut_text(text: str, limit: int, unit: str) -> str:
    """The longest prefix of whole characters that fits ``limit`` (a code point is never split,
    so a UTF-16 surrogate pair is never cut in two)."""
    if text_length(text, unit) <= limit:
        return text
    if unit != UNIT_UTF16:
        return text[:limit]
    used = 0
    for i, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > limit:
            return text[:i]
    return text


class ValueTooLong(ValueError):
    """An identifying value longer than its column: refused, never cut."""


def fit(col: Column, value: Any, unit: str) -> Any:
    """The value as it may be written to ``col`` in an engine that counts ``unit``."""
    if value is None:
        return value
    if col.kind in ("char", "ascii"):
        text = str(value)
        if len(text) > col.size or not text.isascii():
            raise ValueTooLong(f"{col.name} is {len(text)} characters long or not ASCII; "
                               f"the column holds {col.size} ASCII characters")
        return text
    if col.kind != "text":
        return value
    limit = col.size_in(unit)
    if col.json_list:
        mapping = isinstance(value, dict)
        items = [(str(k), str(v)) for k, v in value.items()] if mapping else [str(v) for v in value]
        while items:
            text = json.dumps(dict(items) if mapping else items, ensure_ascii=False)
            if text_length(text, unit) <= limit:
                return text
            items.pop()
        return None
    text = str(value)
    if text_length(text, unit) <= limit:
        return text
    if not col.cut:
        raise ValueTooLong(f"{col.name} is {text_length(text, unit)} {unit} long; the column holds {limit}")
    return cut_text(text, limit, unit)


def parse_time(value: str | None) -> datetime | None:
    """ISO text to naive UTC (the form every dialect stores), or None."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def utc_naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _meta(attr: str) -> Callable[[ImageRecord], Any]:
    return lambda r: getattr(r.metadata, attr)


def _list(attr: str) -> Callable[[ImageRecord], list[str] | None]:
    return lambda r: list(getattr(r.metadata, attr) or []) or None


def _preview(attr: str) -> Callable[[ImageRecord], Any]:
    return lambda r: getattr(r.preview, attr)


def _band(index: int) -> Callable[[ImageRecord], int | None]:
    return lambda r: band(r.preview.perceptual_hash, index)


def band_column(index: int) -> str:
    return f"PHashBand{index}"


# The table, in order. Columns after Status were added by later releases (see migrations).
# Azure Storage allows blob names up to 1,024 characters, which may be 2,048 UTF-16 units.
COLUMNS: tuple[Column, ...] = (
    Column("BlobKey", "key", 64, lambda r: blob_key(r.container, r.blob_name), cut=False),
    Column("Container", "text", 63, lambda r: r.container, cut=False),
    Column("BlobName", "text", 1024, lambda r: r.blob_name, cut=False, tsql_size=2048),
    Column("FileName", "text", 1024, lambda r: r.file_name, cut=False, tsql_size=2048),
    Column("ETag", "text", 128, lambda r: r.etag, cut=False),
    Column("FileSizeBytes", "bigint", value=lambda r: r.size_bytes),
    Column("FileSizeKB", "decimal", value=lambda r: r.size_kb),
    Column("Width", "int", value=_meta("width")),
    Column("Height", "int", value=_meta("height")),
    Column("Format", "text", 16, _meta("format")),
    Column("Status", "text", 16, lambda r: r.status, cut=False),
    Column("Error", "text", 2000, lambda r: r.error),
    Column("InstanceId", "text", 256, lambda r: r.instance_id, cut=False),
    Column("BlobLastModified", "datetime", value=lambda r: parse_time(r.blob_last_modified)),
    Column("ProcessedAt", "datetime", value=lambda r: now()),
    Column("ContentType", "text", 64, _meta("content_type")),
    Column("ColorMode", "text", 16, _meta("mode")),
    Column("BitDepth", "int", value=_meta("bit_depth")),
    Column("HasAlpha", "bool", value=_meta("has_alpha")),
    Column("Animated", "bool", value=_meta("animated")),
    Column("FrameCount", "int", value=_meta("frame_count")),
    Column("Orientation", "int", value=_meta("orientation")),
    Column("DisplayWidth", "int", value=_meta("display_width")),
    Column("DisplayHeight", "int", value=_meta("display_height")),
    Column("CameraMake", "text", 128, _meta("camera_make")),
    Column("CameraModel", "text", 128, _meta("camera_model")),
    Column("LensModel", "text", 128, _meta("lens_model")),
    Column("Software", "text", 128, _meta("software")),
    Column("CapturedAt", "datetime", value=lambda r: parse_time(r.metadata.captured_at)),
    Column("CapturedAtOffset", "text", 8, _meta("captured_at_offset")),
    Column("ExposureTime", "float", value=_meta("exposure_time")),
    Column("FNumber", "float", value=_meta("f_number")),
    Column("ISO", "int", value=_meta("iso")),
    Column("FocalLength", "float", value=_meta("focal_length")),
    Column("GpsLatitude", "float", value=_meta("gps_latitude")),
    Column("GpsLongitude", "float", value=_meta("gps_longitude")),
    Column("GpsAltitude", "float", value=_meta("gps_altitude")),
    Column("DpiX", "float", value=_meta("dpi_x")),
    Column("DpiY", "float", value=_meta("dpi_y")),
    Column("IccProfile", "text", 128, _meta("icc_profile")),
    Column("BytesRead", "bigint", value=_meta("bytes_read")),
    Column("CapturedAtSource", "text", 16, _meta("captured_at_source")),
    Column("CapturedAtUtc", "datetime", value=lambda r: parse_time(r.metadata.captured_at_utc)),
    Column("CapturedAtUtcSource", "text", 16, _meta("captured_at_utc_source")),
    Column("TimeZone", "text", 64, _meta("time_zone")),
    Column("GpsDateTime", "datetime", value=lambda r: parse_time(r.metadata.gps_date_time)),
    Column("Title", "text", 512, _meta("title")),
    Column("Description", "text", 2000, _meta("description")),
    Column("Keywords", "text", 4000, _list("keywords"), json_list=True),
    Column("Rating", "int", value=_meta("rating")),
    Column("Artist", "text", 256, _meta("artist")),
    Column("Copyright", "text", 512, _meta("copyright")),
    Column("Country", "text", 128, _meta("country")),
    Column("Region", "text", 128, _meta("region")),
    Column("City", "text", 128, _meta("city")),
    Column("ExtractorVersion", "int", value=lambda r: r.metadata.extractor_version or EXTRACTOR_VERSION),
    Column("MetadataWarnings", "text", 2000, _list("warnings"), json_list=True),
    Column("Sequencer", "text", 64, lambda r: r.sequencer, cut=False),
    Column("DeletedAt", "datetime", value=lambda r: None),
    # Added by migration 3: previews, placeholder and duplicate search (see docs/duplicates.md).
    Column("Previews", "text", 1024, _preview("previews"), json_list=True),
    Column("ThumbHash", "ascii", 48, _preview("thumb_hash")),
    Column("ContentMD5", "char", 32, _preview("content_md5")),
    Column("ContentSHA256", "char", 64, _preview("content_sha256")),
    Column("PerceptualHash", "bigint", value=_preview("perceptual_hash")),
    *(Column(band_column(i), "int", value=_band(i)) for i in range(BANDS)),
)
COLUMN_NAMES = tuple(c.name for c in COLUMNS)
# The columns migration 1 created (the baseline); later migrations add the rest.
BASELINE_COLUMNS = COLUMNS[: COLUMN_NAMES.index("DeletedAt") + 1]
PREVIEW_COLUMNS = COLUMNS[len(BASELINE_COLUMNS):]
BY_NAME = {c.name: c for c in COLUMNS}
UPDATED = tuple(c for c in COLUMNS if c.name != "BlobKey")
# What a deletion writes (a tombstone when no row exists yet); Status is always 'deleted'.
DELETE_COLUMNS = ("BlobKey", "Container", "BlobName", "FileName", "ETag", "Sequencer", "DeletedAt",
                  "ProcessedAt")
