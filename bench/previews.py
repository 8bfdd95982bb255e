"""Preview benchmark: our renderer against libvips (vipsthumbnail) and ImageMagick (-thumbnail),
same corpus, same run, WebP out at quality 80, long edge 256.

    .venv/bin/python -m bench.previews            (part of: make bench)

Per format: previews per second for each tool (best of three runs; each tool converts the whole
group in one process: vipsthumbnail and mogrify take many files, ours loops in Python), and
ours making both default sizes (256 and 1024) from one decode, as MakePreview does. Then the
peak memory (VmHWM growth, fresh process) of a preview of a 100-megapixel JPEG against a full
Pillow decode of it, and each tool's peak resident memory on it. Results go to
bench/results/previews.json.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image

from bench.corpus import CORPUS, build_100mp
from devhost import samples

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
FOLDER = CORPUS / "previews"
SIZE = 256
GROUPS = ("jpeg", "png", "gif", "webp", "heic")


def build_corpus(folder: Path = FOLDER) -> dict[str, list[Path]]:
    """Phone-sized JPEGs (with EXIF orientation), PNG (RGB, RGBA, 16-bit grey), GIF (static and
    animated), WebP and HEIC, seeded."""
    import random

    from bench.spec_files import _heif

    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(16)
    groups: dict[str, list[Path]] = {g: [] for g in GROUPS}

    def write(group: str, name: str, make) -> None:
        path = folder / name
        if not path.exists():
            path.write_bytes(make())
        groups[group].append(path)

    for i in range(40):
        size = rng.choice([(2048, 1536), (4000, 3000), (1600, 1200)])
        orientation = rng.choice([1, 6, 8])
        write("jpeg", f"jpeg-{i:03d}.jpg", lambda size=size, o=orientation, i=i: samples.encode(
            samples.noise(size, seed=i) if i % 4 == 0 else samples.picture(size, seed=i), "JPEG",
            samples.Exif(orientation=o, make="Canon", model="EOS R5"), quality=88))
    for i in range(24):
        size = (rng.randint(800, 2400), rng.randint(600, 1800))
        mode = ("RGB", "RGBA", "I;16")[i % 3]

        def png(size=size, mode=mode, i=i) -> bytes:
            im = samples.picture(size, "RGB", seed=i)
            if mode == "RGBA":
                im = im.convert("RGBA")
                im.putalpha(Image.linear_gradient("L").resize(size))
            elif mode == "I;16":
                im = im.convert("I").point(lambda v: v * 257).convert("I;16")
            return samples.encode(im, "PNG")
        write("png", f"png-{i:03d}.png", png)
    for i in range(20):
        if i % 2:
            write("gif", f"gif-{i:03d}.gif", lambda i=i: samples.animated_gif(8, (480, 360)))
        else:
            write("gif", f"gif-{i:03d}.gif", lambda i=i: samples.encode(
                samples.picture((800, 600), seed=i).convert("P"), "GIF"))
    for i in range(20):
        write("webp", f"webp-{i:03d}.webp", lambda i=i: samples.encode(
            samples.picture((2000, 1500), seed=i), "WEBP", quality=85))
    for i in range(10):
        write("heic", f"heic-{i:03d}.heic", lambda i=i: _heif(
            samples.picture((3024, 4032), seed=i), "HEIF", 6 if i % 2 else None, True, quality=70))
    return groups


def ours(files: list[Path], sizes: tuple[int, ...]) -> dict[str, Any]:
    from shared.previews import PreviewOptions, render_previews

    options = PreviewOptions(sizes=sizes)
    start = time.perf_counter()
    written = 0
    for path in files:
        rendering = render_previews(path.read_bytes(), options)
        written += sum(len(p.data) for p in rendering.previews)
    elapsed = time.perf_counter() - start
    return {"images_per_s": round(len(files) / elapsed, 2), "seconds": round(elapsed, 3),
            "mean_preview_bytes": round(written / len(files) / len(sizes))}


def one_process(cmd: list[str], files: list[Path]) -> dict[str, Any]:
    start = time.perf_counter()
    done = subprocess.run(cmd + [str(f) for f in files], check=False, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    result = {"images_per_s": round(len(files) / elapsed, 2), "seconds": round(elapsed, 3)}
    if done.returncode:
        result["error"] = done.stderr.strip()[-300:]
    return result


def vips(files: list[Path], out: Path) -> dict[str, Any]:
    # -s 256: long edge 256 (vipsthumbnail's default fit); [Q=80,strip] drops metadata as ours does.
    return one_process(["vipsthumbnail", "-s", str(SIZE), "-o", f"{out}/%s.webp[Q=80,strip]"], files)


def magick(files: list[Path], out: Path) -> dict[str, Any]:
    # mogrify is convert's many-files form (one process, the same -thumbnail operator); [0] takes
    # the first frame of an animation, -auto-orient applies EXIF orientation as ours does.
    return one_process(["mogrify", "-path", str(out), "-format", "webp", "-auto-orient",
                        "-thumbnail", f"{SIZE}x{SIZE}", "-quality", "80"], [Path(f"{f}[0]") for f in files])


def best_of(runs: int, measure) -> dict[str, Any]:
    return max((measure() for _ in range(runs)), key=lambda r: r["images_per_s"])


MEMORY = """
import sys
from pathlib import Path
from bench.extraction import vm_hwm_kb
which, path = sys.argv[1], Path(sys.argv[2])
before = vm_hwm_kb()
if which == "preview":
    from shared.previews import PreviewOptions, render_previews
    data = path.read_bytes()
    render_previews(data, PreviewOptions())
