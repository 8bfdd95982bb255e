"""Hashes of an image: a ThumbHash placeholder, a 64-bit perceptual hash, and content digests.

ThumbHash is Evan Wallace's placeholder format (github.com/evanw/thumbhash, MIT): a DCT of the
image in an LPQA colour space, quantised to at most 25 bytes. No maintained Python package of it
is installed here (the PyPI ports are one-author copies), so it is written here after the
reference encoder (``rgbaToThumbHash`` in the npm package ``thumbhash`` 0.1.1, by the format's
author) operation for operation: float64, sums left to right, JavaScript's rounding (half up) and
V8's cosine (shared.js_math), so it gives the reference's bytes exactly; checked against vectors
that reference produced (tests/data/thumbhash/vectors.json, made by make_vectors.py there).

The perceptual hash is the DCT hash (pHash) as the ImageHash library computes it
(``imagehash.phash``: grey, 32x32 Lanczos, 2-D DCT-II, the 8x8 lowest frequencies against their
median, bits row by row, first bit most significant). ImageHash is not installed in this
environment, so the same steps run here on numpy and scipy; a hash from either agrees for the
same resized pixels, so moving to the library later keeps stored hashes comparable.

Digests are computed incrementally over the chunks a reader already holds, so hashing never
reads the blob a second time.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import math
import re

import numpy as np
from PIL import Image
from scipy.fft import dct

from shared import js_math
from shared.hash_bands import to_signed

THUMB_MAX = 100  # the reference encoder refuses larger input: "slow with no benefit"
PHASH_SIZE = 8
PHASH_SCALE = 4  # the image is resized to PHASH_SIZE * PHASH_SCALE pixels a side
_HEX32 = re.compile(r"[0-9a-f]{32}")


def _js_round(value: float) -> int:
    """JavaScript's Math.round: halves go up (Python's round goes to even)."""
    return math.floor(value + 0.5)


def _converted(image: Image.Image, mode: str) -> Image.Image:
    try:
        return image.convert(mode)
    except ValueError:
        raise ValueError(f"cannot hash an image in mode {image.mode}: convert it to RGB or RGBA first") from None


def _rgba_pixels(image: Image.Image) -> np.ndarray:
    """The image as straight (not premultiplied) RGBA floats, shrunk to fit 100x100 if larger."""
    rgba = _converted(image, "RGBA")
    if rgba.width > THUMB_MAX or rgba.height > THUMB_MAX:
        scale = THUMB_MAX / max(rgba.width, rgba.height)
        size = (max(1, round(rgba.width * scale)), max(1, round(rgba.height * scale)))
        rgba = rgba.resize(size, Image.Resampling.BOX)
    return np.asarray(rgba, dtype=np.float64)


def thumb_hash_from_rgba(width: int, height: int, rgba: bytes) -> bytes:
    """The reference encoder on raw RGBA bytes (row by row, ``width * height * 4`` of them)."""
    if not (0 < width <= THUMB_MAX and 0 < height <= THUMB_MAX):
        raise ValueError(f"{width}x{height} does not fit in {THUMB_MAX}x{THUMB_MAX}")
    if len(rgba) != width * height * 4:
        raise ValueError(f"{len(rgba)} bytes of RGBA for {width}x{height} pixels (needs {width * height * 4})")
    pixels = np.frombuffer(rgba, dtype=np.uint8).reshape(height, width, 4).astype(np.float64)
    return _encode(pixels)


def thumb_hash_bytes(image: Image.Image) -> bytes:
    """The ThumbHash of an image as displayed (apply orientation and colour conversion first)."""
    return _encode(_rgba_pixels(image))


def thumb_hash(image: Image.Image) -> str:
    """The ThumbHash in base64, as the ThumbHash column holds it (at most 36 characters)."""
    return base64.b64encode(thumb_hash_bytes(image)).decode("ascii")


@functools.lru_cache(maxsize=1024)
def _cosines(size: int, frequency: int) -> np.ndarray:
    """cos(pi / size * frequency * (i + 0.5)) for each pixel i, with JavaScript's cosine."""
    return np.array([js_math.cos(math.pi / size * frequency * (i + 0.5)) for i in range(size)])


def _sequential_sum(values: np.ndarray) -> float:
    """Left-to-right summation, as the reference's loops add (numpy's sum pairs terms, which
    differs in the last bits; those bits decide the nearly-zero terms of a flat image)."""
    flat = values.ravel()
    return float(np.cumsum(flat)[-1]) if flat.size else 0.0


