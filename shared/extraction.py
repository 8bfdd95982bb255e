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
import math
import re
import struct
import warnings
import zlib
from collections.abc import Callable
from datetime import datetime
from typing import IO, Any

from PIL import Image, ImageCms, UnidentifiedImageError

from shared.errors import RejectedInput
from shared.models import ImageMetadata
from shared.ranged_reader import RangedFile, ReadBudgetExceeded
from shared.settings import Limits

try:  # HEIC/HEIF (phones upload them) through the maintained pillow-heif plugin.
    from pillow_heif import register_heif_opener

    register_heif_opener()
    HEIF_FORMATS: tuple[str, ...] = ("HEIF",)
except ImportError:  # pragma: no cover - the plugin is in requirements.txt
    HEIF_FORMATS = ()

ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", *HEIF_FORMATS)

# We never decode pixels, so Pillow's decompression-bomb guard (which exists to
# protect decoding) would only hide the size; our own max_pixels limit is
# checked against the header instead and gives a recorded rejection.
Image.MAX_IMAGE_PIXELS = None

_CONTENT_TYPES = {"MPO": "image/jpeg", "HEIF": "image/heif"}
_BITS_PER_MODE = {
    "1": 1, "L": 8, "P": 8, "RGB": 8, "RGBA": 8, "CMYK": 8, "YCbCr": 8, "LA": 8, "PA": 8,
    "La": 8, "RGBa": 8, "RGBX": 8, "LAB": 8, "HSV": 8,
    "I;16": 16, "I;16B": 16, "I;16L": 16, "I;16N": 16, "I": 32, "F": 32,
}
_OFFSET_RE = re.compile(r"^[+-](?:[01]\d|2[0-3]):[0-5]\d$")

TAG_ORIENTATION, TAG_MAKE, TAG_MODEL, TAG_SOFTWARE = 0x0112, 0x010F, 0x0110, 0x0131
IFD_EXIF, IFD_GPS = 0x8769, 0x8825
TAG_DATETIME_ORIGINAL, TAG_OFFSET_TIME_ORIGINAL = 0x9003, 0x9011
TAG_EXPOSURE, TAG_FNUMBER, TAG_ISO, TAG_FOCAL, TAG_LENS = 0x829A, 0x829D, 0x8827, 0x920A, 0xA434


def _number(value: Any) -> float | None:
    """A finite float from an EXIF number or rational, or None (zero denominators too)."""
    try:
        if isinstance(value, tuple) and len(value) == 2:
            value = value[0] / value[1]
        result = float(value)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return result if math.isfinite(result) else None


def _text(value: Any, limit: int = 128) -> str | None:
    """A clean printable string, or None for garbage."""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    if not value or not value.isprintable():
        return None
    return value[:limit]


def _capture_time(value: Any) -> str | None:
    text = _text(value, 40)
    if not text:
        return None
    try:
        return datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S").isoformat()
    except ValueError:
        return None


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


def _ifd(exif: Image.Exif, tag: int) -> dict[int, Any]:
    """A sub-directory of the EXIF block, or nothing if it is broken."""
    try:
        return dict(exif.get_ifd(tag))
    except Exception:  # noqa: BLE001 - a broken directory costs its fields, not the image
        return {}


def _apply_exif(im: Image.Image, meta: ImageMetadata) -> None:
    # getexif() decodes a PNG whose eXIf chunk comes after IDAT: only call it when
    # the header already holds the EXIF block (or for TIFF, whose tags are parsed).
    if "exif" not in im.info and im.format != "TIFF":
        return
    try:
        exif = im.getexif()
    except Exception:  # noqa: BLE001 - a broken EXIF block costs the fields, not the image
        return
    # pillow-heif rewrites the EXIF orientation to 1 and keeps the file's value aside.
    orientation = im.info.get("original_orientation", exif.get(TAG_ORIENTATION))
    if isinstance(orientation, int) and 1 <= orientation <= 8:
        meta.orientation = orientation
    meta.camera_make = _text(exif.get(TAG_MAKE))
    meta.camera_model = _text(exif.get(TAG_MODEL))
    meta.software = _text(exif.get(TAG_SOFTWARE))
    sub = _ifd(exif, IFD_EXIF)
    meta.captured_at = _capture_time(sub.get(TAG_DATETIME_ORIGINAL))
    offset = _text(sub.get(TAG_OFFSET_TIME_ORIGINAL), 8)
    meta.captured_at_offset = offset if offset and _OFFSET_RE.match(offset) else None
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


