"""Images described from their headers alone, where Pillow has no decoder for the pixels.

A description needs the size, the sample layout and the metadata, none of which needs a
pixel decoder. Pillow refuses to open images whose pixel layout it cannot decode (BMP
bit-field layouts beyond 5-6-5/8-8-8, big-endian BigTIFF, LogLuv and floating-point TIFF)
and takes raw photos for TIFFs described by their thumbnail. ``HeaderImage`` carries what
the header says through the same attributes extraction reads from a Pillow image.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import IO, Any

from shared.tiff_ifd import (
    TAG_BITS,
    TAG_EXTRA_SAMPLES,
    TAG_HEIGHT,
    TAG_ICC,
    TAG_PHOTOMETRIC,
    TAG_SAMPLE_FORMAT,
    TAG_SAMPLES,
    TAG_WIDTH,
    TAG_XMP,
    Directory,
    ExifView,
    NotTiff,
    TiffReader,
)


@dataclass
class HeaderImage:
    """The slice of Pillow's ``Image`` interface that extraction uses."""

    format: str
    size: tuple[int, int]
    mode: str | None
    bit_depth: int | None = None
    has_alpha: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    exif: Any = None  # an ExifView, or None
    dpi: tuple[float | None, float | None] | None = None
    display_size: tuple[int, int] | None = None  # a raw's default crop
    n_frames: int = 1
    is_animated: bool = False

    def getexif(self) -> Any:
        return self.exif if self.exif is not None else {}

    def close(self) -> None:
        pass


PHOTOMETRIC_MODES = {0: "L", 1: "L", 2: "RGB", 3: "P", 4: "1", 5: "CMYK", 6: "YCbCr", 8: "LAB",
                     32803: "CFA", 32844: "LogL", 32845: "LogLuv", 34892: "LinearRaw"}


def tiff_mode(directory: Directory) -> tuple[str | None, bool]:
    """A mode name for the directory's samples, and whether it has an alpha channel."""
    photometric = directory.number(TAG_PHOTOMETRIC)
    mode = PHOTOMETRIC_MODES.get(photometric) if photometric is not None else None
    if directory.number(TAG_SAMPLE_FORMAT) == 3 and mode in ("L", "RGB"):
        mode = "F" if mode == "L" else "RGBF"
    extra = directory.get(TAG_EXTRA_SAMPLES)
    alpha = extra is not None and (extra in (1, 2) or (isinstance(extra, tuple) and bool({1, 2} & set(extra))))
    if alpha and mode in ("L", "RGB"):
        mode += "A"
    return mode, alpha


def tiff_metadata_info(directory: Directory) -> dict[str, Any]:
    info: dict[str, Any] = {}
    xmp, icc = directory.get(TAG_XMP), directory.get(TAG_ICC)
    if isinstance(xmp, bytes):
        info["xmp"] = xmp
    elif isinstance(xmp, tuple):
        info["xmp"] = bytes(xmp)
    if isinstance(icc, bytes):
        info["icc_profile"] = icc
    return info


def describe_tiff(fp: IO[bytes], fmt: str = "TIFF") -> HeaderImage:
    """A TIFF from IFD0 alone (size, samples, EXIF), for layouts Pillow cannot decode."""
    reader = TiffReader(fp)
    chain = reader.chain()
    if not chain:
        raise NotTiff("no image directory")
    ifd0 = chain[0]
    width, height = ifd0.number(TAG_WIDTH), ifd0.number(TAG_HEIGHT)
    if not width or not height:
        raise NotTiff("IFD0 has no ImageWidth/ImageLength")
    if not (set(ifd0.entries) & {0x0111, 0x0144}):
        raise NotTiff("IFD0 has no strip or tile offsets")
    mode, alpha = tiff_mode(ifd0)
    bits = ifd0.number(TAG_BITS) or (1 if ifd0.number(TAG_SAMPLES) else None)
    return HeaderImage(format=fmt, size=(width, height), mode=mode, bit_depth=bits, has_alpha=alpha,
                       info=tiff_metadata_info(ifd0), exif=ExifView(reader, ifd0),
                       n_frames=len(chain))


# ---- BMP --------------------------------------------------------------------------------------

