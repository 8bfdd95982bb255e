"""Images made on the spot: demo uploads, test corpora and benchmark inputs.

Generated rather than shipped, so the repository carries no binaries and every
image's true metadata is known from how it was made.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from PIL import Image, ImageDraw


@dataclass
class Exif:
    orientation: int | None = None
    make: str | None = None
    model: str | None = None
    taken: str | None = None  # "YYYY:MM:DD HH:MM:SS"
    offset: str | None = None
    gps: tuple[float, float, float] | None = None  # lat, lon, altitude (m)
    extra: dict[int, Any] = field(default_factory=dict)

    def block(self) -> Image.Exif:
        exif = Image.Exif()
        if self.orientation:
            exif[0x0112] = self.orientation
        if self.make:
            exif[0x010F] = self.make
        if self.model:
            exif[0x0110] = self.model
        sub = exif.get_ifd(0x8769)
        if self.taken:
            sub[0x9003] = self.taken
        if self.offset:
            sub[0x9011] = self.offset
        for tag, value in self.extra.items():
            sub[tag] = value
        if self.gps:
            lat, lon, alt = self.gps
            gps = exif.get_ifd(0x8825)
            gps[1], gps[2] = ("N" if lat >= 0 else "S"), _dms(abs(lat))
            gps[3], gps[4] = ("E" if lon >= 0 else "W"), _dms(abs(lon))
            gps[5], gps[6] = (0 if alt >= 0 else 1), Fraction(abs(alt)).limit_denominator(100)
        return exif


def _dms(value: float) -> tuple[Fraction, Fraction, Fraction]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = (value - degrees - minutes / 60) * 3600
    return Fraction(degrees), Fraction(minutes), Fraction(seconds).limit_denominator(10000)


def picture(size: tuple[int, int] = (64, 48), mode: str = "RGB", seed: int = 0) -> Image.Image:
    """A small picture with some structure (so encoders produce realistic streams)."""
    base = Image.new("RGB", size, ((seed * 37) % 256, (seed * 91) % 256, (seed * 13) % 256))
    draw = ImageDraw.Draw(base)
    w, h = size
    for i in range(0, max(w, h), max(4, min(w, h) // 8 or 1)):
        draw.line((i, 0, 0, i), fill=((i * 5 + seed) % 256, 120, (i * 3) % 256), width=2)
    return base.convert(mode)


def noise(size: tuple[int, int], seed: int = 1) -> Image.Image:
    """Incompressible pixels, for files that must be large."""
    import random

    rng = random.Random(seed)
    return Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))


def encode(im: Image.Image, fmt: str, exif: Exif | None = None, **options: Any) -> bytes:
    out = io.BytesIO()
    if exif is not None:
        options["exif"] = exif.block()
    im.save(out, fmt, **options)
    return out.getvalue()


def animated_gif(frames: int = 3, size: tuple[int, int] = (32, 32)) -> bytes:
    images = [picture(size, seed=i).convert("P") for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (a decompression bomb's shape) with a tiny IDAT."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
            + chunk(b"IEND", b""))


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto 10 10 lineto stroke\n%%EOF\n"


def hostile_inputs() -> dict[str, bytes]:
    """Blobs that must each end as a recorded rejection, never a crash."""
    jpeg = encode(picture((80, 60)), "JPEG")
    return {
        "empty.jpg": b"",
        "notes.jpg": b"This is a text file, not an image.\n" * 4,
        "vector.jpg": EPS,
        "corrupt.jpg": jpeg[:2] + bytes(range(256)) * 4,
        "truncated-header.jpg": jpeg[:120],
        "bomb.png": png_header_only(30000, 30000),
    }


def demo_images() -> dict[str, bytes]:
    """The handful of varied uploads `make demo` indexes, plus one non-image."""
    camera = Exif(orientation=6, make="Canon", model="EOS R5", taken="2024:06:01 14:30:05",
                  offset="+02:00", gps=(48.8583701, 2.2944813, 35.0))
    return {
        "holiday/eiffel.jpg": encode(picture((640, 480), seed=1), "JPEG", camera, quality=85,
                                     xmp=xmp_packet(subjects=["holiday", "Paris"], rating="5",
                                                    title="Eiffel Tower at dusk")),
        "scans/diagram.png": encode(picture((300, 200), "RGBA", seed=2), "PNG"),
        "fun/spinner.gif": animated_gif(4),
        "web/banner.webp": encode(picture((400, 100), seed=3), "WEBP"),
        "print/poster.tiff": encode(picture((120, 160), seed=4), "TIFF", dpi=(300, 300)),
        "legacy/icon.bmp": encode(picture((32, 32), seed=5), "BMP"),
        "Ünïcødé 'quoted' \"name\" ✓.jpg": encode(picture((50, 50), seed=6), "JPEG"),
        "docs/readme.jpg": b"Not an image at all: a text file with a .jpg name.\n",
    }


def _padded_icc(size: int) -> bytes:
    """A real sRGB profile followed by padding, to push a JPEG's header past a given size."""
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return icc + b"\x00" * max(0, size - len(icc))