else:
    from PIL import Image
    Image.MAX_IMAGE_PIXELS = None
    Image.open(path).load()
print(vm_hwm_kb() - before)
"""


def child_peak_kb(cmd: list[str]) -> int:
    """A tool's peak resident memory (ru_maxrss of the one child this helper process waits for)."""
    code = ("import resource, subprocess, sys\n"
            "subprocess.run(sys.argv[1:], check=False, capture_output=True)\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    return int(subprocess.run([sys.executable, "-c", code, *cmd], check=True, capture_output=True,
                              text=True).stdout.strip())


def memory_100mp(out: Path) -> dict[str, Any]:
    path = build_100mp()
    growth = {which: int(subprocess.run([sys.executable, "-c", MEMORY, which, str(path)], check=True,
                                        capture_output=True, text=True, cwd=ROOT).stdout.strip())
              for which in ("preview", "full_decode")}
    code = ("import sys\nfrom pathlib import Path\nfrom shared.previews import PreviewOptions, render_previews\n"
            "render_previews(Path(sys.argv[1]).read_bytes(), PreviewOptions())\n")
    start = time.perf_counter()
    ours_peak = child_peak_kb([sys.executable, "-c", code, str(path)])
    ours_seconds = time.perf_counter() - start
    with Image.open(path) as im:
        size = im.size
    return {
        "file_bytes": path.stat().st_size, "pixels": size[0] * size[1],
        "ours_peak_rss_growth_kb": growth["preview"],
        "full_decode_rss_growth_kb": growth["full_decode"],
        "ours_over_full_decode": round(growth["preview"] / growth["full_decode"], 3),
        "peak_rss_kb": {
            "ours_process": ours_peak,
            "vipsthumbnail": child_peak_kb(["vipsthumbnail", "-s", "1024", "-o", f"{out}/%s.webp[Q=80]", str(path)]),
            "imagemagick": child_peak_kb(["mogrify", "-path", str(out), "-format", "webp",
                                          "-thumbnail", "1024x1024", "-quality", "80", f"{path}[0]"]),
        },
        "ours_process_seconds_both_sizes": round(ours_seconds, 2),
    }


def main() -> int:
    missing = [t for t in ("vipsthumbnail", "mogrify") if shutil.which(t) is None]
    if missing:
        print(f"{', '.join(missing)} missing: apt-get install libvips-tools imagemagick "
              "(scripts/bootstrap.sh installs both)", file=sys.stderr)
        return 1
    groups = build_corpus()
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "vips": subprocess.run(["vips", "--version"], capture_output=True, text=True).stdout.strip(),
                    "imagemagick": subprocess.run(["mogrify", "-version"], capture_output=True,
                                                  text=True).stdout.splitlines()[0]},
        "long_edge": SIZE, "output": "webp q80", "by_format": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for group, files in groups.items():
            row = {
                "files": len(files), "mean_file_bytes": round(sum(f.stat().st_size for f in files) / len(files)),
                "ours_256": best_of(3, lambda files=files: ours(files, (SIZE,))),
                "ours_256_and_1024": best_of(3, lambda files=files: ours(files, (256, 1024))),
                "vipsthumbnail": best_of(3, lambda files=files: vips(files, out)),
                "imagemagick": best_of(3, lambda files=files: magick(files, out)),
            }
            ours_rate = row["ours_256"]["images_per_s"]
            row["ours_over_vips"] = round(ours_rate / row["vipsthumbnail"]["images_per_s"], 2)
            row["ours_over_imagemagick"] = round(ours_rate / row["imagemagick"]["images_per_s"], 2)
            results["by_format"][group] = row
            print(f"{group:5} ours {ours_rate:7.1f}/s  vips {row['vipsthumbnail']['images_per_s']:7.1f}/s  "
                  f"magick {row['imagemagick']['images_per_s']:7.1f}/s  (both sizes: "
                  f"{row['ours_256_and_1024']['images_per_s']:.1f}/s)", flush=True)
        results["memory_100mp_jpeg"] = memory_100mp(out)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "previews.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["memory_100mp_jpeg"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
