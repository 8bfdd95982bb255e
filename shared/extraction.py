"""Header-only image metadata extraction with Pillow.

Content decides, never the extension: Pillow is given an allow-list of
formats, so a text file or an EPS named ``.jpg`` is rejected instead of being
handed to a plugin (EPS would start Ghostscript). No pixel is ever decoded:
every field comes from what ``Image.open`` parses, and the Pillow paths that
decode behind the caller's back (``getexif()`` on a PNG without an eXIf chunk
before IDAT) are avoided.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from PIL import Image, ImageCms

from shared import capture_time, header_facts, places
from shared.embedded_profiles import gif_xmp, png_text_profiles
from shared.errors import PipelineError, RejectedInput
from shared.header_facts import number as _number
from shared.header_image import HeaderImage
from shared.heif_boxes import read_heif_info
from shared.image_open import ALLOWED_FORMATS, open_image
from shared.iptc import iptc_newer_than_xmp, read_iptc, read_iptc_data
from shared.models import EXTRACTOR_VERSION, ImageMetadata
from shared.ranged_reader import RangedFile
from shared.raw_formats import CONTENT_TYPES as RAW_CONTENT_TYPES
from shared.settings import Limits
from shared.tiff_ifd import Directory
from shared.xmp import XmpError, gps_coordinate, parse_xmp

# We never decode pixels, so Pillow's decompression-bomb guard (which exists to
# protect decoding) would only hide the size; our own max_pixels limit is
# checked against the header instead and gives a recorded rejection.
Image.MAX_IMAGE_PIXELS = None

_CONTENT_TYPES = {"MPO": "image/jpeg", "HEIF": "image/heif", "AVIF": "image/avif", **RAW_CONTENT_TYPES}
__all__ = ["ALLOWED_FORMATS", "describe", "extract_from_bytes", "extract_from_ranges"]
_OFFSET_RE = re.compile(r"^[+-](?:[01]\d|2[0-3]):[0-5]\d$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

TAG_ORIENTATION, TAG_MAKE, TAG_MODEL, TAG_SOFTWARE = 0x0112, 0x010F, 0x0110, 0x0131
TAG_DESCRIPTION, TAG_ARTIST, TAG_COPYRIGHT, TAG_RATING = 0x010E, 0x013B, 0x8298, 0x4746
GPS_TIME_STAMP, GPS_DATE_STAMP = 0x0007, 0x001D
IFD_EXIF, IFD_GPS = 0x8769, 0x8825
MAX_KEYWORD, MAX_KEYWORDS = 200, 100
TAG_DATETIME_ORIGINAL, TAG_OFFSET_TIME_ORIGINAL = 0x9003, 0x9011
TAG_EXPOSURE, TAG_FNUMBER, TAG_ISO, TAG_FOCAL, TAG_LENS = 0x829A, 0x829D, 0x8827, 0x920A, 0xA434


def _exif_bytes(value: Any) -> bytes | None:
    """An EXIF ASCII value's bytes up to the first NUL: the spec's terminator, as exiftool
    reads it (whatever a camera left after it is padding or garbage, never text)."""
    if isinstance(value, str):
        value = value.encode("latin-1", "replace")  # Pillow decodes ASCII tags as Latin-1
    if not isinstance(value, bytes):
        return None
    return value.split(b"\x00", 1)[0]


def _text(value: Any, limit: int = 128, multiline: bool = False) -> str | None:
    """EXIF text: cut at the first NUL, UTF-8 if it decodes as such, else Latin-1; trailing
    blanks dropped; None when empty or holding control characters (garbage) — line breaks
    and tabs are kept in multi-line fields (ImageDescription)."""
    if isinstance(value, str) and value.isascii() and "\x00" not in value:
        return _clean(value, limit, multiline)  # the common case: plain ASCII, NUL already gone
    raw = _exif_bytes(value)
    if raw is None:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return _clean(text, limit, multiline)


def _clean(value: Any, limit: int = 128, multiline: bool = False) -> str | None:
    """A printable string without surrounding blanks, or None (tabs/newlines allowed in
    multi-line fields such as captions)."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value:
        return None
    if multiline:
        if _CONTROL.search(value):
            return None
    elif not value.isprintable():
        return None
    return value[:limit]


def _gps_time(value: Any) -> tuple[float, float, float] | None:
    if not isinstance(value, tuple) or len(value) != 3:
        return None
    parts = [_number(p) for p in value]
    return None if any(p is None for p in parts) else (parts[0], parts[1], parts[2])  # type: ignore[return-value]