def _icc_description(icc: Any) -> str | None:
    if not isinstance(icc, bytes) or not icc:
        return None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return _text(ImageCms.getProfileDescription(profile)) or "embedded"
    except Exception:  # noqa: BLE001 - a broken profile is still a profile
        return "embedded"


def _bit_depth(im: Image.Image, fp: IO[bytes]) -> int | None:
    if im.format == "PNG":
        # IHDR's bit-depth byte sits at a fixed offset; Pillow folds 16-bit into 8-bit modes.
        fp.seek(24)
        depth = fp.read(1)
        if depth and depth[0] in (1, 2, 4, 8, 16):
            return depth[0]
    if im.format == "TIFF":
        bits = im.tag_v2.get(258) if hasattr(im, "tag_v2") else None
        if isinstance(bits, tuple) and bits:
            bits = bits[0]
        if isinstance(bits, int) and 0 < bits <= 64:
            return bits
    return _BITS_PER_MODE.get(im.mode)


def _frames(im: Image.Image) -> tuple[bool, int]:
    animated = bool(getattr(im, "is_animated", False))
    count = getattr(im, "n_frames", 1)
    return animated, int(count) if isinstance(count, int) and count > 0 else 1


def describe(fp: IO[bytes], size: int, limits: Limits) -> ImageMetadata:
    """Read metadata from a seekable file; raise RejectedInput if it is not an acceptable image."""
    if size == 0:
        raise RejectedInput("empty blob (0 bytes): nothing to read")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im = Image.open(fp, formats=list(ALLOWED_FORMATS))
    except ReadBudgetExceeded:
        raise
    except UnidentifiedImageError:
        raise RejectedInput(
            "not a supported image: the content is none of " + ", ".join(ALLOWED_FORMATS)
            + " (the file extension is not trusted)"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError,
            KeyError, TypeError, MemoryError) as exc:
        raise RejectedInput(f"corrupt image header: {type(exc).__name__}: {exc}") from None
    try:
        width, height = im.size
        if width <= 0 or height <= 0:
            raise RejectedInput(f"image header gives an empty size {width}x{height}")
        if width * height > limits.max_pixels:
            raise RejectedInput(
                f"image is {width}x{height} = {width * height} pixels, over the limit of "
                f"{limits.max_pixels} (MaxImagePixels): possible decompression bomb"
            )
        fmt = im.format or "UNKNOWN"
        meta = ImageMetadata(
            format=fmt,
            content_type=_CONTENT_TYPES.get(fmt) or Image.MIME.get(fmt),
            width=width,
            height=height,
            mode=im.mode,
            has_alpha=im.mode in ("RGBA", "LA", "PA", "La", "RGBa")
            or (im.mode == "P" and "transparency" in im.info),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            meta.animated, meta.frame_count = _frames(im)
            _apply_exif(im, meta)
        meta.bit_depth = _bit_depth(im, fp)
        swap = meta.orientation in (5, 6, 7, 8)
        meta.display_width, meta.display_height = (height, width) if swap else (width, height)
        dpi = im.info.get("dpi")
        if isinstance(dpi, tuple) and len(dpi) == 2:
            dx, dy = _number(dpi[0]), _number(dpi[1])
            if dx and dy and 0 < dx < 100_000 and 0 < dy < 100_000:
                meta.dpi_x, meta.dpi_y = round(dx, 2), round(dy, 2)
        meta.icc_profile = _icc_description(im.info.get("icc_profile"))
        return meta
    except (RejectedInput, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure on hostile input is a rejection
        raise RejectedInput(f"corrupt image: {type(exc).__name__}: {exc}") from None
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
