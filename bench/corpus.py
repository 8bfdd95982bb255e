"""A reproducible benchmark corpus: realistic sizes and formats, seeded, written to bench/corpus/."""

from __future__ import annotations

import random
from pathlib import Path

from devhost import samples

CORPUS = Path(__file__).resolve().parent / "corpus"

PHONE_SIZES = [(1024, 768), (1600, 1200), (2048, 1536), (4000, 3000)]


def build(folder: Path = CORPUS, scale: int = 1) -> list[Path]:
    """About 500 files (times scale): JPEG with EXIF, PNG, GIF static and animated, WebP, TIFF."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(2026)
    made: list[Path] = []

    def write(name: str, data: bytes) -> None:
        path = folder / name
        if not path.exists():
            path.write_bytes(data)
        made.append(path)

    for i in range(300 * scale):
        size = rng.choice(PHONE_SIZES)
        exif = samples.Exif(orientation=rng.randint(1, 8), make="Canon", model=f"EOS {i % 90}D",
                            taken=f"2024:{rng.randint(1, 12):02d}:{rng.randint(1, 28):02d} 10:00:00",
                            offset="+01:00", gps=(rng.uniform(-80, 80), rng.uniform(-179, 179), rng.uniform(0, 900)))
        write(f"jpeg-{i:04d}.jpg", samples.encode(samples.picture(size, seed=i), "JPEG", exif,
                                                  quality=rng.choice([70, 85, 92]),
                                                  progressive=rng.random() < 0.2))
    for i in range(120 * scale):
        size = (rng.randint(64, 1600), rng.randint(64, 1200))
        write(f"png-{i:04d}.png", samples.encode(samples.picture(size, rng.choice(["RGB", "RGBA", "L"]), seed=i),
                                                 "PNG"))
    for i in range(50 * scale):
        size = (rng.randint(16, 400), rng.randint(16, 300))
        write(f"gif-{i:04d}.gif", samples.encode(samples.picture(size, seed=i).convert("P"), "GIF"))
    for i in range(10 * scale):
        write(f"anim-{i:04d}.gif", samples.animated_gif(rng.randint(2, 12), (120, 90)))
    for i in range(15 * scale):
        write(f"webp-{i:04d}.webp", samples.encode(samples.picture((800, 600), seed=i), "WEBP"))
    for i in range(5 * scale):
        write(f"tiff-{i:04d}.tiff", samples.encode(samples.picture((600, 400), seed=i), "TIFF"))
    return made


def build_100mp(folder: Path = CORPUS) -> Path:
    """One 100-megapixel JPEG (11547 x 8660) for the memory measurement."""
    path = folder / "100mp.jpg"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        exif = samples.Exif(orientation=1, make="Phase One", model="IQ4 150MP", taken="2025:01:01 00:00:00")
        path.write_bytes(samples.encode(samples.picture((11547, 8660), seed=1), "JPEG", exif, quality=80))
    return path


# ---- Odd but valid images and raw photos, built from their specifications ----------------------
# Each file's truth is known from how it is built; exiftool judges them in bench/oracle.py.

import io  # noqa: E402
import struct  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from fractions import Fraction  # noqa: E402
from typing import Any  # noqa: E402

from PIL import Image, PngImagePlugin  # noqa: E402

ASCII, SHORT, LONG, RATIONAL, UNDEFINED, SRATIONAL, BYTE = 2, 3, 4, 5, 7, 10, 1


@dataclass
class Ifd:
    """One TIFF directory to write: plain tags, child directories by pointer tag, pixel data."""

    tags: dict[int, tuple[int, Any]] = field(default_factory=dict)
    children: dict[int, list[Ifd]] = field(default_factory=dict)  # 0x14A SubIFDs, 0x8769 EXIF, 0x8825 GPS
    data: bytes | None = None  # one strip


def _rational(value: float) -> tuple[int, int]:
    f = Fraction(value).limit_denominator(100000)
    return f.numerator, f.denominator


def tiff_bytes(chain: list[Ifd], order: str = "<", magic: int = 42, header_extra: bytes = b"") -> bytes:
    """A classic TIFF (TIFF 6.0 layout) as cameras lay it out: the header, every directory
    (each after the ones it points to), then the pixel data at the end."""
    out = bytearray(struct.pack(order + "2sHI", b"II" if order == "<" else b"MM", magic, 0))
    out += header_extra

    def align() -> None:
        if len(out) % 2:
            out.append(0)

    def value_bytes(kind: int, values: Any) -> bytes:
        if kind in (ASCII, UNDEFINED):
            data = values.encode("latin-1") + b"\x00" if isinstance(values, str) else bytes(values)
            return data
        values = values if isinstance(values, (tuple, list)) else (values,)
        if kind in (RATIONAL, SRATIONAL):
            flat = [p for v in values for p in (v if isinstance(v, tuple) else _rational(v))]
            return struct.pack(order + ("I" if kind == RATIONAL else "i") * len(flat), *flat)
        return struct.pack(order + {BYTE: "B", SHORT: "H", LONG: "I"}[kind] * len(values), *values)

    def place(ifd: Ifd) -> int:
        tags = dict(ifd.tags)
        for tag, kids in ifd.children.items():
            offsets = tuple(place(kid) for kid in kids)
            tags[tag] = (LONG, offsets)
        if ifd.data is not None:
            tags[0x0111], tags[0x0117] = (LONG, (0,)), (LONG, (len(ifd.data),))
        entries = sorted(tags.items())
        blobs = []
        for tag, (kind, values) in entries:
            blobs.append((tag, kind, value_bytes(kind, values)))
        align()
        start = len(out)
        table_size = 2 + 12 * len(blobs) + 4
        extra = bytearray()
        rows = []
        for tag, kind, data in blobs:
            size = {BYTE: 1, ASCII: 1, SHORT: 2, LONG: 4, RATIONAL: 8, UNDEFINED: 1, SRATIONAL: 8}[kind]
            count = len(data) // size
            if len(data) <= 4:
                rows.append(struct.pack(order + "HHI", tag, kind, count) + data.ljust(4, b"\x00"))
            else:
                if len(extra) % 2:
                    extra.append(0)
                rows.append(struct.pack(order + "HHII", tag, kind, count, start + table_size + len(extra)))
                extra += data
        out.extend(struct.pack(order + "H", len(rows)) + b"".join(rows) + b"\x00\x00\x00\x00")
        out.extend(extra)
        if ifd.data is not None:
            strips.append((start + 2 + 12 * [t for t, _ in entries].index(0x0111) + 8, ifd.data))
        return start

    strips: list[tuple[int, bytes]] = []

    next_offset = 0
    for ifd in reversed(chain):
        start = place(ifd)
        struct.pack_into(order + "I", out, start + 2 + 12 * len(_entry_count(out, start, order)), next_offset)
        next_offset = start
    struct.pack_into(order + "I", out, 4, next_offset)
    for where, data in strips:
        align()
        struct.pack_into(order + "I", out, where, len(out))
        out.extend(data)
    return bytes(out)


def _entry_count(out: bytearray, start: int, order: str) -> range:
    return range(struct.unpack_from(order + "H", out, start)[0])


def camera_exif(make: str, model: str, *, orientation: int = 1, taken: str = "2024:05:06 07:08:09",
                offset: str | None = "+02:00", gps: tuple[float, float, float] | None = None,
                exposure: float = 1 / 250, fnumber: float = 5.6, iso: int = 400, focal: float = 35.0,
                ) -> tuple[dict[int, tuple[int, Any]], dict[int, list[Ifd]]]:
    """IFD0 camera tags plus EXIF (and GPS) directories, as cameras write them."""
    exif = Ifd({0x829A: (RATIONAL, exposure), 0x829D: (RATIONAL, fnumber), 0x8827: (SHORT, iso),
                0x9003: (ASCII, taken), 0x920A: (RATIONAL, focal)})
    if offset:
        exif.tags[0x9011] = (ASCII, offset)
    children = {0x8769: [exif]}
    if gps:
        lat, lon, alt = gps

        def dms(v: float) -> tuple:
            d = int(v)
            m = int((v - d) * 60)
            return ((d, 1), (m, 1), _rational((v - d - m / 60) * 3600))

        children[0x8825] = [Ifd({0: (BYTE, (2, 3, 0, 0)), 1: (ASCII, "N" if lat >= 0 else "S"),
                                 2: (RATIONAL, dms(abs(lat))), 3: (ASCII, "E" if lon >= 0 else "W"),
                                 4: (RATIONAL, dms(abs(lon))), 5: (BYTE, 0 if alt >= 0 else 1),
                                 6: (RATIONAL, abs(alt))})]
    tags = {0x010F: (ASCII, make), 0x0110: (ASCII, model), 0x0112: (SHORT, orientation)}
    return tags, children


def _image_tags(width: int, height: int, *, bits: int = 8, samples: int = 3, photometric: int = 2,
                compression: int = 1, subfile: int | None = None) -> dict[int, tuple[int, Any]]:
    tags: dict[int, tuple[int, Any]] = {
        0x0100: (LONG, width), 0x0101: (LONG, height), 0x0102: (SHORT, (bits,) * samples),
        0x0103: (SHORT, compression), 0x0106: (SHORT, photometric), 0x0115: (SHORT, samples),
        0x0116: (LONG, height)}
    if subfile is not None:
        tags[0x00FE] = (LONG, subfile)
    return tags


def _cfa(width: int, height: int, *, bits: int = 16, compression: int = 1) -> Ifd:
    tags = _image_tags(width, height, bits=bits, samples=1, photometric=32803, compression=compression,
                       subfile=0)
    tags[0x828D] = (SHORT, (2, 2))  # CFARepeatPatternDim
    tags[0x828E] = (BYTE, (0, 1, 1, 2))  # CFAPattern: RGGB
    return Ifd(tags, data=bytes(width * height * 2 // 8))  # a fraction: a header read never needs it


def _preview(width: int, height: int, subfile: int = 1) -> Ifd:
    return Ifd(_image_tags(width, height, subfile=subfile), data=bytes(width * height * 3))


RAW_CAMERAS = {  # format: (make, model)
    "DNG": ("Canon", "EOS R5"), "NEF": ("NIKON CORPORATION", "NIKON Z 6"),
    "NRW": ("NIKON", "COOLPIX P7800"), "ARW": ("SONY", "ILCE-7M3"), "CR2": ("Canon", "Canon EOS 5D Mark IV"),
    "ORF": ("OLYMPUS IMAGING CORP.", "E-M5"), "RW2": ("Panasonic", "DC-GH5"),
    "PEF": ("PENTAX", "PENTAX K-1"), "SRW": ("SAMSUNG", "NX500"), "3FR": ("Hasselblad", "H6D-100c"),
    "IIQ": ("Phase One", "IQ4 150MP"),
}


def raw_corpus() -> dict[str, bytes]:
    """One file per TIFF-based raw format, laid out as the cameras lay them out (a thumbnail or
    preview first, the full-size raw where exiftool looks for it), with EXIF and GPS."""
    files: dict[str, bytes] = {}
    for i, (fmt, (make, model)) in enumerate(RAW_CAMERAS.items()):
        tags, children = camera_exif(make, model, orientation=(1, 6, 8, 3)[i % 4],
                                     taken=f"2023:0{i % 9 + 1}:1{i % 9} 1{i % 9}:2{i % 6}:3{i % 6}",
                                     gps=(48.85 - i, 2.29 + 3 * i, 30.0 + i) if i % 2 == 0 else None)
        order, magic, extra = "<", 42, b""
        raw_w, raw_h = 600 + 8 * i, 400 + 4 * i
        if fmt == "DNG":
            ifd0 = _preview(256, 171)
            ifd0.tags.update(tags)
            ifd0.tags[0xC612] = (BYTE, (1, 4, 0, 0))  # DNGVersion
            raw = _cfa(raw_w, raw_h)
            raw.tags[0xC620] = (RATIONAL, (raw_w - 16, raw_h - 12))  # DefaultCropSize
            raw.tags[0xC61F] = (RATIONAL, (8, 6))  # DefaultCropOrigin
            ifd0.children = {0x014A: [raw, _preview(1024, 683)], **children}
            chain = [ifd0]
        elif fmt in ("NEF", "NRW", "ARW"):
            ifd0 = _preview(160, 106)
            if fmt == "NRW":  # a JPEG thumbnail in IFD0 is what tells NRW from NEF
                ifd0.tags[0x0103] = (SHORT, 6)
                ifd0.tags[0x0201], ifd0.tags[0x0202] = (LONG, 0), (LONG, 0)
            if fmt == "ARW":
                ifd0.tags[0x0103] = (SHORT, 6)
                ifd0.tags[0x00FE] = (LONG, 1)
            ifd0.tags.update(tags)
            raw = _cfa(raw_w, raw_h, compression={"NEF": 34713, "NRW": 34713, "ARW": 32767}[fmt])
            subs = [_preview(raw_w, raw_h, subfile=1), raw] if fmt != "ARW" else [raw]
            ifd0.children = {0x014A: subs, **children}
            chain = [ifd0]
        elif fmt == "CR2":
            extra = b"CR\x02\x00\x00\x00\x00\x00"  # CR2 signature and the raw IFD's offset (unused here)
            ifd0 = _preview(raw_w // 4, raw_h // 4)
            ifd0.tags.update(tags)
            children[0x8769][0].tags[0xA002] = (LONG, raw_w)  # ExifImageWidth
            children[0x8769][0].tags[0xA003] = (LONG, raw_h)
            ifd0.children = dict(children)
            raw = Ifd({0x0103: (SHORT, 6), 0xC5D8: (LONG, 1), 0xC640: (SHORT, (1, raw_w // 2, raw_w // 2))},
                      data=bytes(4096))
            chain = [ifd0, _preview(160, 120), _preview(raw_w // 8, raw_h // 8), raw]
        elif fmt == "IIQ":
            extra = b"IIII\x01\x00\x00\x00" + bytes(8)  # Phase One's own directory follows the header
            ifd0 = _preview(1, 1)
            ifd0.tags.update(tags)
            children[0x8769][0].tags[0xA002] = (LONG, raw_w)
            children[0x8769][0].tags[0xA003] = (LONG, raw_h)
            ifd0.children = dict(children)
            chain = [ifd0]
        elif fmt in ("ORF", "RW2"):
            magic = 0x4F52 if fmt == "ORF" else 0x55
            ifd0 = Ifd(_image_tags(raw_w, raw_h, bits=12, samples=1, photometric=32803), data=bytes(4096))
            if fmt == "RW2":
                extra = bytes.fromhex("88e774d8f8251d4d947a6e77822b5d6a")
                ifd0 = Ifd({0x02: (SHORT, raw_w + 16), 0x03: (SHORT, raw_h + 8), 0x04: (SHORT, 4),
                            0x05: (SHORT, 8), 0x06: (SHORT, raw_h + 4), 0x07: (SHORT, raw_w + 8)},
                           data=bytes(4096))
            ifd0.tags.update(tags)
            ifd0.children = dict(children)
            chain = [ifd0]
        else:  # PEF, SRW, 3FR: the raw in IFD0
            ifd0 = _cfa(raw_w, raw_h, compression={"PEF": 65535, "SRW": 32770, "3FR": 1}[fmt])
            ifd0.tags.update(tags)
            ifd0.children = dict(children)
            chain = [ifd0, _preview(160, 120, subfile=1)]
        files[f"camera-{fmt.lower()}.{fmt.lower()}"] = tiff_bytes(chain, order, magic, extra)
    return files
