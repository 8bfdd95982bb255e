"""The primary image's properties in a HEIF/AVIF file (ISO/IEC 23008-12, ISOBMFF boxes).

pillow-heif applies the container's transforms (``irot``, ``imir``) before it reports a
size, and copies the EXIF orientation aside; Pillow's AVIF plugin reports the stored size.
The HEIF specification makes ``irot``/``imir`` the display transform and EXIF orientation
informational, and exiftool reports the stored size (``ispe``; libheif pads odd sizes and
records the picture's own size in ``clap``, which is applied here). So the stored size, the
transform and the bit depth (``pixi``) are read here from the boxes themselves: ``ftyp``,
then ``meta`` → ``pitm`` (primary item), ``iprp`` → ``ipco`` (properties) + ``ipma``
(which properties belong to which item, in the order they apply).

An image sequence (HEIF's ``msf1``, AVIF's ``avis``) is a ``moov`` track whose handler is
``pict`` (ISO/IEC 23008-12, 7.2) or ``vide``, its frames that track's samples (``stsz``);
items beside the primary one (alpha or depth auxiliaries, thumbnails, grid tiles, bursts of
stills) are no sequence. Only the top-level box headers are read on the way, so a still image
(ftyp, meta, mdat to the end of the file) costs nothing more.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import IO

from shared.isobmff import boxes, top_boxes

MAX_META = 1024 * 1024  # a meta box past this is not a phone photo's; its transform is not read
MAX_MOOV = 8 * 1024 * 1024  # stsz holds 4 bytes a frame: two million frames
SEQUENCE_BRANDS = {b"msf1", b"hevs", b"avis"}
SEQUENCE_HANDLERS = {b"pict", b"vide"}

# EXIF orientation n as the 2x2 matrix mapping stored (x right, y down) to displayed coordinates.
_ORIENTATION_MATRIX: dict[int, tuple[int, int, int, int]] = {
    1: (1, 0, 0, 1), 2: (-1, 0, 0, 1), 3: (-1, 0, 0, -1), 4: (1, 0, 0, -1),
    5: (0, 1, 1, 0), 6: (0, -1, 1, 0), 7: (0, -1, -1, 0), 8: (0, 1, -1, 0),
}
_MATRIX_ORIENTATION = {m: o for o, m in _ORIENTATION_MATRIX.items()}
_ROTATE_CCW = (0, 1, -1, 0)  # irot: anticlockwise quarter turns
# imir: 0 exchanges top and bottom, 1 left and right (the 2020 edition's "mode", as libheif
# and libavif read the 2017 edition's "axis").
_MIRROR = {0: (1, 0, 0, -1), 1: (-1, 0, 0, 1)}


def _mul(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    return (a[0] * b[0] + a[1] * b[2], a[0] * b[1] + a[1] * b[3],
            a[2] * b[0] + a[3] * b[2], a[2] * b[1] + a[3] * b[3])


@dataclass
class HeifInfo:
    width: int | None = None  # the stored size: ispe, cut to the clean aperture (clap) if any
    height: int | None = None
    orientation: int = 1  # the EXIF orientation equivalent to irot/imir, in their order
    bit_depth: int | None = None  # pixi: bits per channel (the first channel's)
    sequence: bool = False  # an image sequence track (pict/vide handler in moov): an animation
    frames: int | None = None  # that track's samples


def orientation_of(transforms: list[tuple[str, int]]) -> int:
    """The EXIF orientation that irot/imir, applied in this order, amount to."""
    matrix = _ORIENTATION_MATRIX[1]
    for kind, value in transforms:
        step = _MIRROR[value & 1] if kind == "imir" else _ORIENTATION_MATRIX[1]
        if kind == "irot":
            for _ in range(value & 3):
                step = _mul(_ROTATE_CCW, step)
        matrix = _mul(step, matrix)
    return _MATRIX_ORIENTATION[matrix]


def sequence_frames(moov: bytes) -> int | None:
    """Samples of the largest image sequence track (handler pict or vide), or None."""
    best = None
    for kind, start, end in boxes(moov, 8, len(moov)):
        if kind != b"trak":
            continue
        handler, count = None, None
        for mdia, m_start, m_end in boxes(moov, start, end):
            if mdia != b"mdia":
                continue
            for sub, s_start, s_end in boxes(moov, m_start, m_end):
                if sub == b"hdlr" and s_end - s_start >= 12:
                    handler = moov[s_start + 8:s_start + 12]
                elif sub == b"minf":
                    count = _sample_count(moov, s_start, s_end)
        if handler in SEQUENCE_HANDLERS and count is not None:
            best = max(best or 0, count)
    return best


def _sample_count(data: bytes, start: int, end: int) -> int | None:
    for kind, s_start, s_end in boxes(data, start, end):
        if kind == b"stbl":
            for sub, b_start, b_end in boxes(data, s_start, s_end):
                if sub in (b"stsz", b"stz2") and b_end - b_start >= 12:
                    return struct.unpack_from(">I", data, b_start + 8)[0]
    return None


def read_heif_info(fp: IO[bytes]) -> HeifInfo | None:
    """The primary item's stored size, transform and depth, and whether the file holds an image
    sequence; None when the boxes are not there."""
    fp.seek(0)
    head = fp.read(16)
    if len(head) < 16 or head[4:8] != b"ftyp":
        return None
    ftyp_size = struct.unpack_from(">I", head)[0]
    if not 16 <= ftyp_size <= 4096:
        return None
    fp.seek(0)
    ftyp = fp.read(ftyp_size)
    brands = {ftyp[i:i + 4] for i in range(16, len(ftyp) - 3, 4)} | {ftyp[8:12]}
    size = fp.seek(0, 2)
    top = top_boxes(fp, ftyp_size, size, {b"meta", b"moov"})
    info = HeifInfo()
    if b"moov" in top:
        at, length = top[b"moov"]
        if length <= MAX_MOOV:
            fp.seek(at)
            info.frames = sequence_frames(fp.read(length))
            info.sequence = info.frames is not None
        else:  # too large to read: the brand says what it holds
            info.sequence = bool(brands & SEQUENCE_BRANDS)
    if b"meta" not in top:
        return info
    at, size = top[b"meta"]
    if size < 12 or size > MAX_META:
        return info
    fp.seek(at)
    meta = fp.read(size)
    if len(meta) < size:
        return info
    _primary_properties(meta, info)
    return info


def _primary_properties(meta: bytes, info: HeifInfo) -> None:
    """The primary item's ispe/clap/irot/imir/pixi, from a whole meta box."""
    size = len(meta)
    primary, properties, associations = None, [], {}
    for kind, start, end in boxes(meta, 12, size):  # 12: meta is a full box
        if kind == b"pitm" and end - start >= 6:
            primary = (struct.unpack_from(">H", meta, start + 4)[0] if meta[start] == 0
                       else struct.unpack_from(">I", meta, start + 4)[0])
        elif kind == b"iprp":
            for sub, s_start, s_end in boxes(meta, start, end):
                if sub == b"ipco":
                    properties = list(boxes(meta, s_start, s_end))
                elif sub == b"ipma":
                    associations.update(_ipma(meta, s_start, s_end))
    transforms: list[tuple[str, int]] = []
    for index in associations.get(primary, []):
        if not 1 <= index <= len(properties):
            continue
        kind, start, end = properties[index - 1]
        if kind == b"ispe" and end - start >= 12:
            info.width, info.height = struct.unpack_from(">II", meta, start + 4)
        elif kind == b"clap" and end - start >= 16:  # the clean aperture: the picture's real size
            wn, wd, hn, hd = struct.unpack_from(">IIII", meta, start)
            if wd and hd and wn // wd > 0 and hn // hd > 0:
                info.width, info.height = wn // wd, hn // hd
        elif kind in (b"irot", b"imir") and end > start:
            transforms.append((kind.decode(), meta[start]))
        elif kind == b"pixi" and end - start >= 6 and meta[start + 4] >= 1:
            info.bit_depth = meta[start + 5]
    info.orientation = orientation_of(transforms)


def _ipma(data: bytes, start: int, end: int) -> dict[int, list[int]]:
    """item id -> its property indices (1-based, in order) from an ipma box."""
    version, flags = data[start], int.from_bytes(data[start + 1:start + 4], "big")
    pos, found = start + 8, {}
    if pos > end:
        return found
    count = struct.unpack_from(">I", data, start + 4)[0]
    for _ in range(count):
        id_size = 2 if version < 1 else 4
        if pos + id_size + 1 > end:
            break
        item = int.from_bytes(data[pos:pos + id_size], "big")
        n = data[pos + id_size]
        pos += id_size + 1
        width = 2 if flags & 1 else 1
        if pos + n * width > end:
            break
        indices = []
        for _ in range(n):
            raw = int.from_bytes(data[pos:pos + width], "big")
            indices.append(raw & (0x7FFF if width == 2 else 0x7F))
            pos += width
        found[item] = indices
    return found
