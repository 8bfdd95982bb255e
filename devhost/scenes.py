"""Photo-like images made on the spot, for measuring perceptual hashes.

samples.picture draws the same diagonal pattern in other colours, so any two of its pictures look
alike to a perceptual hash. A scene here is built as photographs are composed: a sky and a ground
split by an uneven horizon, objects with hard edges, natural 1/f texture (the power spectrum of
natural images falls off about as 1/f^2: Field 1987, van der Schaaf & van Hateren 1996) and a
lens vignette, each drawn from the seed, so two seeds give unrelated pictures and one seed always
gives the same.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Zero-mean noise with a 1/f amplitude spectrum, scaled to about -1 .. 1."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    radius = np.sqrt(fx * fx + fy * fy)
    radius[0, 0] = 1.0
    spectrum = (rng.normal(size=radius.shape) + 1j * rng.normal(size=radius.shape)) / radius
    spectrum[0, 0] = 0
    field = np.fft.irfft2(spectrum, s=(height, width))
    return field / (np.abs(field).max() or 1.0)


def scene(size: tuple[int, int] = (1600, 1200), seed: int = 0) -> Image.Image:
    """An RGB picture of ``size`` that looks like a photograph to a perceptual hash."""
    rng = np.random.default_rng(seed)
    width, height = size
    ys = np.linspace(0.0, 1.0, height)[:, None]
    xs = np.linspace(0.0, 1.0, width)[None, :]
    sky_top, sky_low, ground_near, ground_far = (rng.uniform(0, 255, 3) for _ in range(4))
    waves = rng.uniform(0.02, 0.12) * np.sin(xs * rng.uniform(2, 9) + rng.uniform(0, 6.3))
    horizon = rng.uniform(0.25, 0.75) + waves
    sky = sky_top + (sky_low - sky_top) * (ys / np.maximum(horizon, 1e-3))[..., None]
    ground = ground_far + (ground_near - ground_far) * ((ys - horizon) / np.maximum(1 - horizon, 1e-3))[..., None]
    pixels = np.where((ys < horizon)[..., None], sky, ground)
    pixels += rng.uniform(20, 60) * _texture(rng, height, width)[..., None]
    pixels += rng.uniform(5, 25) * np.stack([_texture(rng, height, width) for _ in range(3)], axis=-1)
    picture = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")

    draw = ImageDraw.Draw(picture)
    for _ in range(int(rng.integers(3, 9))):
        x0, y0 = rng.uniform(-0.1, 0.9) * width, rng.uniform(0.0, 0.9) * height
        w, h = rng.uniform(0.05, 0.4) * width, rng.uniform(0.05, 0.5) * height
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = int(rng.integers(0, 3))
        if shape == 0:
            draw.ellipse((x0, y0, x0 + w, y0 + h), fill=colour)
        elif shape == 1:
            draw.rectangle((x0, y0, x0 + w, y0 + h), fill=colour)
        else:
            points = [(x0 + rng.uniform(0, w), y0 + rng.uniform(0, h)) for _ in range(int(rng.integers(3, 7)))]
            draw.polygon(points, fill=colour)
    picture = picture.filter(ImageFilter.GaussianBlur(radius=max(width, height) / 800))

    vignette = 1 - rng.uniform(0.1, 0.4) * ((xs - 0.5) ** 2 + (ys - 0.5) ** 2) * 2
    shaded = np.asarray(picture, dtype=np.float64) * vignette[..., None]
    return Image.fromarray(np.clip(shaded, 0, 255).astype(np.uint8), "RGB")


def jpeg(image: Image.Image, quality: int = 85) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()