BI_RGB, BI_RLE8, BI_RLE4, BI_BITFIELDS, BI_ALPHABITFIELDS = 0, 1, 2, 3, 6
_BMP_DEPTHS = {1, 2, 4, 8, 16, 24, 32, 64}


class NotBmp(ValueError):
    """Not a BMP header this reader accepts; the message says why."""


@dataclass(frozen=True)
class BmpHeader:
    width: int
    height: int
    bits_per_pixel: int
    compression: int
    masks: tuple[int, ...]  # red, green, blue, alpha (0 when absent)
    pixels_per_metre: tuple[int, int]

    @property
    def bit_depth(self) -> int:
        """Bits per sample: the palette index's bits, a bit-field layout's widest channel."""
        if self.bits_per_pixel <= 8:
            return self.bits_per_pixel
        if any(self.masks):
            return max(bin(m).count("1") for m in self.masks)
        return {16: 5, 24: 8, 32: 8, 64: 16}[self.bits_per_pixel]

    @property
    def has_alpha(self) -> bool:
        return len(self.masks) > 3 and self.masks[3] != 0


def _contiguous(mask: int) -> bool:
    shifted = mask >> ((mask & -mask).bit_length() - 1) if mask else 0
    return shifted & (shifted + 1) == 0


def read_bmp_header(fp: IO[bytes], size: int) -> BmpHeader:
    """The BITMAPFILEHEADER + DIB header (core, info, v2-v5), validated as a decoder would."""
    fp.seek(0)
    head = fp.read(14 + 124 + 16)
    if len(head) < 26 or head[:2] != b"BM":
        raise NotBmp("no BM signature")
    data_offset, dib = struct.unpack_from("<II", head, 10)
    if dib == 12:
        width, height, _planes, bpp = struct.unpack_from("<HHHH", head, 18)
        compression, ppm, masks = BI_RGB, (0, 0), ()
    elif dib in (40, 52, 56, 64, 108, 124) and len(head) >= 14 + dib:
        width, height, _planes, bpp, compression = struct.unpack_from("<iiHHI", head, 18)
        ppm = struct.unpack_from("<ii", head, 38)
        masks = ()
        if compression in (BI_BITFIELDS, BI_ALPHABITFIELDS):
            n = 4 if (compression == BI_ALPHABITFIELDS or dib >= 56) else 3
            if len(head) < 54 + 4 * n:  # after a 40-byte header, or inside a v2-v5 one
                raise NotBmp("bit-field masks cut short")
            masks = struct.unpack_from("<" + "I" * n, head, 54)
    else:
        raise NotBmp(f"unsupported BMP header size {dib}")
    height = abs(height)
    if width <= 0 or height <= 0:
        raise NotBmp(f"BMP header gives an empty size {width}x{height}")
    if bpp not in _BMP_DEPTHS:
        raise NotBmp(f"unsupported BMP bit count {bpp}")
    if compression not in (BI_RGB, BI_RLE8, BI_RLE4, BI_BITFIELDS, BI_ALPHABITFIELDS):
        raise NotBmp(f"unsupported BMP compression {compression}")
    if compression in (BI_BITFIELDS, BI_ALPHABITFIELDS):
        if bpp not in (16, 32) or not any(masks[:3]):
            raise NotBmp(f"bit-field layout with {bpp} bits per pixel and masks {masks}")
        limit = (1 << bpp) - 1
        if any(m & ~limit or not _contiguous(m) for m in masks) or any(
                a & b for i, a in enumerate(masks) for b in masks[i + 1:]):
            raise NotBmp(f"bit-field masks {[hex(m) for m in masks]} overlap or are not contiguous")
    if not 14 + dib <= data_offset < size:
        raise NotBmp(f"pixel data offset {data_offset} outside the file of {size} bytes")
    return BmpHeader(width, height, bpp, compression, tuple(masks), (max(ppm[0], 0), max(ppm[1], 0)))


def describe_bmp(header: BmpHeader) -> HeaderImage:
    mode = "P" if header.bits_per_pixel <= 8 else ("RGBA" if header.has_alpha else "RGB")
    dpi = tuple(round(p * 0.0254, 2) if p else None for p in header.pixels_per_metre)
    return HeaderImage(format="BMP", size=(header.width, header.height), mode=mode,
                       bit_depth=header.bit_depth, has_alpha=header.has_alpha, dpi=dpi)  # type: ignore[arg-type]
