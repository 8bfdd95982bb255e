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

