"""Open an image for description: raw photos, Pillow on the allow-list, header-only fallbacks,
and rejection reasons that name the recognised format and its decoder's own message.

The content's first bytes say which format it claims to be (the extension is never trusted).
When Pillow cannot open content it recognises, its ``UnidentifiedImageError`` hides the
plugin's reason; the plugin is then asked directly, so a corrupt PNG is rejected as
"corrupt PNG: broken PNG file (bad header checksum in b'sRGB')", not as an unknown format.
Valid layouts that Pillow has no pixel decoder for are described from their headers
(``shared/header_image.py``); a PNG whose only fault is a bad CRC in an ancillary chunk is
read without that chunk, as libpng does (it warns and discards it).
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from typing import IO, Any

from PIL import (
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    UnidentifiedImageError,
    WebPImagePlugin,
    features,
)

from shared import raw_formats
from shared.errors import RejectedInput
from shared.header_image import (
    BI_ALPHABITFIELDS,
    BI_BITFIELDS,
    NotBmp,
    describe_bmp,
    describe_tiff,
    read_bmp_header,
)
from shared.raw_containers import (
    CRW_SIGNATURES,
    MRW_MAGIC,
    RAF_MAGIC,
    X3F_MAGIC,
    NotRaf,
    describe_cr3,
    describe_crw,
    describe_mrw,
    describe_raf,
    describe_x3f,
)
from shared.tiff_ifd import TAG_COMPRESSION, TAG_PHOTOMETRIC, TAG_SAMPLE_FORMAT, NotTiff, TiffReader

try:  # HEIC/HEIF (phones upload them) through the maintained pillow-heif plugin.
    from pillow_heif import register_heif_opener

    register_heif_opener()
    HEIF_FORMATS: tuple[str, ...] = ("HEIF",)
except ImportError:  # pragma: no cover - the plugin is in requirements.txt
    HEIF_FORMATS = ()

# Pillow 11.3+ wheels carry libavif; a build without it simply does not list AVIF.
AVIF_FORMATS: tuple[str, ...] = ("AVIF",) if features.check("avif") else ()
PILLOW_FORMATS: tuple[str, ...] = (
    "JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", *HEIF_FORMATS, *AVIF_FORMATS)
ALLOWED_FORMATS: tuple[str, ...] = (*PILLOW_FORMATS, *raw_formats.RAW_FORMATS)

# Errors Pillow's plugins raise on broken headers (libavif raises RuntimeError).
DECODER_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError,
                  KeyError, TypeError, RuntimeError)
_PLUGINS: dict[str, Any] = {
    "JPEG": JpegImagePlugin.JpegImageFile, "PNG": PngImagePlugin.PngImageFile,
    "GIF": GifImagePlugin.GifImageFile, "TIFF": TiffImagePlugin.TiffImageFile,
    "BMP": BmpImagePlugin.BmpImageFile, "WEBP": WebPImagePlugin.WebPImageFile,
}
# Raws in their makers' own containers: each reader takes the file and its size.
CONTAINER_READERS: dict[str, Any] = {
    "RAF": lambda fp, size: describe_raf(fp), "MRW": lambda fp, size: describe_mrw(fp),
    "CR3": describe_cr3, "CRW": describe_crw, "X3F": describe_x3f,
}
TIFF_MAGICS = {0x2A, 0x2B, 0x55, 0x4F52, 0x5352}
UNDECODABLE_TIFF_COMPRESSION = {34676, 34677}  # SGI LogLuv 32 / 24
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PNG_HEAD = 8 * 1024 * 1024


def sniff(head: bytes) -> str | None:
    """The format the first bytes claim, or None."""
    if head[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if head[:8] == PNG_SIGNATURE:
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:2] in (b"II", b"MM") and head[6:14] in CRW_SIGNATURES:
        return "CRW"
    if head[:4] == X3F_MAGIC:
        return "X3F"
    if head[:2] in (b"II", b"MM") and len(head) >= 4:
        if struct.unpack_from("<H" if head[:2] == b"II" else ">H", head, 2)[0] in TIFF_MAGICS:
            return "TIFF"
    if head[:2] == b"BM":
        return "BMP"
    if head[:8] == RAF_MAGIC:
        return "RAF"
    if head[:4] == MRW_MAGIC:
        return "MRW"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"crx ":
            return "CR3"
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"):
            return "HEIF"
    return None


def _pillow_open(fp: IO[bytes]) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Image.open(fp, formats=list(PILLOW_FORMATS))


def _plugin_reason(kind: str, fp: IO[bytes]) -> str:
    """What the recognised format's own plugin says about the content."""
    plugin = _PLUGINS.get(kind) or Image.OPEN.get(kind, (None, None))[0]  # HEIF, AVIF: as registered
    if plugin is None:
        return "the decoder does not recognise its header"
    fp.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plugin(fp).close()
    except DECODER_ERRORS as exc:
        return f"{type(exc).__name__}: {exc}"
    return "the decoder does not recognise its header"


