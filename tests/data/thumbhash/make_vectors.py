"""Make the ThumbHash reference vectors: PNG inputs here, hashes from the reference encoder.

Run once by hand (`node` and the npm package are not needed by the tests):
    npm pack thumbhash@0.1.1 && tar xzf thumbhash-0.1.1.tgz
    PYTHONPATH=. .venv/bin/python tests/data/thumbhash/make_vectors.py package/thumbhash.js
The PNGs are lossless, so the RGBA the test decodes is the RGBA the reference encoded.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from devhost import samples, scenes

HERE = Path(__file__).resolve().parent


def cases() -> dict[str, Image.Image]:
    ramp = np.linspace(0, 255, 100)
    alpha = Image.fromarray(np.tile(ramp, (100, 1)).astype(np.uint8), "L")
    faded = scenes.scene((100, 100), seed=3).convert("RGBA")
    faded.putalpha(alpha)
    ring = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    from PIL import ImageDraw

    ImageDraw.Draw(ring).ellipse((8, 8, 56, 56), outline=(200, 30, 90, 255), width=8)
    return {
        "scene-landscape": scenes.scene((100, 75), seed=1).convert("RGBA"),
        "scene-portrait": scenes.scene((60, 100), seed=2).convert("RGBA"),
        "scene-alpha-ramp": faded,
        "ring-on-transparent": ring,
        "diagonals": samples.picture((100, 50), seed=7).convert("RGBA"),
        "uniform": Image.new("RGBA", (20, 20), (30, 120, 200, 255)),
        "fully-transparent": Image.new("RGBA", (10, 10), (0, 0, 0, 0)),
        "one-pixel": Image.new("RGBA", (1, 1), (255, 128, 0, 255)),
        "strip": scenes.scene((100, 3), seed=4).convert("RGBA"),
        # 7 * 5 / 14 = 2.5: JavaScript rounds it to 3, Python's round to 2
        "tall-5x14": scenes.scene((5, 14), seed=5).convert("RGBA"),
    }


def main(module: str) -> None:
    manifest = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, image in cases().items():
            image.save(HERE / f"{name}.png", optimize=True)
            raw = Path(tmp) / f"{name}.rgba"
            raw.write_bytes(Image.open(HERE / f"{name}.png").convert("RGBA").tobytes())
            manifest.append({"name": name, "width": image.width, "height": image.height, "rgba": str(raw)})
        rng = random.Random(2026)
        cos_args = [math.pi / w * c * (x + 0.5) for w in (3, 7, 64, 75, 100) for c in range(8) for x in range(w)]
        cos_args += [rng.uniform(-30, 30) for _ in range(500)]
        (Path(tmp) / "manifest.json").write_text(json.dumps({"images": manifest, "cosArgs": cos_args}))
        made = json.loads(subprocess.run(["node", str(HERE / "make_vectors.mjs"), module,
                                            str(Path(tmp) / "manifest.json")],
                                           check=True, capture_output=True, text=True).stdout)
    (HERE / "vectors.json").write_text(json.dumps(
        {"encoder": "npm thumbhash 0.1.1 rgbaToThumbHash (github.com/evanw/thumbhash)",
         "node": subprocess.run(["node", "--version"], check=True, capture_output=True, text=True).stdout.strip(),
         "hashes": made["hashes"], "cos": made["cos"]}) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
