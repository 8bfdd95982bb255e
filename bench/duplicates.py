"""Perceptual-hash distances that choose the near-duplicate threshold, and the hashes' cost.

    .venv/bin/python -m bench.duplicates [SCENES]     (writes bench/results/duplicates.txt)

For SCENES photo-like pictures (devhost.scenes, 1024x768, default 100): the Hamming distance
between each picture's hash and its copy's, for each kind of copy, and between every pair of
unrelated pictures; then how many of each fall within shared.duplicates.NEAR_DISTANCE, and the
time a pHash and a ThumbHash take.
"""

from __future__ import annotations

import io
import itertools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from devhost.scenes import scene
from shared.duplicates import NEAR_DISTANCE, RADIUS
from shared.hash_bands import guaranteed, hamming
from shared.image_hashes import perceptual_hash, thumb_hash

RESULTS = Path(__file__).resolve().parent / "results"


def _encoded(image: Image.Image, fmt: str, **options: object) -> Image.Image:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return Image.open(io.BytesIO(out.getvalue())).convert("RGB")


def _crop(image: Image.Image, fraction: float) -> Image.Image:
    dx, dy = int(image.width * fraction), int(image.height * fraction)
    return image.crop((dx, dy, image.width - dx, image.height - dy))


def _half(image: Image.Image) -> Image.Image:
    return image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS)


COPIES: dict[str, Callable[[Image.Image], Image.Image]] = {
    "JPEG q40 (same size)": lambda im: _encoded(im, "JPEG", quality=40),
    "half size, JPEG q75": lambda im: _encoded(_half(im), "JPEG", quality=75),
    "quarter size, JPEG q60": lambda im: _encoded(
        im.resize((im.width // 4, im.height // 4), Image.Resampling.LANCZOS), "JPEG", quality=60),
    "WebP q80": lambda im: _encoded(im, "WEBP", quality=80),
    "10 % brighter": lambda im: im.point(lambda v: min(255, int(v * 1.1))),
    "1 % cut from each side": lambda im: _crop(im, 0.01),
    "2 % cut from each side": lambda im: _crop(im, 0.02),
    "2 % cut, half size, JPEG q80": lambda im: _encoded(_half(_crop(im, 0.02)), "JPEG", quality=80),
    "3 % cut from each side": lambda im: _crop(im, 0.03),
    "5 % cut from the left": lambda im: im.crop((int(im.width * 0.05), 0, im.width, im.height)),
    "5 % cut from each side": lambda im: _crop(im, 0.05),
    "10 % cut from each side": lambda im: _crop(im, 0.10),
}


def _summary(values: list[int]) -> str:
    within = sum(v <= NEAR_DISTANCE for v in values)
    return (f"min {min(values):2d}  median {statistics.median(values):4.1f}  max {max(values):2d}  "
            f"within k: {within}/{len(values)}")


def main(count: int = 100) -> int:
    out = [f"{count} scenes 1024x768 (devhost.scenes seeds 0..{count - 1}); k = NEAR_DISTANCE = {NEAR_DISTANCE}, "
           f"band radius {RADIUS} (finds every hash within {guaranteed(RADIUS)})", ""]
    pictures = [scene((1024, 768), seed=seed) for seed in range(count)]
    started = time.perf_counter()
    hashes = [perceptual_hash(im) for im in pictures]
    phash_ms = (time.perf_counter() - started) * 1000 / count
    started = time.perf_counter()
    for im in pictures:
        thumb_hash(im)
    thumb_ms = (time.perf_counter() - started) * 1000 / count
    out.append("copy of the same picture                distance to the original")
    for name, make in COPIES.items():
        distances = [hamming(h, perceptual_hash(make(im))) for im, h in zip(pictures, hashes, strict=True)]
        out.append(f"  {name:36s}  {_summary(distances)}")
    unrelated = [hamming(a, b) for a, b in itertools.combinations(hashes, 2)]
    out += ["", f"unrelated pairs ({len(unrelated)})", f"  {'':36s}  {_summary(unrelated)}",
            f"  closest pairs: {sorted(unrelated)[:10]}", "",
            f"cost per 1024x768 picture (already decoded): pHash {phash_ms:.1f} ms, ThumbHash {thumb_ms:.1f} ms "
            "(includes shrinking to fit 100x100)"]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "duplicates.txt").write_text("\n".join(out) + "\n")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100))
