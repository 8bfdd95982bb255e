"""Bit depth, resolution and animation, by one rule in every format.

BitDepth is the bits of one sample as stored (PNG's IHDR bit depth, TIFF's BitsPerSample,
JPEG's sample precision, HEIF/AVIF's ``pixi``); for palette images, the bits of the palette
index (GIF's colour-table size, BMP's bit count, PNG's IHDR); where the channels of a BMP
bit-field layout differ (5-6-5, 10-10-10-2), the widest channel's.

DPI only where the file records a resolution with a physical unit: JFIF density (inches or
centimetres), EXIF/TIFF XResolution/YResolution with ResolutionUnit (inches by the TIFF
default, centimetres; "no unit" is an aspect ratio, not a resolution), PNG pHYs in metres, BMP
pixels per metre. Pillow's defaults (72 for a JPEG with EXIF, 1 for a TIFF without the tags)
are not facts and are never reported.

Animated only for animation: GIF, APNG and WebP with more than one frame, and HEIF/AVIF image
sequences (a ``moov`` track of pictures, shared/heif_boxes.py) of more than one frame. The
pictures of an MPO (a preview or depth map beside the photo), the pages of a TIFF and the
items of a HEIF beside its primary image are counted in FrameCount but are no animation.
"""

from __future__ import annotations

import math
import struct
from typing import IO, Any

from shared.embedded_profiles import skip_sub_blocks
from shared.header_image import HeaderImage, NotBmp, read_bmp_header

TAG_X_RESOLUTION, TAG_Y_RESOLUTION, TAG_RESOLUTION_UNIT = 0x011A, 0x011B, 0x0128
_BITS_PER_MODE = {
    "1": 1, "L": 8, "P": 8, "RGB": 8, "RGBA": 8, "CMYK": 8, "YCbCr": 8, "LA": 8, "PA": 8,
    "La": 8, "RGBa": 8, "RGBX": 8, "LAB": 8, "HSV": 8,
    "I;16": 16, "I;16B": 16, "I;16L": 16, "I;16N": 16, "I": 32, "F": 32,
}
ANIMATION_FORMATS = {"GIF", "PNG", "WEBP"}
MAX_DPI = 100_000


def number(value: Any) -> float | None:
    """A finite float from an EXIF number or rational, or None (zero denominators too)."""
    try:
        if isinstance(value, tuple) and len(value) == 2:
            value = value[0] / value[1]
        result = float(value)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return result if math.isfinite(result) else None


def _gif_index_bits(fp: IO[bytes]) -> int | None:
    """The colour table's index bits: the global table's, else the first image's local one."""
    fp.seek(10)
    flags = fp.read(1)
    if not flags:
        return None
    if flags[0] & 0x80:
        return (flags[0] & 7) + 1
    pos = 13
    for _ in range(256):  # extensions before the first image descriptor
        fp.seek(pos)
        marker = fp.read(2)
        if not marker or marker[0] == 0x3B:
            return None
        if marker[0] == 0x2C:
            fp.seek(pos + 9)
            local = fp.read(1)
            return (local[0] & 7) + 1 if local and local[0] & 0x80 else None
        if marker[0] != 0x21:
            return None
        pos = skip_sub_blocks(fp, pos + 2)
        if pos is None:
            return None
    return None


def bit_depth(im: Any, fp: IO[bytes], heif_depth: int | None = None) -> int | None:
    if isinstance(im, HeaderImage):
        return im.bit_depth
    fmt = im.format
    if fmt == "PNG":
        # IHDR's bit-depth byte sits at a fixed offset; Pillow folds 16-bit into 8-bit modes.
        fp.seek(24)
        depth = fp.read(1)
        if depth and depth[0] in (1, 2, 4, 8, 16):
            return depth[0]
    elif fmt == "TIFF":
        bits = im.tag_v2.get(258) if hasattr(im, "tag_v2") else None
        if isinstance(bits, tuple) and bits:
            bits = bits[0]
        if isinstance(bits, int) and 0 < bits <= 64:
            return bits
    elif fmt == "GIF":
        return _gif_index_bits(fp)
    elif fmt == "BMP":
        try:
            return read_bmp_header(fp, 1 << 62).bit_depth
        except (NotBmp, struct.error):
            pass
    elif fmt in ("HEIF", "AVIF") and heif_depth:
        return heif_depth
    elif fmt in ("JPEG", "MPO"):
        bits = getattr(im, "bits", None)  # the frame header's sample precision (8 or 12)
        if isinstance(bits, int) and 0 < bits <= 16:
            return bits
    return _BITS_PER_MODE.get(im.mode)


def _pair(x: Any, y: Any, factor: float) -> tuple[float | None, float | None]:
    dx, dy = number(x), number(y)
    return (round(dx * factor, 2) if dx and 0 < dx * factor < MAX_DPI else None,
            round(dy * factor, 2) if dy and 0 < dy * factor < MAX_DPI else None)


def _tiff_resolution(tags: Any) -> tuple[float | None, float | None]:
    """XResolution/YResolution with ResolutionUnit (2 inches by default, 3 centimetres)."""
    if not tags:
        return None, None
    unit = tags.get(TAG_RESOLUTION_UNIT, 2)
    if isinstance(unit, tuple) and unit:
        unit = unit[0]
    factor = {2: 1.0, 3: 2.54}.get(unit)  # type: ignore[call-overload]
    if factor is None:
        return None, None
    return _pair(tags.get(TAG_X_RESOLUTION), tags.get(TAG_Y_RESOLUTION), factor)


def dpi(im: Any, exif: Any) -> tuple[float | None, float | None]:
    if isinstance(im, HeaderImage):
        return im.dpi if im.dpi is not None else _tiff_resolution(exif)
    fmt, info = im.format, im.info
    if fmt in ("JPEG", "MPO"):
        unit, density = info.get("jfif_unit"), info.get("jfif_density")
        if unit in (1, 2) and isinstance(density, tuple) and len(density) == 2:
            found = _pair(density[0], density[1], 1.0 if unit == 1 else 2.54)
            if found != (None, None):
                return found
        return _tiff_resolution(exif)
    if fmt in ("PNG", "BMP"):  # Pillow sets these only from pHYs in metres / BMP's header
        recorded = info.get("dpi")
        if isinstance(recorded, tuple) and len(recorded) == 2:
            return _pair(recorded[0], recorded[1], 1.0)
        return None, None
    if fmt == "TIFF":
        return _tiff_resolution(getattr(im, "tag_v2", None))
    return _tiff_resolution(exif)  # WebP, HEIF, AVIF: their EXIF


def frames(im: Any, sequence_frames: int | None = None) -> tuple[bool, int]:
    """(Animated, FrameCount). HEIF/AVIF: animated only with an image sequence track, counted by
    its samples; their other pictures (auxiliaries, thumbnails, a burst of items) are counted,
    never animated."""
    count = getattr(im, "n_frames", 1)
    count = int(count) if isinstance(count, int) and count > 0 else 1
    if im.format in ("HEIF", "AVIF"):
        return (sequence_frames > 1, sequence_frames) if sequence_frames else (False, count)
    animated = im.format in ANIMATION_FORMATS and count > 1 and bool(getattr(im, "is_animated", False))
    return animated, count
