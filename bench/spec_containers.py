"""Raws in their makers' own containers, built from their specifications: Minolta MRW, Canon CR3,
Fujifilm RAF, Canon CRW, Sigma X3F.

CRW follows the CIFF specification (v1r04) as exiftool's CanonRaw module reads it: a
``II``/``MM`` header naming its length, ``HEAPCCDR``, then one heap whose records' data
come first and whose directory (a count, 10-byte records: tag, size, offset) ends the heap,
found through the heap's last four bytes. X3F follows Sigma's X3F format description as
exiftool's SigmaRaw module reads it: a ``FOVb`` header (columns, rows, rotation), sections,
and a ``SECd`` directory at the end of the file found through its last four bytes.
"""

from __future__ import annotations

import calendar
import struct
from datetime import datetime

from bench.spec_files import LONG, Ifd, _save, camera_exif, tiff_bytes


def mrw_bytes(width: int = 3016, height: int = 2008, raw_bytes: int = 8192) -> bytes:
    """A Minolta MRW: "\\0MRM", the data offset, PRD (sizes, depths), TTW (a TIFF with IFD0 and
    EXIF), then the raw data."""
    tags, children = camera_exif("KONICA MINOLTA", "DYNAX 7D", orientation=1, taken="2005:06:07 08:09:10",
                                 offset=None)
    ifd0 = Ifd(tags, children)
    ttw = tiff_bytes([ifd0], order=">")
    prd = b"21810002" + struct.pack(">HHHHBBBBHH", height + 8, width + 16, height, width, 12, 12, 0x59, 0, 0, 0)
    segments = b"\x00PRD" + struct.pack(">I", len(prd)) + prd + b"\x00TTW" + struct.pack(">I", len(ttw)) + ttw
    return b"\x00MRM" + struct.pack(">I", len(segments)) + segments + bytes(raw_bytes)


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def cr3_bytes(width: int = 6000, height: int = 4000, raw_bytes: int = 8192) -> bytes:
    """A Canon CR3 as lclevy's description and exiftool's Canon::uuid table lay it out: ftyp
    'crx ', moov with Canon's uuid box (CNCV, CMT1 = IFD0, CMT2 = EXIF, CMT4 = GPS, each a small
    TIFF, THMB a 160x120 JPEG thumbnail) and a track whose CRAW sample entry holds the picture's
    size, then the preview's uuid box (PRVW, a JPEG of ~250 KB) and mdat."""
    from devhost import samples

    tags, children = camera_exif("Canon", "Canon EOS R6", orientation=6, taken="2022:11:12 13:14:15",
                                 offset="-05:00", gps=(40.6892494, -74.0445004, 10.5))
    ifd0 = Ifd({**tags, 0x0100: (LONG, width), 0x0101: (LONG, height)})
    cmt1 = tiff_bytes([ifd0])
    cmt2 = tiff_bytes(children[0x8769])
    cmt4 = tiff_bytes(children[0x8825])
    canon = (bytes.fromhex("85c0b687820f11e08111f4ce462b6a48") + _box(b"CNCV", b"CanonCR3_001/00.10.00/00.00.00")
             + _box(b"CMT1", cmt1) + _box(b"CMT2", cmt2) + _box(b"CMT4", cmt4))
    thumb = samples.encode(samples.picture((160, 120), seed=5), "JPEG", quality=85)
    canon += _box(b"THMB", struct.pack(">IHHIHH", 0, 160, 120, len(thumb), 1, 0) + thumb)
    preview = samples.encode(samples.noise((640, 426)), "JPEG", quality=90)
    prvw = _box(b"uuid", bytes.fromhex("eaf42b5e1c984b88b9fbb7dc406e4d16") + struct.pack(">II", 0, 1)
                + _box(b"PRVW", struct.pack(">IHHHHI", 0, 1, 640, 426, 1, len(preview)) + preview))
    craw = (bytes(6) + struct.pack(">H", 1) + bytes(16) + struct.pack(">HH", width, height)
            + struct.pack(">II", 0x00480000, 0x00480000) + bytes(4) + struct.pack(">H", 1) + bytes(32)
            + struct.pack(">Hh", 24, -1))
    stsd = struct.pack(">II", 0, 1) + _box(b"CRAW", craw)
    trak = _box(b"trak", _box(b"mdia", _box(b"minf", _box(b"stbl", _box(b"stsd", stsd)))))
    moov = _box(b"moov", _box(b"uuid", canon) + trak)
    ftyp = _box(b"ftyp", b"crx " + struct.pack(">I", 1) + b"crx isom")
    return ftyp + moov + prvw + _box(b"mdat", bytes(raw_bytes))