def _png_without_bad_ancillary(fp: IO[bytes], size: int) -> tuple[bytes, list[str]] | None:
    """The PNG's head up to its first IDAT, ancillary chunks with a bad CRC dropped (libpng's
    default for them), or None when a critical chunk is broken or the head is not readable."""
    fp.seek(0)
    if fp.read(8) != PNG_SIGNATURE:
        return None
    out, dropped, pos = [PNG_SIGNATURE], [], 8
    while pos + 12 <= size and pos < MAX_PNG_HEAD:
        fp.seek(pos)
        header = fp.read(8)
        if len(header) < 8:
            return None
        length, kind = struct.unpack(">I4s", header)
        if kind == b"IDAT":
            out.append(header)
            return b"".join(out), dropped
        if length > MAX_PNG_HEAD:
            return None
        body = fp.read(length + 4)
        if len(body) < length + 4:
            return None
        crc_ok = zlib.crc32(kind + body[:length]) == struct.unpack(">I", body[length:])[0]
        if crc_ok:
            out.append(header + body)
        elif kind[0] & 0x20:  # lower-case first letter: ancillary
            dropped.append(kind.decode("latin-1"))
        else:
            return None
        pos += 12 + length
    return None


def _tiff_without_decoder(fp: IO[bytes]) -> bool:
    """True for valid TIFF layouts Pillow refuses for want of a pixel decoder."""
    try:
        reader = TiffReader(fp)
        chain = reader.chain()
    except NotTiff:
        return False
    if not chain:
        return False
    ifd0 = chain[0]
    return (reader.bigtiff or ifd0.number(TAG_COMPRESSION) in UNDECODABLE_TIFF_COMPRESSION
            or ifd0.number(TAG_SAMPLE_FORMAT) == 3 or ifd0.number(TAG_PHOTOMETRIC) in (32844, 32845))


def open_image(fp: IO[bytes], size: int) -> tuple[Any, list[str]]:
    """An opened image (Pillow's, or a HeaderImage) and warnings to record; raises RejectedInput."""
    fp.seek(0)
    kind = sniff(fp.read(32))
    fp.seek(0)
    if kind == "TIFF":
        try:
            raw = raw_formats.describe_raw(fp)
        except NotTiff:
            raw = None
        except (ValueError, struct.error) as exc:
            raise RejectedInput(f"corrupt raw photo: {exc}") from None
        if raw is not None:
            return raw, []
        fp.seek(0)
    elif kind in CONTAINER_READERS:
        try:
            return CONTAINER_READERS[kind](fp, size), []
        except (NotRaf, NotTiff, struct.error) as exc:
            raise RejectedInput(f"corrupt {kind}: {exc}") from None
    try:
        return _pillow_open(fp), []
    except UnidentifiedImageError:
        if kind is None:
            raise RejectedInput(
                "not a supported image: the content is none of " + ", ".join(ALLOWED_FORMATS)
                + " (the file extension is not trusted)") from None
        reason = _plugin_reason(kind, fp)
    except DECODER_ERRORS as exc:
        reason = f"{type(exc).__name__}: {exc}"
    return _fallback(kind, fp, size, reason)


def _fallback(kind: str | None, fp: IO[bytes], size: int, reason: str) -> tuple[Any, list[str]]:
    """A header-only description where the layout is valid, else the decoder's reason."""
    if kind == "BMP":
        try:
            header = read_bmp_header(fp, size)
        except NotBmp as exc:
            header, reason = None, f"{reason}; {exc}"
        if header is not None and header.compression in (BI_BITFIELDS, BI_ALPHABITFIELDS):
            return describe_bmp(header), []
    elif kind == "TIFF" and _tiff_without_decoder(fp):
        try:
            return describe_tiff(fp), []
        except NotTiff as exc:
            reason = f"{reason}; {exc}"
    elif kind == "PNG" and "checksum" in reason:
        fixed = _png_without_bad_ancillary(fp, size)
        if fixed is not None and fixed[1]:
            head, dropped = fixed
            try:
                im = _pillow_open(io.BytesIO(head))
            except (UnidentifiedImageError, *DECODER_ERRORS) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            else:
                return im, [f"png: bad CRC in ancillary chunk {name!r}: chunk ignored, as libpng does"
                            for name in dropped]
    raise RejectedInput(f"corrupt {kind or 'image'}: {reason}"[:500])
