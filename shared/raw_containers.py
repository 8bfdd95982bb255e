"""Raw photos in their makers' own containers: Fujifilm RAF.

RAF (as exiftool's FujiFilm module reads it): a 0x5C-byte big-endian header — ``FUJIFILM``,
format and camera names, then the embedded JPEG preview's offset and length at 0x54 — and
offsets of the RAF directories at 0x5C and 0x78 (count, then tag/length/value entries). The
picture's size is RawImageCroppedSize (tag 0x111, height then width), exiftool's image size,
else RawImageFullSize (0x100). Camera, exposure, GPS, time and orientation are the EXIF of
the embedded JPEG (APP1), which sits near the start; the directory follows the preview, so a
RAF costs the first request plus one for its directory.
"""

from __future__ import annotations

import struct
from typing import IO

from PIL import Image

from shared.header_image import HeaderImage

RAF_MAGIC = b"FUJIFILM"
MAX_JPEG_HEADER = 1024 * 1024  # EXIF and XMP segments of the preview: far below this
XMP_ID = b"http://ns.adobe.com/xap/1.0/\x00"
TAG_FULL_SIZE, TAG_CROPPED_SIZE = 0x100, 0x111


class NotRaf(ValueError):
    """Not a readable RAF; the message says why."""


def _jpeg_segments(fp: IO[bytes], start: int, length: int) -> dict[str, bytes]:
    """The EXIF and XMP payloads of the JPEG at start (segments before its scan)."""
    found: dict[str, bytes] = {}
    fp.seek(start)
    if fp.read(2) != b"\xff\xd8":
        return found
    pos, end = start + 2, start + min(length, MAX_JPEG_HEADER)
    while pos + 4 <= end:
        fp.seek(pos)
        marker, size = struct.unpack(">2sH", fp.read(4))
        if marker[0] != 0xFF or marker[1] in (0xDA, 0xD9) or size < 2:
            break
        if marker[1] == 0xE1:
            payload = fp.read(size - 2)
            if payload.startswith(b"Exif\x00\x00") and "exif" not in found:
                found["exif"] = payload
            elif payload.startswith(XMP_ID) and "xmp" not in found:
                found["xmp"] = payload[len(XMP_ID):]
        pos += 2 + size
    return found


def _raf_directory(fp: IO[bytes], offset: int) -> dict[int, bytes]:
    fp.seek(offset)
    head = fp.read(4)
    if len(head) < 4:
        raise NotRaf(f"RAF directory at {offset} is past the end of the file")
    count = struct.unpack(">I", head)[0]
    if count >= 256:
        raise NotRaf(f"RAF directory at {offset} claims {count} entries")
    entries: dict[int, bytes] = {}
    for _ in range(count):
        entry = fp.read(4)
        if len(entry) < 4:
            raise NotRaf("RAF directory cut short")
        tag, size = struct.unpack(">HH", entry)
        value = fp.read(size)
        if len(value) < size:
            raise NotRaf("RAF directory cut short")
        entries.setdefault(tag, value)
    return entries


def _height_width(value: bytes | None) -> tuple[int, int] | None:
    if value is None or len(value) < 4:
        return None
    height, width = struct.unpack(">HH", value[:4])
    return (width, height) if width and height else None


def describe_raf(fp: IO[bytes]) -> HeaderImage:
    fp.seek(0)
    header = fp.read(0x84)
    if len(header) < 0x5C or not header.startswith(RAF_MAGIC):
        raise NotRaf("no FUJIFILM header")
    jpeg_offset, jpeg_length = struct.unpack_from(">II", header, 0x54)
    directory: dict[int, bytes] = {}
    for at in (0x5C, 0x78):
        if at + 4 > len(header) or at >= jpeg_offset:
            break
        start = struct.unpack_from(">I", header, at)[0]
        if start:
            for tag, value in _raf_directory(fp, start).items():
                directory.setdefault(tag, value)
    size = _height_width(directory.get(TAG_CROPPED_SIZE)) or _height_width(directory.get(TAG_FULL_SIZE))
    if size is None:
        raise NotRaf("RAF directory gives no image size (RawImageCroppedSize/RawImageFullSize)")
    segments = _jpeg_segments(fp, jpeg_offset, jpeg_length) if jpeg_offset else {}
    exif = None
    if "exif" in segments:
        exif = Image.Exif()
        exif.load(segments["exif"])
    info = {"xmp": segments["xmp"]} if "xmp" in segments else {}
    return HeaderImage(format="RAF", size=size, mode="CFA", info=info, exif=exif)