def raf_bytes(width: int = 6240, height: int = 4160, raw_bytes: int = 4096) -> bytes:
    """A Fujifilm RAF: header (magic, versions, camera name, the JPEG's and directories' offsets),
    the embedded JPEG preview carrying the EXIF, then the RAF directory and the CFA data."""
    from devhost import samples

    exif = samples.Exif(orientation=8, make="FUJIFILM", model="X-T5", taken="2024:10:11 12:13:14",
                        offset="+09:00", gps=(35.6585805, 139.7454329, 40.0)).block()
    sub = exif.get_ifd(0x8769)
    from PIL.TiffImagePlugin import IFDRational

    sub[0x829A], sub[0x829D], sub[0x8827], sub[0x920A] = IFDRational(1, 250), IFDRational(28, 5), 400, IFDRational(35)
    preview = _save(samples.noise((640, 426)), "JPEG", exif=exif, quality=90)  # ~250 KB, as cameras'
    jpeg_offset = 0x94
    directory_offset = jpeg_offset + len(preview)
    entries = [(0x100, struct.pack(">HH", height + 32, width + 64)), (0x110, struct.pack(">HH", 16, 32)),
               (0x111, struct.pack(">HH", height, width)), (0x130, b"\x01\x00\x00\x00")]
    directory = struct.pack(">I", len(entries)) + b"".join(struct.pack(">HH", t, len(v)) + v for t, v in entries)
    cfa_offset = directory_offset + len(directory)
    header = (b"FUJIFILMCCD-RAW 0201FF393501" + b"X-T5".ljust(32, b"\x00") + b"0100" + bytes(20)
              + struct.pack(">IIIIII", jpeg_offset, len(preview), directory_offset, len(directory), cfa_offset, 4096))
    header = header.ljust(jpeg_offset, b"\x00")
    return header + preview + directory + bytes(raw_bytes)


def _ciff_heap(records: list[tuple[int, bytes]], order: str = "<") -> bytes:
    """A CIFF heap: each record's data (subheaps are records of type 0x28/0x30), then the
    directory, then the directory's offset from the heap's start."""
    data, entries = bytearray(), []
    for tag, value in records:
        entries.append(struct.pack(order + "HII", tag, len(value), len(data)))
        data += value
        if len(data) % 2:
            data.append(0)
    directory_at = len(data)
    return bytes(data) + struct.pack(order + "H", len(entries)) + b"".join(entries) + struct.pack(
        order + "I", directory_at)


def _unix(stamp: str) -> int:
    return calendar.timegm(datetime.strptime(stamp, "%Y:%m:%d %H:%M:%S").timetuple())


def crw_bytes(width: int = 3072, height: int = 2048, *, rotation: int = 90, order: str = "<",
              taken: str = "2003:11:22 10:20:30", zone_hours: int | None = 1, raw_bytes: int = 16384,
              model: str = "Canon EOS 10D") -> bytes:
    """A Canon CRW: the raw data first, then ImageProps (ImageInfo, TimeStamp, the camera
    object with Make/Model, the EXIF-like shot records), the root directory last."""
    def pack(fmt: str, *values: object) -> bytes:
        return struct.pack(order + fmt, *values)

    image_info = pack("IIfiIII", width, height, 1.0, rotation, 12, 12, 1)
    stamp = pack("iiI", _unix(taken), (zone_hours or 0) * 3600, 0x80000000 if zone_hours is not None else 0)
    make_model = b"Canon\x00" + model.encode() + b"\x00"
    exposure = pack("fff", 0.0, 7.965784, 5.0)  # Tv 1/250 s, Av f/5.66
    focal = pack("HHHH", 1, 50, 0, 0)
    camera = _ciff_heap([(0x080A, make_model), (0x080B, b"Firmware Version 2.0.2\x00")], order)
    exif_info = _ciff_heap([(0x1818, exposure), (0x1029, focal)], order)
    props = _ciff_heap([(0x1810, image_info), (0x180E, stamp), (0x2807, camera), (0x300B, exif_info)], order)
    root = _ciff_heap([(0x2005, bytes(raw_bytes)), (0x300A, props)], order)
    header = (b"II" if order == "<" else b"MM") + pack("I", 26) + b"HEAPCCDR" + pack("I", 0x00010002) + bytes(8)
    return header + root


def _utf16(text: str) -> list[int]:
    return [*text.encode("utf-16-le")[::2]] if text.isascii() else list(struct.unpack(
        f"<{len(text)}H", text.encode("utf-16-le")))