def _gps_coordinate(dms: Any, ref: Any, negative_ref: str, bound: float) -> float | None:
    if not isinstance(dms, tuple) or len(dms) != 3:
        return None
    parts = [_number(p) for p in dms]
    if any(p is None for p in parts):
        return None
    degrees, minutes, seconds = parts  # type: ignore[misc]
    value = degrees + minutes / 60 + seconds / 3600
    ref_text = _text(ref, 4)
    if ref_text and ref_text.upper().startswith(negative_ref):
        value = -value
    if not -bound <= value <= bound:
        return None
    return round(value, 7)


def _ifd(exif: Any, tag: int) -> Any:
    """A sub-directory of the EXIF block (anything with ``get``), or nothing if it is broken."""
    try:
        found = exif.get_ifd(tag)
        return found if isinstance(found, Directory) else dict(found)
    except PipelineError:  # a storage fault from fetch (or our read budget) is no broken directory
        raise
    except Exception:  # noqa: BLE001 - a broken directory costs its fields, not the image
        return {}


@dataclass(slots=True)
class _Found:
    """Per-source values the merge chooses from (EXIF, XMP, IPTC)."""

    exif: dict[str, Any] = field(default_factory=dict)
    xmp: dict[str, Any] = field(default_factory=dict)
    iptc: dict[str, Any] = field(default_factory=dict)
    iptc_first: bool = False  # IPTCDigest says IPTC was edited after XMP


def _apply_exif(im: Any, meta: ImageMetadata, found: _Found) -> Any:
    """The EXIF fields; returns the EXIF block (for its resolution) or None."""
    # getexif() decodes a PNG whose eXIf chunk comes after IDAT: only call it when
    # the header already holds the EXIF block (or for TIFF, whose tags are parsed).
    if "exif" not in im.info and im.format != "TIFF" and not isinstance(im, HeaderImage):
        return None
    try:
        exif = im.getexif()
    except PipelineError:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken EXIF block costs the fields, not the image
        _warn(meta, "exif", exc)
        return None
    # In HEIF/AVIF the container's irot/imir decide the orientation (_apply_heif); there
    # EXIF's is informational (pillow-heif also rewrites it to 1 and keeps it aside).
    orientation = exif.get(TAG_ORIENTATION)
    if isinstance(orientation, int) and 1 <= orientation <= 8 and im.format not in ("HEIF", "AVIF"):
        meta.orientation = orientation
    meta.camera_make = _text(exif.get(TAG_MAKE))
    meta.camera_model = _text(exif.get(TAG_MODEL))
    meta.software = _text(exif.get(TAG_SOFTWARE))
    found.exif["description"] = _text(exif.get(TAG_DESCRIPTION), 2000, multiline=True)
    found.exif["artist"] = _text(exif.get(TAG_ARTIST), 256)
    found.exif["copyright"] = _text(exif.get(TAG_COPYRIGHT), 512)
    found.exif["rating"] = exif.get(TAG_RATING)
    sub = _ifd(exif, IFD_EXIF)
    found.exif["taken"] = capture_time.parse_exif(
        _text(sub.get(TAG_DATETIME_ORIGINAL), 40), _text(sub.get(TAG_OFFSET_TIME_ORIGINAL), 8))
    meta.exposure_time = _number(sub.get(TAG_EXPOSURE))
    meta.f_number = _number(sub.get(TAG_FNUMBER))
    iso = sub.get(TAG_ISO)
    if isinstance(iso, tuple) and iso:
        iso = iso[0]
    meta.iso = iso if isinstance(iso, int) and 0 < iso < 10_000_000 else None
    meta.focal_length = _number(sub.get(TAG_FOCAL))
    meta.lens_model = _text(sub.get(TAG_LENS))
    gps = _ifd(exif, IFD_GPS)
    if gps:
        meta.gps_latitude = _gps_coordinate(gps.get(2), gps.get(1), "S", 90)
        meta.gps_longitude = _gps_coordinate(gps.get(4), gps.get(3), "W", 180)
        if meta.gps_latitude is None or meta.gps_longitude is None:
            meta.gps_latitude = meta.gps_longitude = None
        altitude = _number(gps.get(6))
        if altitude is not None:
            ref = gps.get(5)
            if ref in (1, b"\x01"):
                altitude = -altitude
            meta.gps_altitude = round(altitude, 2)
        stamp = capture_time.gps_date_time(_text(gps.get(GPS_DATE_STAMP), 12),
                                           _gps_time(gps.get(GPS_TIME_STAMP)))
        found.exif["gps_utc"] = stamp
        meta.gps_date_time = stamp.isoformat() if stamp else None
    return exif