HEMISPHERES = {"ne": (35.6585805, 139.7454329, 40.0), "nw": (40.6892494, -74.0445004, 10.5),
               "se": (-33.8567844, 151.2152967, 5.0), "sw": (-22.9519173, -43.2104585, -12.5)}


def oracle_corpus() -> dict[str, bytes]:
    """Images with known metadata in every format and EXIF shape the extractor must get right."""
    corpus: dict[str, bytes] = {}
    base = picture((240, 160), seed=11)
    for orientation in range(1, 9):
        exif = Exif(orientation=orientation, make="Canon", model=f"EOS {orientation}D",
                    taken=f"2021:0{orientation}:1{orientation} 0{orientation}:15:30", offset="-05:00")
        corpus[f"orientation-{orientation}.jpg"] = encode(base, "JPEG", exif, quality=80)
    for name, gps in HEMISPHERES.items():
        exif = Exif(make="Apple", model="iPhone 15", taken="2023:07:04 12:00:00", gps=gps)
        corpus[f"gps-{name}.jpg"] = encode(base, "JPEG", exif)
    big = Exif(orientation=6, make="Nikon", model="Z 9", taken="2022:02:22 22:22:22", gps=HEMISPHERES["se"])
    corpus["big-header.jpg"] = encode(picture((1200, 800), seed=3), "JPEG", big,
                                      icc_profile=_padded_icc(150_000), quality=90)
    corpus["progressive.jpg"] = encode(picture((500, 375), seed=4), "JPEG",
                                       Exif(make="Fujifilm", model="X-T5"), progressive=True)
    corpus["animated.gif"] = animated_gif(6, (48, 40))
    corpus["static.gif"] = encode(picture((70, 50), seed=5).convert("P"), "GIF")
    corpus["exif.png"] = encode(picture((90, 60), "RGBA", seed=6), "PNG",
                                Exif(make="Google", model="Pixel 8", orientation=3))
    corpus["plain.png"] = encode(picture((33, 44), "L", seed=7), "PNG")
    corpus["exif.webp"] = encode(picture((128, 96), seed=8), "WEBP",
                                 Exif(make="Samsung", model="S24", taken="2024:03:03 03:03:03"))
    corpus["dir-at-end.tiff"] = encode(noise((320, 240)), "TIFF", Exif(make="Leica", model="M11"),
                                       compression="tiff_deflate")
    corpus["plain.tiff"] = encode(picture((64, 64), seed=10), "TIFF")
    corpus["plain.bmp"] = encode(picture((41, 23), seed=12), "BMP")
    try:
        from pillow_heif import register_heif_opener

        register_heif_opener()
        corpus["phone.heic"] = encode(picture((160, 120), seed=13), "HEIF",
                                      Exif(make="Apple", model="iPhone 16", orientation=6,
                                           taken="2025:05:05 05:05:05", gps=HEMISPHERES["nw"]))
    except ImportError:
        pass
    frames = [picture((100, 80), seed=s) for s in (14, 15)]
    out = io.BytesIO()
    frames[0].save(out, "MPO", save_all=True, append_images=frames[1:],
                   exif=Exif(make="Fujifilm", model="FinePix REAL 3D W3").block())
    corpus["stereo.mpo.jpg"] = out.getvalue()
    return corpus


# ---- Descriptive metadata: XMP packets, IPTC blocks, raw EXIF strings ----------------------

