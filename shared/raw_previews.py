"""Pictures cameras embed: a raw photo's preview and an EXIF thumbnail, found without decoding.

A raw photo's sensor data needs demosaicing (no library here does it, nor should a preview
step pay for it); every camera writes a finished picture beside it. TIFF-based raws (DNG, NEF,
CR2, ARW, ...) hold it as a directory: a JPEG by JPEGInterchangeFormat (0x0201/0x0202) or by a
JPEG-compressed strip (Compression 6 or 7), or uncompressed 8-bit RGB strips (DNG's preview
IFD); the largest is taken. A Fujifilm RAF names its JPEG's offset and length at 0x54. The
orientation is the raw's IFD0 Orientation (the embedded picture is stored as the sensor saw it). A Canon CR3 keeps its
preview as a PRVW box (a JPEG, 1620 px on cameras) in the top-level uuid box eaf42b5e-…, its
orientation in CMT1 (the TIFF IFD0) of the Canon uuid box in moov (lclevy's "Describing the
Canon Raw v3 (CR3) file format", the layout exiftool's Canon::uuid table reads).
A HEIC's thumbnail items (``thmb``, iPhones write a 320 px one) are decoded by libheif with
their own rotation applied, so they arrive upright.
"""

from __future__ import annotations

import io
import struct

from PIL import Image

from shared import isobmff, raw_formats
from shared.raw_containers import MAX_X3F_SECTIONS, RAF_MAGIC, ROTATION_ORIENTATION, X3F_MAGIC
from shared.tiff_ifd import (
    TAG_BITS,
    TAG_COMPRESSION,
    TAG_HEIGHT,
    TAG_PHOTOMETRIC,
    TAG_WIDTH,
    Directory,
    NotTiff,
    TiffReader,
)

RAW_KINDS = ("RAF", "CR3", "MRW")  # raw containers that are not TIFF-structured
TAG_JPEG_OFFSET, TAG_JPEG_LENGTH = 0x0201, 0x0202
TAG_STRIP_OFFSETS, TAG_STRIP_COUNTS, TAG_SAMPLES, TAG_ORIENTATION = 0x0111, 0x0117, 0x0115, 0x0112
JPEG_COMPRESSION = (6, 7)
TAG_IFD1_MARK = 1  # EXIF's IFD1 is the second directory of the chain


def embedded_raw_picture(data: bytes) -> tuple[Image.Image, int] | None:
    """A raw photo's largest embedded picture (opened lazily) and the orientation to apply, or
    None when ``data`` is not a raw photo; raises ValueError for a raw photo without one."""
    if data[:8] == RAF_MAGIC:
        return _raf_picture(data)
    if data[4:8] == b"ftyp" and data[8:12] == b"crx ":
        return _cr3_picture(data)
    if data[:4] == X3F_MAGIC:
        return _x3f_picture(data)
    if data[:4] == b"\x00MRM":
        raise ValueError("MRW embedded previews are not read yet")
    fp = io.BytesIO(data)
    try:
        if raw_formats.describe_raw(fp) is None:
            return None
        reader = TiffReader(fp)
        directories = list(reader.image_directories())
    except (NotTiff, struct.error):
        return None
    best: Image.Image | None = None
    for directory in directories:
        picture = _directory_picture(data, directory)
        if picture is not None and (best is None or picture.width * picture.height > best.width * best.height):
            best = picture
    if best is None:
        raise ValueError("raw photo without an embedded JPEG or RGB preview")
    orientation = directories[0].number(TAG_ORIENTATION) or 1
    return best, orientation if orientation in range(1, 9) else 1


def _directory_picture(data: bytes, directory: Directory) -> Image.Image | None:
    offset, length = directory.number(TAG_JPEG_OFFSET), directory.number(TAG_JPEG_LENGTH)
    if offset and length:
        return _jpeg_at(data, offset, length)
    strips, counts = directory.offsets(TAG_STRIP_OFFSETS), directory.offsets(TAG_STRIP_COUNTS)
    if len(strips) != 1 or len(counts) != 1:
        return None
    compression = directory.number(TAG_COMPRESSION)
    if compression in JPEG_COMPRESSION:
        return _jpeg_at(data, strips[0], counts[0])
    width, height = directory.number(TAG_WIDTH), directory.number(TAG_HEIGHT)
    bits = directory.get(TAG_BITS)
    if (compression == 1 and directory.number(TAG_PHOTOMETRIC) == 2 and directory.number(TAG_SAMPLES) == 3
            and bits in (8, (8, 8, 8)) and width and height and counts[0] >= width * height * 3
            and strips[0] + width * height * 3 <= len(data)):
        return Image.frombytes("RGB", (width, height), data[strips[0]:strips[0] + width * height * 3])
    return None


def _jpeg_at(data: bytes, offset: int, length: int) -> Image.Image | None:
    if offset <= 0 or length <= 0 or offset + length > len(data) or data[offset:offset + 2] != b"\xff\xd8":
        return None
    try:
        return Image.open(io.BytesIO(data[offset:offset + length]), formats=["JPEG"])
    except (OSError, SyntaxError, ValueError):
        return None


def _raf_picture(data: bytes) -> tuple[Image.Image, int]:
    if len(data) < 0x5C:
        raise ValueError("RAF header cut short")
    offset, length = struct.unpack_from(">II", data, 0x54)
    picture = _jpeg_at(data, offset, length)
    if picture is None:
        raise ValueError("RAF without a readable embedded JPEG")
    value = picture.getexif().get(TAG_ORIENTATION, 1)
    return picture, value if isinstance(value, int) and value in range(1, 9) else 1


