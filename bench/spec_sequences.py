"""HEIF image sequences built box by box (ISO/IEC 14496-12 for the track boxes, ISO/IEC 23008-12
section 7 for image sequences: brand ``msf1``, a ``moov`` track with handler ``pict``).

pillow-heif writes still images only (several top-level items at most), so a sequence is made
from one of its stills: the ``msf1`` brand in ``ftyp``, and a ``moov`` appended after ``mdat``
whose track's samples are the still's coded picture (its ``hvcC`` copied from the item's
properties). Pillow's AVIF plugin writes real ``avis`` sequences (libavif) itself.
"""

from __future__ import annotations

import io
import struct

from PIL import Image


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _full(kind: bytes, payload: bytes, version: int = 0, flags: int = 0) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags) + payload)


def _find(data: bytes, kind: bytes) -> bytes:
    at = data.index(kind) - 4
    return data[at:at + struct.unpack_from(">I", data, at)[0]]


MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def sequence_moov(width: int, height: int, frames: int, sample_entry: bytes, sample_offset: int,
                  sample_size: int, handler: bytes = b"pict") -> bytes:
    """moov with one track of `frames` samples, each the same coded picture."""
    mvhd = _full(b"mvhd", struct.pack(">IIII", 0, 0, 1000, 100 * frames) + struct.pack(">IH", 0x10000, 0x100)
                 + bytes(10) + MATRIX + bytes(24) + struct.pack(">I", 2))
    tkhd = _full(b"tkhd", struct.pack(">IIIII", 0, 0, 1, 0, 100 * frames) + bytes(8) + struct.pack(">hhhH", 0, 0, 0, 0)
                 + MATRIX + struct.pack(">II", width << 16, height << 16), flags=3)
    mdhd = _full(b"mdhd", struct.pack(">IIIIHH", 0, 0, 1000, 100 * frames, 0x55C4, 0))
    hdlr = _full(b"hdlr", struct.pack(">I4s", 0, handler) + bytes(12) + b"\x00")
    vmhd = _full(b"vmhd", bytes(8), flags=1)
    dinf = _box(b"dinf", _full(b"dref", struct.pack(">I", 1) + _full(b"url ", b"", flags=1)))
    stsd = _full(b"stsd", struct.pack(">I", 1) + sample_entry)
    stts = _full(b"stts", struct.pack(">III", 1, frames, 100))
    stsc = _full(b"stsc", struct.pack(">IIII", 1, 1, 1, 1))  # one sample a chunk
    stsz = _full(b"stsz", struct.pack(">II", sample_size, frames))
    stco = _full(b"stco", struct.pack(f">I{frames}I", frames, *([sample_offset] * frames)))
    stbl = _box(b"stbl", stsd + stts + stsc + stsz + stco)
    minf = _box(b"minf", vmhd + dinf + stbl)
    trak = _box(b"trak", tkhd + _box(b"mdia", mdhd + hdlr + minf))
    return _box(b"moov", mvhd + trak)


def heif_sequence(im: Image.Image, frames: int, handler: bytes = b"pict", brand: bool = True) -> bytes:
    """A HEIC still (pillow-heif) that also holds an image sequence of `frames` pictures."""
    import shared.image_open  # noqa: F401 - registers pillow-heif

    out = io.BytesIO()
    im.save(out, "HEIF", quality=60)
    still = out.getvalue()
    if brand:
        ftyp = _find(still, b"ftyp")
        still = still.replace(ftyp, ftyp.replace(b"miaf", b"msf1"), 1)  # same length: offsets hold
    mdat_at = still.index(b"mdat") - 4
    payload_at, payload_size = mdat_at + 8, struct.unpack_from(">I", still, mdat_at)[0] - 8
    width, height = im.size
    hvc1 = _box(b"hvc1", bytes(6) + struct.pack(">H", 1) + bytes(16) + struct.pack(">HHII", width, height,
                0x00480000, 0x00480000) + bytes(4) + struct.pack(">H", 1) + bytes(32) + struct.pack(">Hh", 24, -1)
                + _find(still, b"hvcC"))
    return still + sequence_moov(width, height, frames, hvc1, payload_at, payload_size, handler)


def sequence_corpus() -> dict[str, bytes]:
    """Sequences (animated) and still images with several pictures (not animated)."""
    from devhost import samples

    frames = [samples.picture((120, 80), seed=s) for s in (1, 2, 3, 4)]
    files = {}
    out = io.BytesIO()
    frames[0].save(out, "AVIF", save_all=True, append_images=frames[1:], duration=100)
    files["sequence.avif"] = out.getvalue()  # libavif: ftyp avis, meta (a still) and a pict track
    files["sequence.heic"] = heif_sequence(frames[0], 5)
    files["sequence-no-brand.heic"] = heif_sequence(frames[0], 3, brand=False)
    files["auxiliary-track.heic"] = heif_sequence(frames[0], 5, handler=b"auxv")  # msf1, but no pictures
    out = io.BytesIO()
    frames[0].save(out, "HEIF", save_all=True, append_images=frames[1:3])
    files["three-items.heic"] = out.getvalue()  # a burst of stills: three top-level items
    translucent = frames[0].convert("RGBA")
    translucent.putalpha(128)  # not opaque: the writers keep the alpha plane as an auxiliary item
    for fmt, ext in (("HEIF", "heic"), ("AVIF", "avif")):
        out = io.BytesIO()
        translucent.save(out, fmt)
        files[f"alpha-auxiliary.{ext}"] = out.getvalue()
    return files