def _encode(pixels: np.ndarray) -> bytes:
    """The reference encoder's arithmetic, operation for operation, in float64."""
    h, w = pixels.shape[:2]
    alpha = pixels[..., 3] / 255
    total_alpha = _sequential_sum(alpha)
    average = [_sequential_sum(alpha / 255 * pixels[..., c]) for c in range(3)]
    if total_alpha:
        average = [v / total_alpha for v in average]
    has_alpha = total_alpha < w * h
    l_limit = 5 if has_alpha else 7  # fewer luminance bits when alpha takes some
    lx = max(1, _js_round(l_limit * w / max(w, h)))
    ly = max(1, _js_round(l_limit * h / max(w, h)))

    # Composite atop the average colour, then LPQA: luminance, yellow-blue, red-green, alpha.
    r, g, b = (average[c] * (1 - alpha) + alpha / 255 * pixels[..., c] for c in range(3))
    channels = {"l": (r + g + b) / 3, "p": (r + g) / 2 - b, "q": r - g, "a": alpha}

    def encode_channel(channel: np.ndarray, nx: int, ny: int) -> tuple[float, list[float], float]:
        dc, ac, scale = 0.0, [], 0.0
        for cy in range(ny):
            cx = 0
            while cx * ny < nx * (ny - cy):
                f = _sequential_sum(channel * _cosines(w, cx)[None, :] * _cosines(h, cy)[:, None]) / (w * h)
                if cx or cy:
                    ac.append(f)
                    scale = max(scale, abs(f))
                else:
                    dc = f
                cx += 1
        if scale:
            ac = [0.5 + 0.5 / scale * f for f in ac]
        return dc, ac, scale

    l_dc, l_ac, l_scale = encode_channel(channels["l"], max(3, lx), max(3, ly))
    p_dc, p_ac, p_scale = encode_channel(channels["p"], 3, 3)
    q_dc, q_ac, q_scale = encode_channel(channels["q"], 3, 3)
    a_dc, a_ac, a_scale = encode_channel(channels["a"], 5, 5) if has_alpha else (1.0, [], 1.0)

    landscape = w > h
    header24 = (_js_round(63 * l_dc) | (_js_round(31.5 + 31.5 * p_dc) << 6)
                | (_js_round(31.5 + 31.5 * q_dc) << 12) | (_js_round(31 * l_scale) << 18) | (int(has_alpha) << 23))
    header16 = ((ly if landscape else lx) | (_js_round(63 * p_scale) << 3) | (_js_round(63 * q_scale) << 9)
                | (int(landscape) << 15))
    out = [header24 & 255, (header24 >> 8) & 255, header24 >> 16, header16 & 255, header16 >> 8]
    if has_alpha:
        out.append(_js_round(15 * a_dc) | (_js_round(15 * a_scale) << 4))
    factors = [*l_ac, *p_ac, *q_ac, *(a_ac if has_alpha else [])]
    nibbles = [_js_round(15 * f) for f in factors]
    for i in range(0, len(nibbles), 2):
        out.append(nibbles[i] | ((nibbles[i + 1] << 4) if i + 1 < len(nibbles) else 0))
    return bytes(out)


def perceptual_hash(image: Image.Image) -> int:
    """The 64-bit DCT hash as a signed integer (what the PerceptualHash column holds).

    Transparent pixels are composited on white first, so an image with alpha hashes as it is
    seen on a page; pass the image as displayed (orientation applied)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = _converted(image, "RGBA")
        flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat.alpha_composite(rgba)
        image = flat
    side = PHASH_SIZE * PHASH_SCALE
    grey = _converted(image, "L").resize((side, side), Image.Resampling.LANCZOS)
    pixels = np.asarray(grey, dtype=np.float64)
    low = dct(dct(pixels, axis=0), axis=1)[:PHASH_SIZE, :PHASH_SIZE]
    bits = (low > np.median(low)).flatten()
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return to_signed(value)


class ContentDigests:
    """MD5 and SHA-256 of a blob, fed the chunks as they are read."""

    def __init__(self) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha256 = hashlib.sha256()
        self._size = 0

    def update(self, chunk: bytes) -> None:
        self._md5.update(chunk)
        self._sha256.update(chunk)
        self._size += len(chunk)

    @property
    def md5_hex(self) -> str:
        return self._md5.hexdigest()

    @property
    def sha256_hex(self) -> str:
        return self._sha256.hexdigest()

    @property
    def size(self) -> int:
        return self._size


def md5_hex_from_storage(value: bytes | bytearray | str | None) -> str | None:
    """A blob's stored Content-MD5 as lower-case hex, or None when storage holds none.

    azure-storage-blob gives ``ContentSettings.content_md5`` as the 16 raw bytes (a bytearray);
    the REST API's Content-MD5 / x-ms-blob-content-md5 header is their base64. Anything else
    (a value that is neither) is refused, naming what it was."""
    if value is None or len(value) == 0:
        return None
    if isinstance(value, (bytes, bytearray)):
        if len(value) != 16:
            raise ValueError(f"Content-MD5 is 16 bytes, not {len(value)}")
        return bytes(value).hex()
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error:
        raw = b""
    if len(raw) != 16:
        raise ValueError(f"Content-MD5 {value!r} is not the base64 of 16 bytes")
    return raw.hex()


def is_md5_hex(value: str | None) -> bool:
    return value is not None and _HEX32.fullmatch(value) is not None