CR3_CANON_UUID = bytes.fromhex("85c0b687820f11e08111f4ce462b6a48")
CR3_PREVIEW_UUID = bytes.fromhex("eaf42b5e1c984b88b9fbb7dc406e4d16")
PRVW_HEADER = struct.Struct(">IHHHHI")  # 0, 1, width, height, 1, JPEG length


def _cr3_picture(data: bytes) -> tuple[Image.Image, int]:
    picture: Image.Image | None = None
    orientation = 1
    for kind, start, end in isobmff.boxes(data, 0, len(data)):
        if kind == b"moov":
            orientation = _cr3_orientation(data, start, end)
        elif kind == b"uuid" and data[start:start + 16] == CR3_PREVIEW_UUID:
            for inner, at, stop in isobmff.boxes(data, start + 24, end):  # uuid, then 8 bytes
                if inner == b"PRVW" and stop - at > PRVW_HEADER.size:
                    length = PRVW_HEADER.unpack_from(data, at)[5]
                    picture = _jpeg_at(data, at + PRVW_HEADER.size, min(length, stop - at - PRVW_HEADER.size))
    if picture is None:
        raise ValueError("CR3 without a readable PRVW preview")
    return picture, orientation


SECI_JPEG = struct.Struct("<4sIIIIII")  # "SECi", version, type 2 (preview), format 18 (JPEG), w, h, row


def _x3f_picture(data: bytes) -> tuple[Image.Image, int]:
    """A Sigma X3F's JPEG preview (an IMA2 section of format 18), turned by the header's rotation
    (Sigma's X3F format description, as exiftool's SigmaRaw and dcraw read it)."""
    if len(data) < 64:
        raise ValueError("X3F header cut short")
    major = struct.unpack_from("<I", data, 4)[0] >> 16
    rotation = struct.unpack_from("<I", data, (40 if major >= 4 else 28) + 8)[0]
    at = struct.unpack_from("<I", data, len(data) - 4)[0]
    if data[at:at + 4] != b"SECd" or at + 12 > len(data):
        raise ValueError("X3F without its SECd directory")
    count = min(struct.unpack_from("<I", data, at + 8)[0], MAX_X3F_SECTIONS)
    best: Image.Image | None = None
    for i in range(count):
        if at + 24 + 12 * i > len(data):
            break
        offset, length, kind = struct.unpack_from("<II4s", data, at + 12 + 12 * i)
        if kind != b"IMA2" or length <= SECI_JPEG.size or offset + SECI_JPEG.size > len(data):
            continue
        magic, _, _, fmt, _, _, _ = SECI_JPEG.unpack_from(data, offset)
        if magic == b"SECi" and fmt == 18:
            picture = _jpeg_at(data, offset + SECI_JPEG.size, length - SECI_JPEG.size)
            if picture is not None and (best is None or picture.width * picture.height > best.width * best.height):
                best = picture
    if best is None:
        raise ValueError("X3F without a readable JPEG preview")
    return best, ROTATION_ORIENTATION.get(rotation % 360, 1)


def _cr3_orientation(data: bytes, start: int, end: int) -> int:
    for kind, at, stop in isobmff.boxes(data, start, end):
        if kind == b"uuid" and data[at:at + 16] == CR3_CANON_UUID:
            for inner, i, j in isobmff.boxes(data, at + 16, stop):
                if inner == b"CMT1":
                    exif = Image.Exif()
                    try:
                        exif.load(data[i:j])
                    except (SyntaxError, ValueError, struct.error):
                        return 1
                    value = exif.get(TAG_ORIENTATION, 1)
                    return value if isinstance(value, int) and value in range(1, 9) else 1
    return 1


def heif_thumbnail(data: bytes, long_edge: int) -> Image.Image | None:
    """The smallest HEIF thumbnail whose long edge covers ``long_edge`` (decoded, upright), or None."""
    try:
        import pillow_heif

        heif = pillow_heif.open_heif(io.BytesIO(data))
        primary = heif[heif.primary_index]
        sizes = list(primary.info.get("thumbnails") or [])
        usable = sorted((s, i) for i, s in enumerate(sizes) if isinstance(s, int) and s >= long_edge)
        if not usable:
            return None
        return primary.get_thumbnail(usable[0][1]).to_pillow()
    except (ImportError, ValueError, RuntimeError, IndexError, OSError):
        return None


def exif_thumbnail(exif: bytes | None) -> bytes | None:
    """The JPEG thumbnail in EXIF's IFD1 (the APP1 payload, 'Exif\\0\\0' and a TIFF), or None."""
    if not exif:
        return None
    tiff = exif[6:] if exif.startswith(b"Exif\x00\x00") else exif
    try:
        chain = TiffReader(io.BytesIO(tiff)).chain()
    except (NotTiff, struct.error):
        return None
    if len(chain) <= TAG_IFD1_MARK:
        return None
    ifd1 = chain[TAG_IFD1_MARK]
    offset, length = ifd1.number(TAG_JPEG_OFFSET), ifd1.number(TAG_JPEG_LENGTH)
    if not offset or not length or offset + length > len(tiff) or tiff[offset:offset + 2] != b"\xff\xd8":
        return None
    return tiff[offset:offset + length]
