"""Raw photos in their makers' own containers: Fujifilm RAF, Canon CR3.

RAF (as exiftool's FujiFilm module reads it): a 0x5C-byte big-endian header — ``FUJIFILM``,
format and camera names, then the embedded JPEG preview's offset and length at 0x54 — and
offsets of the RAF directories at 0x5C and 0x78 (count, then tag/length/value entries). The
picture's size is RawImageCroppedSize (tag 0x111, height then width), exiftool's image size,
else RawImageFullSize (0x100). Camera, exposure, GPS, time and orientation are the EXIF of
the embedded JPEG (APP1), which sits near the start; the directory follows the preview, so a
RAF costs the first request plus one for its directory.
"""

from __future__ import annotations

import io
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


# ---- Canon CR3 ----------------------------------------------------------------------------------
# An ISO base media file (brand "crx "): moov holds Canon's uuid box 85c0b687-820f-11e0-8111-
# f4ce462b6a48 with CMT1 (IFD0), CMT2 (the EXIF directory), CMT4 (the GPS directory), each a
# little TIFF (exiftool's Canon::uuid table; lclevy's CR3 description), and tracks whose
# 'CRAW' sample entries give each picture's width and height (track 1 the full-size picture).

CANON_UUID = bytes.fromhex("85c0b687820f11e08111f4ce462b6a48")
MAX_MOOV = 8 * 1024 * 1024


def _boxes(data: bytes, start: int, end: int):
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1 and pos + 16 <= end:
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        if size < header or pos + size > end:
            return
        yield kind, pos + header, pos + size
        pos += size


class Cr3Exif:
    """CMT1/CMT2/CMT4 behind the ``get``/``get_ifd`` calls extraction makes on EXIF."""

    def __init__(self, directories: dict[bytes, object]) -> None:
        self.directories = directories

    def get(self, tag: int, default: object = None) -> object:
        ifd0 = self.directories.get(b"CMT1")
        return ifd0.get(tag, default) if ifd0 is not None else default  # type: ignore[attr-defined]

    def get_ifd(self, tag: int) -> object:
        return self.directories.get({0x8769: b"CMT2", 0x8825: b"CMT4"}.get(tag, b""), {})


def _craw_sizes(data: bytes, start: int, end: int, depth: int = 0) -> list[tuple[int, int]]:
    sizes = []
    for kind, s, e in _boxes(data, start, end):
        if kind in (b"trak", b"mdia", b"minf", b"stbl") and depth < 6:
            sizes += _craw_sizes(data, s, e, depth + 1)
        elif kind == b"stsd" and e - s >= 8:
            for entry, es, ee in _boxes(data, s + 8, e):
                if entry == b"CRAW" and ee - es >= 28:
                    sizes.append(struct.unpack_from(">HH", data, es + 24))
    return sizes


def describe_cr3(fp: IO[bytes], size: int) -> HeaderImage:
    from shared.tiff_ifd import TAG_HEIGHT, TAG_WIDTH, NotTiff, TiffReader

    pos, moov = 0, None
    for _ in range(16):
        fp.seek(pos)
        head = fp.read(16)
        if len(head) < 8:
            break
        box_size, kind = struct.unpack_from(">I4s", head)
        if box_size == 1 and len(head) == 16:
            box_size = struct.unpack_from(">Q", head, 8)[0]
        if box_size < 8:
            break
        if kind == b"moov":
            if box_size > MAX_MOOV:
                raise NotRaf(f"CR3 moov box of {box_size} bytes is over {MAX_MOOV}")
            fp.seek(pos)
            moov = fp.read(box_size)
            break
        pos += box_size
    if moov is None:
        raise NotRaf("CR3 without a moov box")
    directories: dict[bytes, object] = {}
    for kind, s, e in _boxes(moov, 8, len(moov)):
        if kind == b"uuid" and moov[s:s + 16] == CANON_UUID:
            for sub, ss, se in _boxes(moov, s + 16, e):
                if sub in (b"CMT1", b"CMT2", b"CMT4"):
                    try:
                        chain = TiffReader(io.BytesIO(moov[ss:se])).chain()
                    except NotTiff:
                        continue
                    if chain:
                        directories[sub] = chain[0]
    exif = Cr3Exif(directories)
    width, height = exif.get(TAG_WIDTH), exif.get(TAG_HEIGHT)
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        sizes = _craw_sizes(moov, 8, len(moov))
        if not sizes:
            raise NotRaf("CR3 gives no image size (CMT1 ImageWidth/ImageLength or a CRAW track)")
        width, height = max(sizes, key=lambda s: s[0] * s[1])
    return HeaderImage(format="CR3", size=(width, height), mode="CFA", exif=exif)


# ---- Minolta MRW --------------------------------------------------------------------------------
# "\0MRM", the data offset, then segments (4-byte tag, 4-byte length): PRD gives the picture's
# size (ImageHeight at 12, ImageWidth at 14, BitDepth at 17, big-endian), TTW is a TIFF holding
# IFD0 and its EXIF directory (exiftool's MinoltaRaw module).

MRW_MAGIC = b"\x00MRM"


def describe_mrw(fp: IO[bytes]) -> HeaderImage:
    from shared.tiff_ifd import ExifView, NotTiff, TiffReader

    fp.seek(0)
    head = fp.read(8)
    if len(head) < 8 or head[:4] != MRW_MAGIC:
        raise NotRaf("no MRW header")
    end = 8 + struct.unpack_from(">I", head, 4)[0]
    pos, size, bits, exif = 8, None, None, None
    while pos + 8 <= end:
        fp.seek(pos)
        tag, length = struct.unpack(">4sI", fp.read(8))
        if pos + 8 + length > end:
            raise NotRaf(f"MRW segment {tag!r} runs past the data offset")
        if tag == b"\x00PRD" and length >= 18:
            prd = fp.read(length)
            height, width = struct.unpack_from(">HH", prd, 12)
            size, bits = (width, height), prd[17] or None
        elif tag == b"\x00TTW":
            try:
                reader = TiffReader(io.BytesIO(fp.read(length)))
                chain = reader.chain()
            except NotTiff:
                chain = []
            if chain:
                exif = ExifView(reader, chain[0])
        pos += 8 + length
    if not size or not all(size):
        raise NotRaf("MRW without a PRD segment giving the image size")
    return HeaderImage(format="MRW", size=size, mode="CFA", bit_depth=bits, exif=exif)