def _prop_section(properties: dict[str, str]) -> bytes:
    """SECp: version, entry count, character format 0 (UTF-16), reserved, length in characters,
    the (name, value) offsets, then the NUL-terminated UTF-16 strings."""
    chars: list[int] = []
    table = bytearray()
    for name, value in properties.items():
        name_at = len(chars)
        chars += _utf16(name) + [0]
        value_at = len(chars)
        chars += _utf16(value) + [0]
        table += struct.pack("<II", name_at, value_at)
    return (b"SECp" + struct.pack("<IIIII", 0x00020000, len(properties), 0, 0, len(chars)) + bytes(table)
            + struct.pack(f"<{len(chars)}H", *chars))


def x3f_bytes(width: int = 2640, height: int = 1760, *, rotation: int = 270, jpeg: bytes | None = None,
              properties: dict[str, str] | None = None, raw_bytes: int = 16384, version: int = 0x00020003) -> bytes:
    """A Sigma X3F: the header (version 2.3 and its extended header; or version 4, Quattro, a
    0x300-byte header with columns, rows and rotation at 40), PROP, the JPEG preview (IMA2, with
    EXIF as DP cameras write it), the raw image (IMAG), the directory last."""
    if version >> 16 >= 4:
        header = (b"FOVb" + struct.pack("<I", version) + bytes(32) + struct.pack("<III", width, height, rotation)
                  ).ljust(0x300, b"\x00")
    else:
        header = (b"FOVb" + struct.pack("<I", version) + bytes(range(16)) + struct.pack("<IIII", 0, width, height,
                  rotation) + b"Auto".ljust(32, b"\x00") + b"".ljust(32, b"\x00"))
        header += bytes(160)  # the extended header (2.1-2.3): 32 types, all unused, 32 floats
    sections: list[tuple[bytes, bytes]] = []
    if properties is not None:
        sections.append((b"PROP", _prop_section(properties)))
    if jpeg is not None:
        sections.append((b"IMA2", b"SECi" + struct.pack("<IIIIII", 0x00020000, 2, 18, 640, 426, 0) + jpeg))
    sections.append((b"IMAG", b"SECi" + struct.pack("<IIIIII", 0x00020000, 3, 30, width, height, 0)
                     + bytes(raw_bytes)))
    out, entries = bytearray(header), []
    for kind, body in sections:
        entries.append(struct.pack("<II4s", len(out), len(body), kind))
        out += body + bytes(-len(body) % 4)
    directory_at = len(out)
    out += b"SECd" + struct.pack("<II", 0x00020000, len(entries)) + b"".join(entries)
    return bytes(out) + struct.pack("<I", directory_at)


def exif_first_jpeg(jpeg: bytes) -> bytes:
    """The JPEG with its JFIF APP0 segment dropped, so EXIF's APP1 follows SOI (as cameras write
    the previews they embed; exiftool reads an X3F preview's EXIF only then)."""
    if jpeg[2:4] == b"\xff\xe0":
        return jpeg[:2] + jpeg[4 + struct.unpack_from(">H", jpeg, 4)[0]:]
    return jpeg


SD10_PROPERTIES = {"CAMMANUF": "SIGMA", "CAMMODEL": "SIGMA SD10", "TIME": "1100000000", "SHUTTER": "0.004",
                   "APERTURE": "5.6", "ISO": "100", "FLENGTH": "30.0"}


def container_corpus(raw_bytes: int = 16384) -> dict[str, bytes]:
    """CRW in both byte orders, X3F with a preview carrying EXIF (DP cameras) and with PROP alone
    (SD9/SD10)."""
    from devhost import samples

    exif = samples.Exif(orientation=8, make="SIGMA", model="SIGMA DP2", taken="2009:12:01 09:08:07",
                        offset="+01:00", gps=(45.5, 9.2, 120.0))
    preview = exif_first_jpeg(samples.encode(samples.picture((640, 426), seed=7), "JPEG", exif))
    return {
        "camera-crw.crw": crw_bytes(raw_bytes=raw_bytes),
        "camera-crw-mm.crw": crw_bytes(2048, 1360, order=">", rotation=180, zone_hours=-5, model="Canon EOS D60",
                                       raw_bytes=raw_bytes),
        "camera-x3f.x3f": x3f_bytes(jpeg=preview, properties={**SD10_PROPERTIES, "CAMMODEL": "SIGMA DP2",
                                                               "TIME": "1259658487"}, raw_bytes=raw_bytes),
        "camera-x3f-prop.x3f": x3f_bytes(2268, 1512, rotation=90, properties=SD10_PROPERTIES, raw_bytes=raw_bytes),
        "camera-x3f-v4.x3f": x3f_bytes(5424, 3616, rotation=180, jpeg=preview, raw_bytes=raw_bytes,
                                       version=0x00040001),
    }
