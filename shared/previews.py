"""Render an image's previews: small sRGB WebP/JPEG copies, upright, first frame, no metadata.

Cost is bounded before any pixel is decoded: the pixel count is checked against the
decompression-bomb limit (``MaxImagePixels``) from the header, a JPEG is decoded at reduced
scale (libjpeg's DCT scaling through ``Image.draft``), every image is shrunk by an integer factor
(``Image.reduce``, a box filter over whole blocks) to about twice the largest preview before the
Lanczos resampling, and an embedded preview (the EXIF thumbnail, a raw photo's JPEG) is used
instead of the full picture where it is large enough (a HEIC's thumbnail item too).

Colour goes to sRGB through the embedded ICC profile with LittleCMS (``PIL.ImageCms``), so a
CMYK, Adobe RGB or Display P3 picture looks as its author saw it; a preview carries no EXIF, XMP,
ICC or GPS: it is encoded from a fresh image whose ``info`` is empty.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field

from PIL import Image, ImageCms

from shared.image_open import DECODER_ERRORS, PILLOW_FORMATS, sniff
from shared.raw_previews import embedded_raw_picture, exif_thumbnail, heif_thumbnail

# What each preview format is saved as: Pillow format, extension, content type, options.
OUTPUT_FORMATS: dict[str, tuple[str, str, str]] = {
    "webp": ("WEBP", "webp", "image/webp"),
    "jpeg": ("JPEG", "jpg", "image/jpeg"),
}
# Integer pre-shrink (Image.reduce) stops at this multiple of the largest preview, so the final
# Lanczos pass still has enough pixels to resample from (Pillow's own reducing_gap idea).
REDUCING_GAP = 2
_SRGB = ImageCms.createProfile("sRGB")
# Pillow's own bomb check (warn at 89 MP, fail at 179 MP) gives way to MaxImagePixels, checked
# against the header before any pixel is decoded, as extraction does (shared/extraction.py).
Image.MAX_IMAGE_PIXELS = None
# EXIF orientation -> the transpositions that make the picture upright (EXIF 2.32, tag 0x0112).
_UPRIGHT: dict[int, tuple[Image.Transpose, ...]] = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT,),
    3: (Image.Transpose.ROTATE_180,),
    4: (Image.Transpose.FLIP_TOP_BOTTOM,),
    5: (Image.Transpose.TRANSPOSE,),
    6: (Image.Transpose.ROTATE_270,),
    7: (Image.Transpose.TRANSVERSE,),
    8: (Image.Transpose.ROTATE_90,),
}
# Modes without a resampler or a WebP/JPEG encoder, and what they become first.
_WORKING_MODE = {"1": "L", "La": "LA",
                 "RGBa": "RGBA", "RGBX": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB"}


class NoPreview(Exception):
    """The picture cannot be previewed (its pixels do not decode, it is too large, a raw photo
    without an embedded preview): not transient; the row is written without previews."""


@dataclass(frozen=True)
class PreviewOptions:
    sizes: tuple[int, ...] = (256, 1024)
    output: str = "webp"
    quality: int = 80
    max_pixels: int = 200_000_000


@dataclass
class Preview:
    size: int  # the long edge asked for
    width: int
    height: int
    data: bytes
    content_type: str
    extension: str
    source: str  # "picture", "exif-thumbnail" or "embedded-picture" (a raw photo's)


@dataclass
class Rendering:
    previews: list[Preview]
    # The smallest preview's pixels (sRGB, upright, RGB/RGBA/L): the placeholder and
    # perceptual hash are computed from it rather than from a second decode.
    small: Image.Image
    warnings: list[str] = field(default_factory=list)


def render_previews(data: bytes, options: PreviewOptions) -> Rendering:
    """Every preview of ``options.sizes`` for the image in ``data``; raises NoPreview."""
    warnings_out: list[str] = []
    source, orientation, im = "picture", None, None
    kind = sniff(data[:32])
    if kind == "HEIF" and (thumbnail := heif_thumbnail(data, max(options.sizes))) is not None:
        im, orientation, source = thumbnail, 1, "embedded-picture"  # the full picture is not decoded
    elif kind in ("TIFF", "RAF", "CR3", "MRW", "X3F"):
        try:
            embedded = embedded_raw_picture(data)
        except ValueError as exc:
            raise NoPreview(f"no preview of the raw photo: {exc}") from None
        if embedded is not None:
            (im, orientation), source = embedded, "embedded-picture"
    im = im or _open(data)
    try:
        _check_pixels(im, options.max_pixels)
        if orientation is None:
            orientation = _orientation(im)
        largest = max(options.sizes)
        small_sizes = {s for s in options.sizes if s < largest}
        previews: list[Preview] = []
        thumb = exif_thumbnail(im.info.get("exif")) if im.format == "JPEG" and small_sizes else None
        working = _decode(im, largest, warnings_out)
        working = _upright(working, orientation)
        for size in sorted(options.sizes, reverse=True):
            working = _fit(working, size)  # each size from the one above it: one resize per size
            base, how = working, source
            if thumb is not None and size in small_sizes:
                usable = _thumbnail_base(thumb, size, working.size, orientation, warnings_out)
                if usable is not None:
                    base, how = _fit(usable, size), "exif-thumbnail"
            previews.append(_encode(base, size, how, options))
        small = working.copy() if working is im else working  # ``im`` is closed below
    finally:
        im.close()
    return Rendering(previews=sorted(previews, key=lambda p: p.size), small=small, warnings=warnings_out)


def _open(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Image.open(io.BytesIO(data), formats=list(PILLOW_FORMATS))
    except DECODER_ERRORS as exc:
        raise NoPreview(f"the picture cannot be opened for a preview: {type(exc).__name__}: {exc}") from None


def _check_pixels(im: Image.Image, max_pixels: int) -> None:
    width, height = im.size
    if width <= 0 or height <= 0:
        raise NoPreview(f"the picture claims an empty size {width}x{height}")
    if width * height > max_pixels:
        raise NoPreview(f"decompression bomb: {width}x{height} = {width * height:,} pixels is over "
                        f"MaxImagePixels={max_pixels:,}; no preview is decoded")


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(0x0112, 1)
    except DECODER_ERRORS:
        return 1
    return value if isinstance(value, int) and value in range(1, 9) else 1


def _decode(im: Image.Image, largest: int, notes: list[str]) -> Image.Image:
    """The first frame, decoded at the smallest scale that still covers ``largest``, in sRGB."""
    scale = largest / max(im.size)
    if im.format == "JPEG" and scale < 1:
        wanted = (max(1, int(im.width * scale + 1)), max(1, int(im.height * scale + 1)))
        im.draft("RGB" if im.mode == "RGB" else None, wanted)
    icc = im.info.get("icc_profile")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im.seek(0)
            im.load()
            frame = im.convert("RGBA" if _has_alpha(im) else "RGB") if im.mode in ("P", "PA") else im
            frame = frame.convert(_WORKING_MODE[frame.mode]) if frame.mode in _WORKING_MODE else frame
            frame = _eight_bit(frame)
    except DECODER_ERRORS as exc:
        raise NoPreview(f"the pixels cannot be decoded: {type(exc).__name__}: {exc}") from None
    factor = int(max(frame.size) / (largest * REDUCING_GAP))
    if factor >= 2:
        frame = frame.reduce(factor)
    return _to_srgb(frame, icc, notes)


def _eight_bit(im: Image.Image) -> Image.Image:
    """16-bit (and 32-bit integer) grey scaled to 8 bits: Pillow's own conversion clips at 255."""
    if not im.mode.startswith(("I", "F")):
        return im
    wide = im.convert("I") if im.mode != "F" else im
    top = 65535 if im.mode.startswith("I;16") or (wide.getextrema()[1] or 0) > 255 else 255
    return wide.point(lambda v: v * (255 / top)).convert("L")


