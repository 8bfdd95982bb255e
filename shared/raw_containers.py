"""Raw photos in their makers' own containers: Fujifilm RAF, Canon CR3 and CRW, Minolta MRW,
Sigma X3F.

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
from datetime import UTC, datetime
from typing import IO, Any

from PIL import Image

from shared.header_image import HeaderImage
from shared.isobmff import boxes, top_boxes

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


class TagExif:
    """IFD0, EXIF and GPS directories (anything with ``get``) behind the ``get``/``get_ifd``
    calls extraction makes on EXIF: CR3's CMT1/CMT2/CMT4, the values CRW and X3F records give."""

    def __init__(self, ifd0: Any, exif: Any = None, gps: Any = None) -> None:
        self.ifd0, self.subs = ifd0 if ifd0 is not None else {}, {0x8769: exif or {}, 0x8825: gps or {}}

    def get(self, tag: int, default: object = None) -> object:
        return self.ifd0.get(tag, default)

    def get_ifd(self, tag: int) -> object:
        return self.subs.get(tag, {})


def _craw_sizes(data: bytes, start: int, end: int, depth: int = 0) -> list[tuple[int, int]]:
    sizes = []
    for kind, s, e in boxes(data, start, end):
        if kind in (b"trak", b"mdia", b"minf", b"stbl") and depth < 6:
            sizes += _craw_sizes(data, s, e, depth + 1)
        elif kind == b"stsd" and e - s >= 8:
            for entry, es, ee in boxes(data, s + 8, e):
                if entry == b"CRAW" and ee - es >= 28:
                    sizes.append(struct.unpack_from(">HH", data, es + 24))
    return sizes


def describe_cr3(fp: IO[bytes], size: int) -> HeaderImage:
    from shared.tiff_ifd import TAG_HEIGHT, TAG_WIDTH, NotTiff, TiffReader

    moov = None
    found = top_boxes(fp, 0, size, {b"moov"}).get(b"moov")
    if found is not None:
        at, box_size = found
        if box_size > MAX_MOOV:
            raise NotRaf(f"CR3 moov box of {box_size} bytes is over {MAX_MOOV}")
        fp.seek(at)
        moov = fp.read(box_size)
    if moov is None:
        raise NotRaf("CR3 without a moov box")
    directories: dict[bytes, object] = {}
    for kind, s, e in boxes(moov, 8, len(moov)):
        if kind == b"uuid" and moov[s:s + 16] == CANON_UUID:
            for sub, ss, se in boxes(moov, s + 16, e):
                if sub in (b"CMT1", b"CMT2", b"CMT4"):
                    try:
                        chain = TiffReader(io.BytesIO(moov[ss:se])).chain()
                    except NotTiff:
                        continue
                    if chain:
                        directories[sub] = chain[0]
    exif = TagExif(directories.get(b"CMT1"), directories.get(b"CMT2"), directories.get(b"CMT4"))
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


# ---- Canon CRW and Sigma X3F: directories at the end of the file ---------------------------------
# Both end with a pointer to their directory, so a file costs its first request (header, and the
# sections laid out before the raw data) plus one near its end. Rotation (degrees clockwise, as
# the header or ImageInfo records it) becomes the EXIF orientation as dcraw maps it (main():
# 90 -> flip 6, 180 -> 3, 270 -> 5, which its TIFF table "50132467" makes EXIF 6, 3 and 8).

ROTATION_ORIENTATION = {0: 1, 90: 6, 180: 3, 270: 8}
CRW_SIGNATURES = (b"HEAPCCDR", b"HEAPJPGM")
MAX_CIFF_ENTRIES, MAX_CIFF_DEPTH, MAX_CIFF_HEAPS, MAX_CIFF_VALUE = 1024, 4, 64, 64 * 1024
# CIFF record ids (CIFF v1r04; exiftool's CanonRaw::Main): MakeModel, FocalLength, TimeStamp,
# ImageInfo, ExposureInfo.
CRW_MAKE_MODEL, CRW_FOCAL, CRW_TIME, CRW_IMAGE_INFO, CRW_EXPOSURE = 0x080A, 0x1029, 0x180E, 0x1810, 0x1818
CRW_WANTED = {CRW_MAKE_MODEL, CRW_FOCAL, CRW_TIME, CRW_IMAGE_INFO, CRW_EXPOSURE}
X3F_MAGIC = b"FOVb"
MAX_X3F_SECTIONS, MAX_PROP = 64, 1024 * 1024