def _warn(meta: ImageMetadata, source: str, exc: BaseException) -> None:
    """Record a field-level failure on the row: the image is still described."""
    meta.warnings = [*(meta.warnings or []), f"{source}: {type(exc).__name__}: {exc}"[:300]]


def _read_embedded(im: Image.Image, meta: ImageMetadata, found: _Found) -> None:
    packet = im.info.get("xmp")
    if packet:
        try:
            found.xmp = parse_xmp(packet)
        except XmpError as exc:
            _warn(meta, "xmp", exc)
    if "photoshop" in im.info or (im.format == "TIFF" and 33723 in getattr(im, "tag_v2", {})):
        try:
            found.iptc = read_iptc(im)
            found.iptc_first = bool(found.iptc) and iptc_newer_than_xmp(im)
        except PipelineError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken IPTC block costs its fields only
            _warn(meta, "iptc", exc)


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else (None if isinstance(value, list) else value)


def _joined(value: Any, limit: int) -> str | None:
    items = value if isinstance(value, list) else [value]
    return _clean("; ".join(i.strip() for i in items if isinstance(i, str) and i.strip()), limit)


def _rating(value: Any) -> int | None:
    """XMP/EXIF rating: -1 means rejected, 0 unrated, 1-5 stars; anything else is garbage."""
    if value is None:
        return None
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, AttributeError):
        return None
    return int(number) if number.is_integer() and -1 <= number <= 5 else None


def _keywords(items: Any) -> list[str] | None:
    """A keyword list, each keyword once (case-insensitively), in order."""
    seen: dict[str, str] = {}
    for item in items if isinstance(items, list) else [items]:
        text = _clean(item, MAX_KEYWORD)
        if text and text.casefold() not in seen and len(seen) < MAX_KEYWORDS:
            seen[text.casefold()] = text
    return list(seen.values()) or None


def _pick(*values: Any) -> Any:
    return next((v for v in values if v), None)


def _merge(meta: ImageMetadata, found: _Found) -> capture_time.LocalTime | None:
    """Choose each field as exiftool's MWG module (the Metadata Working Group's rules) does:
    EXIF first (but XMP's rating before EXIF's), then XMP, then IPTC — IPTC before XMP only when Photoshop's IPTCDigest shows
    the IPTC was edited after the XMP. Capture time follows exiftool's own DateTimeOriginal:
    EXIF, then XMP exif:DateTimeOriginal, then IPTC date + time, then photoshop:DateCreated."""
    exif, xmp, iptc = found.exif, found.xmp, found.iptc
    if not xmp and not iptc:  # the common camera file: EXIF alone decides
        meta.description, meta.artist = exif.get("description"), exif.get("artist")
        meta.copyright, meta.rating = exif.get("copyright"), _rating(exif.get("rating"))
        return _set_capture_time(meta, exif.get("taken"))

    def ordered(xmp_value: Any, iptc_value: Any) -> tuple[Any, Any]:
        return (iptc_value, xmp_value) if found.iptc_first else (xmp_value, iptc_value)

    meta.title = _pick(*ordered(_clean(_first(xmp.get("title")), 512),
                                _clean(iptc.get("object_name"), 512)))
    meta.description = _pick(exif.get("description"), *ordered(
        _clean(_first(xmp.get("description")), 2000, True), _clean(iptc.get("caption"), 2000, True)))
    meta.keywords = _pick(*ordered(_keywords(xmp.get("subject")), _keywords(iptc.get("keywords"))))
    meta.rating = next((r for r in (_rating(xmp.get("rating")), _rating(exif.get("rating")))
                        if r is not None), None)
    meta.artist = _pick(exif.get("artist"), *ordered(_joined(xmp.get("creator"), 256),
                                                     _joined(iptc.get("by_line"), 256)))
    meta.copyright = _pick(exif.get("copyright"), *ordered(_clean(_first(xmp.get("rights")), 512),
                                                           _clean(iptc.get("copyright_notice"), 512)))
    return _set_capture_time(meta, capture_time.choose(
        exif.get("taken"),
        capture_time.parse_xmp(_first(xmp.get("date_time_original"))),
        capture_time.parse_iptc(iptc.get("date_created"), iptc.get("time_created")),
        capture_time.parse_xmp(_first(xmp.get("date_created")), "xmp"),
    ))


