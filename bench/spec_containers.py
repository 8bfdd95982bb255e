"""Canon CRW and Sigma X3F files built from their specifications, and raws padded to camera size.

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
