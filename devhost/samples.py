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
        "holiday/eiffel.jpg": encode(picture((640, 480), seed=1), "JPEG", camera, quality=85),
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