def _set_capture_time(meta: ImageMetadata, local: capture_time.LocalTime | None) -> capture_time.LocalTime | None:
    if local is not None:
        meta.captured_at = local.value.isoformat()
        meta.captured_at_source = local.source
        if local.offset is not None:
            meta.captured_at_offset = capture_time.format_offset(local.offset)
    return local


def _locate(meta: ImageMetadata, local: capture_time.LocalTime | None, gps_utc: Any) -> None:
    """Place at the GPS position, and the UTC instant; the time zone at the position is looked
    up only when it decides the instant (no recorded offset, no usable GPS time), as
    exiftool-vendored (Immich) infers a zone from the position only then."""
    lat, lon = meta.gps_latitude, meta.gps_longitude
    if lat is None or lon is None:
        zone = None
    else:
        try:
            place = places.place_at(lat, lon)
            if place is not None:
                meta.country, meta.region, meta.city = place.country, place.region, place.city
        except Exception as exc:  # noqa: BLE001 - a look-up failure costs its fields only
            _warn(meta, "places", exc)

        def zone() -> str | None:
            try:
                meta.time_zone = places.time_zone_at(lat, lon)
            except Exception as exc:  # noqa: BLE001
                _warn(meta, "time zone", exc)
            return meta.time_zone

    try:
        moment = capture_time.instant(local, gps_utc, zone)
    except capture_time.ImpossibleInstant as exc:
        _warn(meta, "captured_at_utc", exc)
        return
    if moment is not None:
        meta.captured_at_utc = moment.utc.isoformat()
        meta.captured_at_utc_source = moment.source


def _icc_description(icc: Any) -> str | None:
    if not isinstance(icc, bytes) or not icc:
        return None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return _clean(ImageCms.getProfileDescription(profile)) or "embedded"
    except Exception:  # noqa: BLE001 - a broken profile is still a profile
        return "embedded"


def _apply_heif(im: Any, fp: IO[bytes], meta: ImageMetadata) -> tuple[int | None, int | None]:
    """HEIF/AVIF: the stored size (ispe) and the orientation irot/imir give (1 without them).
    Returns pixi's bit depth and the frames of its image sequence track (None: no sequence)."""
    info = read_heif_info(fp)
    if info is None:
        return None, None
    if info.width and info.height:
        meta.width, meta.height = info.width, info.height
    meta.orientation = info.orientation
    return info.bit_depth, (info.frames or getattr(im, "n_frames", 1)) if info.sequence else None


def _apply_profiles(im: Any, fp: IO[bytes], meta: ImageMetadata, found: _Found) -> None:
    """PNG text-chunk profiles into Pillow's info keys (so EXIF is parsed without a decode);
    a GIF's XMP extension."""
    if im.format == "PNG":
        profiles = png_text_profiles(im.info)
        if "exif" in profiles and "exif" not in im.info:
            im.info["exif"] = profiles["exif"]
        if "xmp" in profiles and "xmp" not in im.info:
            im.info["xmp"] = profiles["xmp"]
        if "icc" in profiles and not im.info.get("icc_profile"):
            im.info["icc_profile"] = profiles["icc"]
        if "iptc" in profiles:
            found.iptc = read_iptc_data(profiles["iptc"])
    elif im.format == "GIF":
        packet = gif_xmp(fp)
        if packet:
            im.info["xmp"] = packet


def _xmp_gps(meta: ImageMetadata, found: _Found) -> None:
    """GPS recorded only in XMP (exif:GPSLatitude/GPSLongitude), used when EXIF has none."""
    if meta.gps_latitude is not None or not found.xmp:
        return
    lat = gps_coordinate(_first(found.xmp.get("gps_latitude")), "S", 90)
    lon = gps_coordinate(_first(found.xmp.get("gps_longitude")), "W", 180)
    if lat is None or lon is None:
        return
    meta.gps_latitude, meta.gps_longitude = lat, lon
    altitude = _number(_rational_text(_first(found.xmp.get("gps_altitude"))))
    if altitude is not None and meta.gps_altitude is None:
        negative = str(_first(found.xmp.get("gps_altitude_ref")) or "").strip() == "1"
        meta.gps_altitude = round(-altitude if negative else altitude, 2)