_XMP_NAMESPACES = {
    "dc": "http://purl.org/dc/elements/1.1/", "xmp": "http://ns.adobe.com/xap/1.0/",
    "exif": "http://ns.adobe.com/exif/1.0/", "photoshop": "http://ns.adobe.com/photoshop/1.0/",
}


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def xmp_packet(*, taken: str | None = None, photoshop_date: str | None = None,
               rating: str | None = None, subjects: list[str] | None = None, title: str | None = None,
               description: str | None = None, creators: list[str] | None = None,
               rights: str | None = None, doctype: str = "") -> bytes:
    """An XMP packet as Lightroom/Photoshop write it: simple properties as attributes of
    rdf:Description, lists as rdf:Bag/Seq, language alternatives as rdf:Alt."""
    attrs = []
    if taken:
        attrs.append(f'exif:DateTimeOriginal="{_xml_escape(taken)}"')
    if photoshop_date:
        attrs.append(f'photoshop:DateCreated="{_xml_escape(photoshop_date)}"')
    if rating is not None:
        attrs.append(f'xmp:Rating="{_xml_escape(rating)}"')
    children = []

    def listed(name: str, kind: str, items: list[str]) -> None:
        lis = "".join(f"<rdf:li>{_xml_escape(i)}</rdf:li>" for i in items)
        children.append(f"<{name}><rdf:{kind}>{lis}</rdf:{kind}></{name}>")

    def alt(name: str, text: str) -> None:
        children.append(f'<{name}><rdf:Alt><rdf:li xml:lang="x-default">{_xml_escape(text)}</rdf:li>'
                        f"</rdf:Alt></{name}>")

    if subjects:
        listed("dc:subject", "Bag", subjects)
    if creators:
        listed("dc:creator", "Seq", creators)
    if title:
        alt("dc:title", title)
    if description:
        alt("dc:description", description)
    if rights:
        alt("dc:rights", rights)
    ns = " ".join(f'xmlns:{k}="{v}"' for k, v in _XMP_NAMESPACES.items())
    body = (f'{doctype}<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            f'<rdf:Description rdf:about="" {ns} {" ".join(attrs)}>{"".join(children)}</rdf:Description>'
            '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>')
    return body.encode("utf-8")


BILLION_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
                            for i in range(1, 10))
                  + "]>")


def iptc_block(datasets: list[tuple[int, int, bytes]], utf8: bool = True,
               digest: bytes | None = None) -> bytes:
    """IPTC-IIM records wrapped in a Photoshop 8BIM 0x0404 resource (the APP13 payload),
    optionally followed by an IPTCDigest (0x0425) resource."""
    records = [(1, 90, b"\x1b%G")] if utf8 else []
    iim = b"".join(b"\x1c" + bytes([r, d]) + struct.pack(">H", len(v)) + v for r, d, v in records + datasets)
    resource = b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(iim)) + iim
    if len(iim) % 2:
        resource += b"\x00"
    if digest is not None:
        resource += b"8BIM" + struct.pack(">H", 0x0425) + b"\x00\x00" + struct.pack(">I", 16) + digest
    return b"Photoshop 3.0\x00" + resource


def with_app13(jpeg: bytes, payload: bytes) -> bytes:
    """Insert an APP13 segment right after SOI."""
    return jpeg[:2] + b"\xff\xed" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def _gps_stamp(exif: Image.Exif, date: str, hms: tuple[int, int, int]) -> None:
    gps = exif.get_ifd(0x8825)
    gps[0x1D] = date
    gps[0x07] = tuple(Fraction(v) for v in hms)


PARIS = (48.8583701, 2.2944813, 35.0)
MID_PACIFIC = (-10.0, -140.0, 0.0)


