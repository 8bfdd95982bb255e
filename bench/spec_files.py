"""Odd but valid images, corrupt ones and raw photos, built from their specifications.

Each file's truth is known from how it is built; exiftool judges them in bench/oracle.py and
tests/test_oracle.py, and tests/test_real_world_files.py checks each point on them.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from PIL import Image, PngImagePlugin

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


def _cfa(width: int, height: int, *, bits: int = 16, compression: int = 1, raw_bytes: int | None = None) -> Ifd:
    tags = _image_tags(width, height, bits=bits, samples=1, photometric=32803, compression=compression,
                       subfile=0)
    tags[0x828D] = (SHORT, (2, 2))  # CFARepeatPatternDim
    tags[0x828E] = (BYTE, (0, 1, 1, 2))  # CFAPattern: RGGB
    return Ifd(tags, data=bytes(raw_bytes or width * height * 2 // 8))  # by default a fraction of the raw


def _preview(width: int, height: int, subfile: int = 1) -> Ifd:
    return Ifd(_image_tags(width, height, subfile=subfile), data=bytes(width * height * 3))


RAW_CAMERAS = {  # format: (make, model)
    "DNG": ("Canon", "EOS R5"), "NEF": ("NIKON CORPORATION", "NIKON Z 6"),
    "NRW": ("NIKON", "COOLPIX P7800"), "ARW": ("SONY", "ILCE-7M3"), "CR2": ("Canon", "Canon EOS 5D Mark IV"),
    "ORF": ("OLYMPUS IMAGING CORP.", "E-M5"), "RW2": ("Panasonic", "DC-GH5"),
    "PEF": ("PENTAX", "PENTAX K-1"), "SRW": ("SAMSUNG", "NX500"), "3FR": ("Hasselblad", "H6D-100c"),
    "IIQ": ("Phase One", "IQ4 150MP"),
}


def raw_corpus(raw_bytes: int | None = None) -> dict[str, bytes]:
    """One file per raw format, laid out as the cameras lay them out (a thumbnail or preview
    first, the full-size raw where exiftool looks for it), with EXIF and GPS; `raw_bytes` sizes
    each file's raw data as a camera's would be (by default a few KB)."""
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
            raw = _cfa(raw_w, raw_h, raw_bytes=raw_bytes)
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
            raw = _cfa(raw_w, raw_h, compression={"NEF": 34713, "NRW": 34713, "ARW": 32767}[fmt], raw_bytes=raw_bytes)
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
                      data=bytes(raw_bytes or 4096))
            chain = [ifd0, _preview(160, 120), _preview(raw_w // 8, raw_h // 8), raw]
        elif fmt == "IIQ":
            extra = b"IIII\x01\x00\x00\x00" + bytes(8)  # Phase One's own directory follows the header
            ifd0 = _preview(1, 1)
            ifd0.tags.update(tags)
            children[0x8769][0].tags[0xA002] = (LONG, raw_w)
            children[0x8769][0].tags[0xA003] = (LONG, raw_h)
            ifd0.children = dict(children)
            if raw_bytes:
                ifd0.data = bytes(raw_bytes)  # the raw data after the directories
            chain = [ifd0]
        elif fmt in ("ORF", "RW2"):
            magic = 0x4F52 if fmt == "ORF" else 0x55
            ifd0 = Ifd(_image_tags(raw_w, raw_h, bits=12, samples=1, photometric=32803), data=bytes(raw_bytes or 4096))
            if fmt == "RW2":
                extra = bytes.fromhex("88e774d8f8251d4d947a6e77822b5d6a")
                ifd0 = Ifd({0x02: (SHORT, raw_w + 16), 0x03: (SHORT, raw_h + 8), 0x04: (SHORT, 4),
                            0x05: (SHORT, 8), 0x06: (SHORT, raw_h + 4), 0x07: (SHORT, raw_w + 8)},
                           data=bytes(raw_bytes or 4096))
            ifd0.tags.update(tags)
            ifd0.children = dict(children)
            chain = [ifd0]
        else:  # PEF, SRW, 3FR: the raw in IFD0
            ifd0 = _cfa(raw_w, raw_h, compression={"PEF": 65535, "SRW": 32770, "3FR": 1}[fmt], raw_bytes=raw_bytes)
            ifd0.tags.update(tags)
            ifd0.children = dict(children)
            chain = [ifd0, _preview(160, 120, subfile=1)]
        files[f"camera-{fmt.lower()}.{fmt.lower()}"] = tiff_bytes(chain, order, magic, extra)
    from bench.spec_containers import container_corpus, cr3_bytes, mrw_bytes, raf_bytes

    files["camera-raf.raf"] = raf_bytes(raw_bytes=raw_bytes or 4096)
    files["camera-cr3.cr3"] = cr3_bytes(raw_bytes=raw_bytes or 8192)
    files["camera-mrw.mrw"] = mrw_bytes(raw_bytes=raw_bytes or 8192)

    files.update(container_corpus(raw_bytes or 16384))
    return files


def _png_chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    import zlib

    value = zlib.crc32(kind + data) if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", value)


def _insert_png_chunk(png: bytes, chunk: bytes) -> bytes:
    """The chunk placed right after IHDR."""
    return png[:33] + chunk + png[33:]


def raw_profile(name: str, data: bytes) -> str:
    """An ImageMagick 'Raw profile type' text: name, length, hex digits in lines of 72."""
    hexed = data.hex()
    lines = "\n".join(hexed[i:i + 72] for i in range(0, len(hexed), 72))
    return f"\n{name}\n{len(data):8d}\n{lines}\n"


def bmp_bytes(width: int, height: int, bpp: int, *, compression: int = 0, masks: tuple[int, ...] = (),
              header_size: int = 40, ppm: tuple[int, int] = (2835, 2835), palette: int = 0) -> bytes:
    """A BMP from the Windows BITMAPINFOHEADER/V4/V5 layouts (or the 12-byte OS/2 core header)."""
    row = ((width * bpp + 31) // 32) * 4
    pixels = bytes(row * height)
    if header_size == 12:
        dib = struct.pack("<IHHHH", 12, width, height, 1, bpp)
        table = bytes(3 * palette)
    else:
        dib = struct.pack("<IiiHHIIiiII", header_size, width, height, 1, bpp, compression, len(pixels),
                          ppm[0], ppm[1], palette, 0)
        if header_size > 40:
            dib += struct.pack("<" + "I" * 4, *(masks + (0,) * 4)[:4]) + bytes(header_size - 56)
            extra = b""
        else:
            extra = struct.pack("<" + "I" * len(masks), *masks)
        dib += extra
        table = bytes(4 * palette)
    offset = 14 + len(dib) + len(table)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + dib + table + pixels


def _heif(im: Image.Image, fmt: str, orientation: int | None, as_bytes: bool, **options: Any) -> bytes:
    """HEIC/AVIF: EXIF orientation passed as bytes makes libheif/libavif write irot/imir (as
    iPhones do, keeping EXIF's value too); as a Pillow Exif object, EXIF alone carries it."""
    import shared.image_open  # noqa: F401 - registers pillow-heif

    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Apple", "iPhone 15 Pro"
    if orientation:
        exif[0x0112] = orientation
    out = io.BytesIO()
    im.save(out, fmt, exif=exif.tobytes() if as_bytes else exif, **options)
    return out.getvalue()


def _save(im: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **options)
    return out.getvalue()


def odd_corpus() -> dict[str, bytes]:
    """Valid images that are odd, and the everyday files the issue found misread."""
    import numpy as np
    import tifffile

    from devhost import samples

    files: dict[str, bytes] = {}
    base = samples.picture((120, 80), seed=31)
    # HEIF/AVIF orientation: irot + EXIF (iPhone), EXIF alone, imir, rotate + mirror.
    for fmt, ext in (("HEIF", "heic"), ("AVIF", "avif")):
        files[f"irot-exif6.{ext}"] = _heif(base, fmt, 6, True)
        files[f"exif6-only.{ext}"] = _heif(base, fmt, 6, False)
        files[f"imir-2.{ext}"] = _heif(base, fmt, 2, True)
        files[f"irot-imir-5.{ext}"] = _heif(base, fmt, 5, True)
        files[f"plain.{ext}"] = _heif(base, fmt, None, True)
    from bench.spec_sequences import sequence_corpus

    files.update(sequence_corpus())  # HEIF/AVIF image sequences, and stills with several pictures
    # Animation: APNG and animated WebP are; MPO and multi-page TIFF are not.
    frames = [samples.picture((40, 30), seed=s) for s in (1, 2, 3)]
    for fmt, ext in (("PNG", "png"), ("WEBP", "webp")):
        out = io.BytesIO()
        frames[0].save(out, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
        files[f"animated.{ext}"] = out.getvalue()
    out = io.BytesIO()
    frames[0].save(out, "TIFF", save_all=True, append_images=frames[1:])
    files["three-pages.tiff"] = out.getvalue()
    files["orientation-6.tiff"] = _save(base, "TIFF", exif=samples.Exif(orientation=6, make="Leica").block())
    out = io.BytesIO()
    frames[0].save(out, "MPO", save_all=True, append_images=frames[1:2],
                   exif=samples.Exif(make="Apple", model="iPhone 15 Pro").block())
    files["depth-map.mpo.jpg"] = out.getvalue()
    # DPI: recorded in each way, and absent.
    files["no-density.jpg"] = samples.encode(base, "JPEG", samples.Exif(make="Canon", model="EOS 1"))
    files["jfif-300.jpg"] = samples.encode(base, "JPEG", dpi=(300, 300))
    exif_res = samples.Exif(make="Canon", model="EOS 2").block()
    exif_res[0x011A], exif_res[0x011B], exif_res[0x0128] = Fraction(240), Fraction(240), 2
    files["exif-240.jpg"] = _save(base, "JPEG", exif=exif_res)
    cm = Image.Exif()
    cm[0x011A], cm[0x011B], cm[0x0128] = Fraction(118), Fraction(118), 3
    files["exif-cm.webp"] = _save(base, "WEBP", exif=cm)
    files["exif-dpi.heic"] = _save(base, "HEIF", exif=cm.tobytes())
    files["phys.png"] = samples.encode(base, "PNG", dpi=(150, 150))
    files["no-resolution.tiff"] = tiff_bytes([Ifd(_image_tags(16, 8), data=bytes(16 * 8 * 3))])
    one = _image_tags(16, 8)
    one[0x011A] = (RATIONAL, 300)
    files["x-resolution-only.tiff"] = tiff_bytes([Ifd(one, data=bytes(16 * 8 * 3))])
    # BitDepth: palette GIFs and BMPs of 1-8 bits.
    for bits in (1, 2, 4, 8):
        pal = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=2 ** bits)
        files[f"palette-{bits}bit.gif"] = samples.encode(pal, "GIF")
    files["palette-1bit.bmp"] = samples.encode(base.convert("1"), "BMP")
    files["palette-4bit.bmp"] = bmp_bytes(30, 20, 4, palette=16)
    files["palette-8bit.bmp"] = samples.encode(base.convert("P"), "BMP")
    files["core-header-8bit.bmp"] = bmp_bytes(30, 20, 8, header_size=12, palette=256)
    # BMP bit-field layouts (BI_BITFIELDS = 3, BI_ALPHABITFIELDS = 6) and V4/V5 headers.
    files["bitfields-565.bmp"] = bmp_bytes(30, 20, 16, compression=3, masks=(0xF800, 0x07E0, 0x001F))
    files["bitfields-555.bmp"] = bmp_bytes(30, 20, 16, compression=3, masks=(0x7C00, 0x03E0, 0x001F))
    files["bitfields-4444.bmp"] = bmp_bytes(30, 20, 16, compression=3, header_size=108,
                                            masks=(0x0F00, 0x00F0, 0x000F, 0xF000))
    files["bitfields-8888.bmp"] = bmp_bytes(30, 20, 32, compression=3, header_size=124,
                                            masks=(0xFF0000, 0xFF00, 0xFF, 0xFF000000))
    files["bitfields-101010.bmp"] = bmp_bytes(30, 20, 32, compression=3,
                                              masks=(0x3FF00000, 0x000FFC00, 0x000003FF))
    files["rgb-16bit.bmp"] = bmp_bytes(30, 20, 16)
    # TIFF oddities: big-endian BigTIFF, LogLuv, 32-bit float.
    arr = np.zeros((20, 30, 3), "uint8")
    for name, options in (("bigtiff-be.tiff", {"bigtiff": True, "byteorder": ">"}),
                          ("bigtiff-le.tiff", {"bigtiff": True, "byteorder": "<"})):
        out = io.BytesIO()
        tifffile.imwrite(out, arr, photometric="rgb", resolution=(72, 72), metadata=None, **options)
        files[name] = out.getvalue()
    out = io.BytesIO()
    tifffile.imwrite(out, np.zeros((20, 30, 3), "float32"), photometric="rgb", metadata=None)
    files["float32-rgb.tiff"] = out.getvalue()
    out = io.BytesIO()
    tifffile.imwrite(out, np.zeros((20, 30), "float32"), metadata=None)
    files["float32-gray.tiff"] = out.getvalue()
    logluv = _image_tags(30, 20, bits=16, samples=3, photometric=32845, compression=34676)
    logluv[0x0153] = (SHORT, (2, 2, 2))
    files["logluv.tiff"] = tiff_bytes([Ifd(logluv, data=bytes(600))])
    # PNG: a bad CRC in an ancillary chunk (libpng warns and drops it), profiles in text chunks.
    png = samples.encode(base, "PNG")
    files["bad-crc-text.png"] = _insert_png_chunk(png, _png_chunk(b"tEXt", b"Comment\x00hello", crc=0))
    files["bad-crc-srgb.png"] = _insert_png_chunk(png, _png_chunk(b"sRGB", b"\x00", crc=1))
    profiles = PngImagePlugin.PngInfo()
    exif_block = samples.Exif(make="Canon", model="EOS 80D", taken="2020:02:02 02:02:02",
                              offset="+03:00").block().tobytes()
    profiles.add_text("Raw profile type exif", raw_profile("exif", exif_block), zip=True)
    profiles.add_text("Raw profile type xmp", raw_profile("xmp", samples.xmp_packet(
        subjects=["magick"], title="Converted by ImageMagick", rating="3")), zip=True)
    profiles.add_text("Raw profile type iptc", raw_profile("iptc", samples.iptc_block(
        [(2, 80, b"Photographer"), (2, 116, b"IPTC copyright")])[14:]), zip=False)
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    profiles.add_text("Raw profile type icc", raw_profile("icc", icc), zip=True)
    out = io.BytesIO()
    base.save(out, "PNG", pnginfo=profiles)
    files["magick-profiles.png"] = out.getvalue()
    # XMP: trailing junk after the end marker; in GIF; GPS only in XMP.
    packet = samples.xmp_packet(taken="2019-09-09T09:09:09+01:00", subjects=["junk after packet"],
                                description="kept despite the junk", rating="4")
    files["xmp-junk.jpg"] = samples.encode(base, "JPEG", xmp=packet + b" " * 2048 + b"\x00\xffjunk</x>")
    gif = samples.encode(base.convert("P"), "GIF")
    gif_packet = samples.xmp_packet(subjects=["gif"], title="GIF with XMP", rating="2")
    trailer = b"\x01" + bytes(range(255, -1, -1)) + b"\x00"
    table = 3 << ((gif[10] & 7) + 1) if gif[10] & 0x80 else 0
    at = 13 + table
    files["xmp.gif"] = gif[:at] + b"\x21\xff\x0bXMP DataXMP" + gif_packet + trailer + gif[at:]
    gps_xmp = samples.xmp_packet(subjects=["xmp gps"]).replace(
        b'rdf:about=""', b'rdf:about="" exif:GPSLatitude="48,51.5022N" exif:GPSLongitude="2,17.6689E" '
        b'exif:GPSAltitude="351/10" exif:GPSAltitudeRef="0"')
    files["xmp-gps.jpg"] = samples.encode(base, "JPEG", xmp=gps_xmp)
    # Text and dates: a multi-line description; capture times that cannot exist with their offset.
    multi = samples.Exif(make="Canon", model="EOS 3").block()
    multi[0x010E] = "First line\nSecond line\r\nThird\tline"
    files["multi-line.jpg"] = _save(base, "JPEG", exif=multi)
    files["year-1.jpg"] = samples.encode(base, "JPEG", samples.Exif(
        make="Canon", model="EOS 4", taken="0001:01:01 00:00:00", offset="+01:00"))
    files["year-9999.jpg"] = samples.encode(base, "JPEG", samples.Exif(
        make="Canon", model="EOS 5", taken="9999:12:31 23:59:59", offset="-01:00"))
    return files


def corrupt_corpus() -> dict[str, bytes]:
    """Recognisable but broken files: each must be rejected with its decoder's own reason."""
    from devhost import samples

    png = samples.encode(samples.picture((20, 10)), "PNG")
    tiff = samples.encode(samples.picture((20, 10)), "TIFF")
    return {
        "bad-crc-ihdr.png": png[:29] + b"\x00\x00\x00\x00" + png[33:],
        "bad-crc-plte.png": _insert_png_chunk(png, _png_chunk(b"PLTE", b"\x00" * 6, crc=1)),
        "truncated-ihdr.png": png[:20],
        "ifd-past-end.tiff": tiff[:4] + struct.pack("<I", len(tiff) + 1000) + tiff[8:],
        "bitfields-overlap.bmp": bmp_bytes(30, 20, 16, compression=3, masks=(0xFF00, 0x0FF0, 0x000F)),
        "truncated.gif": samples.encode(samples.picture((20, 10)).convert("P"), "GIF")[:9],
    }