def _rational_text(value: Any) -> Any:
    """XMP's rational "num/den" as a (num, den) pair."""
    if isinstance(value, str) and "/" in value:
        num, _, den = value.partition("/")
        try:
            return int(num), int(den)
        except ValueError:
            return None
    return value


def _stored_size(im: Any) -> tuple[int, int]:
    """The size as stored (exiftool's): Pillow swaps a TIFF's for orientations 5-8."""
    tags = getattr(im, "tag_v2", None) if im.format == "TIFF" else None
    if tags is not None:
        width, height = tags.get(256), tags.get(257)
        if isinstance(width, int) and isinstance(height, int):
            return width, height
    return im.size


def describe(fp: IO[bytes], size: int, limits: Limits) -> ImageMetadata:
    """Read metadata from a seekable file; raise RejectedInput if it is not an acceptable image."""
    if size == 0:
        raise RejectedInput("empty blob (0 bytes): nothing to read")
    try:
        im, open_warnings = open_image(fp, size)
    except (PipelineError, MemoryError):  # rejections with their reasons, storage faults from fetch
        raise
    except Exception as exc:  # noqa: BLE001 - a header reader's failure on hostile input
        raise RejectedInput(f"corrupt image header: {type(exc).__name__}: {exc}"[:500]) from None
    try:
        width, height = _stored_size(im)
        if width <= 0 or height <= 0:
            raise RejectedInput(f"image header gives an empty size {width}x{height}")
        fmt = im.format or "UNKNOWN"
        meta = ImageMetadata(
            format=fmt,
            content_type=_CONTENT_TYPES.get(fmt) or Image.MIME.get(fmt),
            width=width,
            height=height,
            mode=im.mode,
            has_alpha=im.has_alpha if isinstance(im, HeaderImage) else (
                im.mode in ("RGBA", "LA", "PA", "La", "RGBa")
                or (im.mode == "P" and "transparency" in im.info)),
            extractor_version=EXTRACTOR_VERSION,
            warnings=open_warnings or None,
        )
        heif_depth, sequence = _apply_heif(im, fp, meta) if fmt in ("HEIF", "AVIF") else (None, None)
        if meta.width * meta.height > limits.max_pixels:  # type: ignore[operator]
            raise RejectedInput(
                f"image is {meta.width}x{meta.height} = {meta.width * meta.height} pixels, over the "  # type: ignore[operator]
                f"limit of {limits.max_pixels} (MaxImagePixels): possible decompression bomb"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            meta.animated, meta.frame_count = header_facts.frames(im, sequence)
            found = _Found()
            _apply_profiles(im, fp, meta, found)
            exif = _apply_exif(im, meta, found)
            _read_embedded(im, meta, found)
            local = _merge(meta, found)
            _xmp_gps(meta, found)
        _locate(meta, local, found.exif.get("gps_utc"))
        meta.bit_depth = header_facts.bit_depth(im, fp, heif_depth)
        display = im.display_size if isinstance(im, HeaderImage) and im.display_size else (
            meta.width, meta.height)
        swap = meta.orientation in (5, 6, 7, 8)
        meta.display_width, meta.display_height = (display[1], display[0]) if swap else display
        meta.dpi_x, meta.dpi_y = header_facts.dpi(im, exif)
        meta.icc_profile = _icc_description(im.info.get("icc_profile"))
        return meta
    except (PipelineError, MemoryError):  # rejections, and storage faults from fetch, pass unchanged
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure on hostile input is a rejection
        raise RejectedInput(f"corrupt {getattr(im, 'format', None) or 'image'}: "
                            f"{type(exc).__name__}: {exc}"[:500]) from None
    finally:
        im.close()


def extract_from_ranges(
    size: int,
    fetch: Callable[[int, int], bytes],
    limits: Limits,
    first_chunk: bytes | None = None,
) -> ImageMetadata:
    """Extract through ranged reads, recording how many bytes and requests it took."""
    fp = RangedFile(
        size, fetch, chunk_size=limits.head_bytes, max_bytes=limits.max_bytes_read,
        first_chunk=first_chunk,
    )
    meta = describe(fp, size, limits)
    meta.bytes_read, meta.read_requests = fp.bytes_read, fp.requests
    return meta


def extract_from_bytes(data: bytes, limits: Limits | None = None) -> ImageMetadata:
    """Extract from bytes in memory (tests, benchmarks, local files)."""
    limits = limits or Limits()
    return extract_from_ranges(len(data), lambda off, n: data[off : off + n], limits)