def metadata_corpus() -> dict[str, bytes]:
    """Images whose EXIF strings, XMP, IPTC, GPS stamps and formats exercise every
    descriptive field; exiftool judges them all in tests/test_oracle.py."""
    corpus: dict[str, bytes] = {}
    base = picture((96, 64), seed=21)

    def jpeg(exif: Image.Exif | None = None, **options: Any) -> bytes:
        out = io.BytesIO()
        if exif is not None:
            options["exif"] = exif
        base.save(out, "JPEG", **options)
        return out.getvalue()

    # EXIF ASCII strings as cameras write them: NUL-terminated, padding or garbage after it.
    raw = Exif(taken="2019:05:06 07:08:09").block()
    raw[0x010F] = b"CASIO COMPUTER CO.,LTD.\x00\x00\x00"
    raw[0x0110] = b"EX-Z75\x00\x00Ab"
    raw[0x0131] = b"Ver 1.00\x00\xff\xfe garbage"
    raw[0x013B] = "Zoë Łukasz 東京".encode()
    raw[0x8298] = b"(c) Jos\xe9 Mu\xf1oz"  # Latin-1 bytes
    raw[0x010E] = b"Harbour at dusk\x00\x00\x00\x00\x00\x00"
    corpus["nul-padded.jpg"] = jpeg(raw)
    garbage = Exif(make="Nikon").block()
    garbage[0x0110] = b"\x01\x02\x03\x04"
    garbage[0x013B] = b"\x00leading NUL hides all"
    corpus["garbage-strings.jpg"] = jpeg(garbage)
    # XMP only (an export from Lightroom): zoned, unzoned and Z capture times, and the rest.
    corpus["xmp-zoned.jpg"] = jpeg(xmp=xmp_packet(
        taken="2023-08-12T18:45:10+02:00", rating="5", subjects=["wedding", "Beach", "family"],
        title="First dance", description="Anna & Ben — first dance", creators=["Jane Doe"],
        rights="© 2023 Jane Doe"))
    corpus["xmp-unzoned.jpg"] = jpeg(xmp=xmp_packet(taken="2023-08-12T18:45:10", rating="3"))
    corpus["xmp-utc.jpg"] = jpeg(xmp=xmp_packet(taken="2022-12-31T23:59:59Z", subjects=["new year"]))
    corpus["xmp-photoshop-date.jpg"] = jpeg(xmp=xmp_packet(photoshop_date="2020-02-29T12:00:00-05:00"))
    corpus["xmp-rejected.jpg"] = jpeg(xmp=xmp_packet(rating="-1", subjects=["blurry"]))
    png = io.BytesIO()
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp_packet(taken="2021-04-05T06:07:08-07:00", rating="4",
                                                  subjects=["scan", "grandma"]).decode())
    picture((50, 40), seed=22).save(png, "PNG", pnginfo=info)
    corpus["xmp.png"] = png.getvalue()
    corpus["xmp.webp"] = encode(picture((80, 60), seed=23), "WEBP",
                                xmp=xmp_packet(taken="2024-01-02T03:04:05+09:00", title="Tokyo"))
    # EXIF time without an offset: XMP's zoned copy lends its zone (Lightroom does this).
    both = Exif(make="Canon", model="EOS R6", taken="2023:08:12 18:45:10").block()
    both[0x013B] = "EXIF Artist"
    both[0x010E] = "EXIF description"
    both[0x4746] = 1
    corpus["exif-and-xmp.jpg"] = jpeg(both, xmp=xmp_packet(
        taken="2023-08-12T18:45:10+02:00", creators=["XMP Creator"], rating="2",
        description="XMP description"))
    # IPTC only (news and stock workflows, scanners): UTF-8 declared, and Latin-1 undeclared.
    iptc = iptc_block([(2, 5, b"Sunrise"), (2, 25, b"sunrise"), (2, 25, "Küste".encode()),
                       (2, 25, b"sea"), (2, 120, "Sunrise over the Baltic — day 1".encode()),
                       (2, 55, b"20180704"), (2, 60, b"053000+0200"), (2, 80, "Jürgen".encode()),
                       (2, 116, b"Agency Ltd")])
    corpus["iptc-utf8.jpg"] = with_app13(jpeg(), iptc)
    latin = iptc_block([(2, 25, b"caf\xe9"), (2, 120, b"Cr\xe8me br\xfbl\xe9e"), (2, 55, b"19991231"),
                        (2, 60, b"235959")], utf8=False)
    corpus["iptc-latin1.jpg"] = with_app13(jpeg(), latin)
    # IPTC and XMP together: keywords are merged, EXIF/IPTC win for text fields.
    corpus["iptc-and-xmp.jpg"] = with_app13(
        jpeg(xmp=xmp_packet(subjects=["sea", "holiday"], description="XMP description",
                            rights="XMP rights")), iptc)
    # IPTCDigest present and not matching: IPTC was edited after XMP, so IPTC wins (MWG).
    corpus["iptc-edited-after-xmp.jpg"] = with_app13(
        jpeg(xmp=xmp_packet(subjects=["stale"], description="stale XMP description")),
        iptc_block([(2, 25, b"fresh"), (2, 120, b"fresh IPTC caption")], digest=b"\x00" * 16))
    # GPS: a time stamp (UTC) gives the instant; a position alone gives the zone.
    stamped = Exif(make="Apple", model="iPhone 12", taken="2021:07:14 22:30:00", gps=PARIS).block()
    _gps_stamp(stamped, "2021:07:14", (20, 29, 58))
    corpus["gps-timestamp.jpg"] = jpeg(stamped)
    corpus["gps-position.jpg"] = jpeg(Exif(make="Apple", model="iPhone 13", taken="2022:01:15 09:00:00",
                                           gps=PARIS).block())
    corpus["gps-at-sea.jpg"] = jpeg(Exif(make="Garmin", model="VIRB", taken="2022:03:01 12:00:00",
                                         gps=MID_PACIFIC).block())
    # A hostile XMP packet: an entity-expansion bomb; the image is still described.
    corpus["xmp-bomb.jpg"] = jpeg(Exif(make="Canon", model="Bomb").block(),
                                  xmp=BILLION_LAUGHS.encode() + xmp_packet(rating="5"))
    try:
        corpus["phone.avif"] = encode(picture((120, 80), seed=24), "AVIF",
                                      Exif(orientation=6, make="Google", model="Pixel 9",
                                           taken="2025:06:07 08:09:10", offset="+01:00"),
                                      xmp=xmp_packet(subjects=["avif"], rating="4"))
        translucent = picture((64, 48), "RGBA", seed=25)
        translucent.putalpha(128)  # libavif drops an alpha plane that is fully opaque
        corpus["plain.avif"] = encode(translucent, "AVIF")
    except (KeyError, OSError):  # a Pillow built without libavif
        pass
    return corpus