def _has_alpha(im: Image.Image) -> bool:
    return im.mode == "PA" or "transparency" in im.info


def _to_srgb(im: Image.Image, icc: bytes | None, notes: list[str]) -> Image.Image:
    """Convert through the embedded profile (alpha set aside: LittleCMS converts colour only)."""
    alpha = im.getchannel("A") if im.mode in ("RGBA", "LA") else None
    colour = im.convert({"RGBA": "RGB", "LA": "L"}[im.mode]) if alpha is not None else im
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            out_mode = "L" if colour.mode == "L" and source.profile.xcolor_space.strip() == "GRAY" else "RGB"
            colour = ImageCms.profileToProfile(colour, source, _SRGB, outputMode=out_mode,
                                               renderingIntent=ImageCms.Intent.PERCEPTUAL)
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as exc:
            notes.append(f"preview: the embedded ICC profile is unusable ({exc}); colours taken as sRGB")
    if colour.mode not in ("RGB", "L"):
        colour = colour.convert("RGB")  # CMYK without a profile: Pillow's naive conversion
    if alpha is None:
        return colour
    if colour.mode == "L":
        return Image.merge("LA", (colour, alpha)).convert("RGBA")
    return Image.merge("RGBA", (*colour.split(), alpha))


def _upright(im: Image.Image, orientation: int) -> Image.Image:
    for step in _UPRIGHT.get(orientation, ()):
        im = im.transpose(step)
    return im


def _fit(im: Image.Image, size: int) -> Image.Image:
    """The picture with its long edge at ``size`` (never enlarged)."""
    width, height = im.size
    if max(width, height) <= size:
        return im
    scale = size / max(width, height)
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    return im.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _thumbnail_base(thumb: bytes, size: int, picture_size: tuple[int, int], orientation: int,
                    notes: list[str]) -> Image.Image | None:
    """The EXIF thumbnail, upright and in sRGB, when it covers ``size`` with the picture's aspect."""
    try:
        im = Image.open(io.BytesIO(thumb), formats=["JPEG"])
        if max(im.size) < size:
            return None
        im.load()
        upright = _upright(_to_srgb(im.convert("RGB"), None, notes), orientation)
    except DECODER_ERRORS:
        return None
    (tw, th), (pw, ph) = upright.size, picture_size
    if abs(tw / th - pw / ph) > 0.01 * (pw / ph):
        return None  # letterboxed or cropped: not the same picture's shape
    return upright


def _encode(im: Image.Image, size: int, source: str, options: PreviewOptions) -> Preview:
    pil_format, extension, content_type = OUTPUT_FORMATS[options.output]
    if pil_format == "JPEG" and im.mode in ("RGBA", "LA"):
        flat = Image.new("RGB", im.size, (255, 255, 255))
        flat.paste(im, mask=im.getchannel("A"))
        im = flat
    clean = Image.frombytes(im.mode, im.size, im.tobytes())  # nothing of the source's info travels
    out = io.BytesIO()
    if pil_format == "WEBP":
        clean.save(out, "WEBP", quality=options.quality, method=4, exif=b"", icc_profile=None, xmp=b"")
    else:
        clean.save(out, "JPEG", quality=options.quality, exif=b"", icc_profile=None)
    return Preview(size, clean.width, clean.height, out.getvalue(), content_type, extension, source)