def _exif_time(seconds: int) -> str:
    """A camera's clock stored as Unix seconds (CRW, X3F): its wall time, as exiftool shows it."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y:%m:%d %H:%M:%S")


def _ciff_records(fp: IO[bytes], order: str, start: int, length: int, found: dict[int, bytes],
                  depth: int = 0, seen: set[int] | None = None) -> None:
    """The wanted records of the CIFF heap at start, and of the heaps inside it (first wins);
    each heap once, at most MAX_CIFF_HEAPS of them (hostile heaps may point at each other)."""
    seen = set() if seen is None else seen
    if length < 6 or depth > MAX_CIFF_DEPTH or start in seen or len(seen) >= MAX_CIFF_HEAPS:
        return
    seen.add(start)
    fp.seek(start + length - 4)
    tail = fp.read(4)
    if len(tail) < 4:
        raise NotRaf(f"CRW heap at {start} is cut short")
    at = start + struct.unpack(order + "I", tail)[0]
    fp.seek(at)
    head = fp.read(2)
    count = struct.unpack(order + "H", head)[0] if len(head) == 2 else 0
    if not 0 < count <= MAX_CIFF_ENTRIES:
        raise NotRaf(f"CRW heap at {start} has a directory of {count} records")
    table = fp.read(10 * count)
    if len(table) < 10 * count:
        raise NotRaf(f"CRW directory at {at} is cut short")
    for i in range(count):
        tag, size, offset = struct.unpack_from(order + "HII", table, 10 * i)
        if tag & 0x8000:
            break
        kind, record, in_directory = (tag >> 8) & 0x38, tag & 0x3FFF, tag & 0x4000
        if kind in (0x28, 0x30) and not in_directory:
            if offset + size <= length:
                _ciff_records(fp, order, start + offset, size, found, depth + 1, seen)
        elif record in CRW_WANTED and record not in found:
            if in_directory:
                found[record] = table[10 * i + 2:10 * i + 10]
            elif size <= MAX_CIFF_VALUE and offset + size <= length:
                fp.seek(start + offset)
                found[record] = fp.read(size)


def describe_crw(fp: IO[bytes], size: int) -> HeaderImage:
    fp.seek(0)
    head = fp.read(14)
    if len(head) < 14 or head[:2] not in (b"II", b"MM") or head[6:14] not in CRW_SIGNATURES:
        raise NotRaf("no CIFF header (II/MM, HEAPCCDR)")
    order = "<" if head[:2] == b"II" else ">"
    start = struct.unpack_from(order + "I", head, 2)[0]
    if not 14 <= start < size:
        raise NotRaf(f"CRW header length {start} is outside the file")
    found: dict[int, bytes] = {}
    _ciff_records(fp, order, start, size - start, found)
    info = found.get(CRW_IMAGE_INFO, b"")
    if len(info) < 8 or not all(struct.unpack_from(order + "II", info)):
        raise NotRaf("CRW without an ImageInfo record (0x1810) giving the image size")
    width, height = struct.unpack_from(order + "II", info)
    rotation = struct.unpack_from(order + "i", info, 12)[0] if len(info) >= 16 else 0
    bits = struct.unpack_from(order + "I", info, 16)[0] if len(info) >= 20 else None
    ifd0: dict[int, Any] = {0x0112: ROTATION_ORIENTATION.get(rotation % 360)}
    make_model = found.get(CRW_MAKE_MODEL, b"").split(b"\x00")
    if len(make_model) >= 2:
        ifd0[0x010F], ifd0[0x0110] = make_model[0], make_model[1]
    exif: dict[int, Any] = {}
    stamp = found.get(CRW_TIME, b"")
    if len(stamp) >= 4:
        exif[0x9003] = _exif_time(struct.unpack_from(order + "I", stamp)[0])
        if len(stamp) >= 12:
            zone, valid = struct.unpack_from(order + "iI", stamp, 4)
            if valid == 0x80000000 and abs(zone) < 15 * 3600:  # TimeZoneInfo: TimeZoneCode is set
                sign, minutes = "-" if zone < 0 else "+", abs(zone) // 60
                exif[0x9011] = f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    exposure = found.get(CRW_EXPOSURE, b"")
    if len(exposure) >= 12:
        _, tv, av = struct.unpack_from(order + "fff", exposure)
        if abs(tv) < 100:  # exiftool's ShutterSpeedValue and ApertureValue from APEX values
            exif[0x829A] = 2.0 ** -tv
        exif[0x829D] = 2.0 ** (av / 2)
    focal = found.get(CRW_FOCAL, b"")
    if len(focal) >= 4:
        exif[0x920A] = struct.unpack_from(order + "H", focal, 2)[0] or None
    return HeaderImage(format="CRW", size=(width, height), mode="CFA", bit_depth=bits or None,
                       exif=TagExif(ifd0, exif))


def _x3f_properties(data: bytes) -> dict[str, str]:
    """A PROP section (SECp): UTF-16 name/value pairs."""
    if len(data) < 24 or data[:4] != b"SECp":
        return {}
    count, char_format, length = struct.unpack_from("<II4xI", data, 8)
    base = 24 + 8 * count
    if char_format != 0 or len(data) < base + 2 * length:
        return {}
    text = data[base:base + 2 * length].decode("utf-16-le", "replace")
    found = {}
    for i in range(count):
        name_at, value_at = struct.unpack_from("<II", data, 24 + 8 * i)
        if name_at < length and value_at < length:
            found[text[name_at:].split("\x00", 1)[0]] = text[value_at:].split("\x00", 1)[0]
    return found


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def describe_x3f(fp: IO[bytes], size: int) -> HeaderImage:
    fp.seek(0)
    head = fp.read(52)
    if len(head) < 40 or head[:4] != X3F_MAGIC:
        raise NotRaf("no FOVb header")
    major = struct.unpack_from("<I", head, 4)[0] >> 16
    width, height, rotation = struct.unpack_from("<III", head, 40 if major >= 4 else 28)
    if not width or not height:
        raise NotRaf("X3F header gives no image size (columns, rows)")
    fp.seek(size - 4)
    at = struct.unpack("<I", fp.read(4))[0]
    fp.seek(at)
    directory = fp.read(12)
    if len(directory) < 12 or directory[:4] != b"SECd":
        raise NotRaf(f"X3F directory pointer {at} does not lead to a SECd directory")
    count = struct.unpack_from("<I", directory, 8)[0]
    if count > MAX_X3F_SECTIONS:
        raise NotRaf(f"X3F directory claims {count} sections")
    table = fp.read(12 * count)
    properties: dict[str, str] = {}
    segments: dict[str, bytes] = {}
    for i in range(len(table) // 12):
        offset, length, kind = struct.unpack_from("<II4s", table, 12 * i)
        if kind == b"PROP" and not properties and length <= MAX_PROP:
            fp.seek(offset)
            properties = _x3f_properties(fp.read(length))
        elif kind == b"IMA2" and "exif" not in segments and length > 28:
            fp.seek(offset)
            if fp.read(16) == b"SECi\x00\x00\x02\x00\x02\x00\x00\x00\x12\x00\x00\x00":  # a JPEG preview
                fp.seek(offset + 28)
                if fp.read(4) == b"\xff\xd8\xff\xe1":  # EXIF first: exiftool's JpgFromRaw, read for tags
                    segments = _jpeg_segments(fp, offset + 28, length - 28)
    orientation = ROTATION_ORIENTATION.get(rotation % 360)
    if "exif" in segments:  # the preview's EXIF, as exiftool prefers it to PROP
        exif: Any = Image.Exif()
        exif.load(segments["exif"])
        if exif.get(0x0112) is None:
            exif[0x0112] = orientation
    else:
        sub: dict[int, Any] = {0x829A: _float(properties.get("SHUTTER")),
                               0x829D: _float(properties.get("APERTURE")),
                               0x920A: _float(properties.get("FLENGTH"))}
        iso = _float(properties.get("ISO"))
        sub[0x8827] = int(iso) if iso and iso.is_integer() else None
        seconds = _float(properties.get("TIME"))
        if seconds is not None and 0 <= seconds < 2**32:
            sub[0x9003] = _exif_time(int(seconds))
        exif = TagExif({0x010F: properties.get("CAMMANUF"), 0x0110: properties.get("CAMMODEL"),
                        0x0112: orientation}, sub)
    info = {"xmp": segments["xmp"]} if "xmp" in segments else {}
    return HeaderImage(format="X3F", size=(width, height), mode="RGB", info=info, exif=exif)
