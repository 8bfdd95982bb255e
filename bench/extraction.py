"""Extraction benchmark: our header-only extractor against exiftool and ImageMagick, same corpus, same run.

    .venv/bin/python -m bench.extraction            (or: make bench)

Reports images/s for each tool, bytes read and storage requests per image (through real
Azurite ranged reads), and peak memory growth on a 100-megapixel JPEG. Results go to
bench/results/extraction.json and are summarised on stdout.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.corpus import CORPUS, build, build_100mp
from shared.extraction import extract_from_ranges
from shared.settings import Limits

RESULTS = Path(__file__).resolve().parent / "results"


def best_of(runs: int, measure) -> dict[str, Any]:
    """The fastest of several runs, for every tool alike (the machine has other load)."""
    return max((measure() for _ in range(runs)), key=lambda r: r["images_per_s"])


def file_fetch(path: Path):
    handle = open(path, "rb")

    def fetch(offset: int, length: int) -> bytes:
        handle.seek(offset)
        return handle.read(length)

    return handle, fetch


def ours(files: list[Path], limits: Limits) -> dict[str, Any]:
    from shared import places

    # Every run pays each GPS look-up (warm data, no cached answers), as unique positions would.
    places.time_zone_at.cache_clear()
    places.place_at.cache_clear()
    start = time.perf_counter()
    read, requests = [], []
    for path in files:
        handle, fetch = file_fetch(path)
        with handle:
            meta = extract_from_ranges(path.stat().st_size, fetch, limits)
        read.append(meta.bytes_read)
        requests.append(meta.read_requests)
    elapsed = time.perf_counter() - start
    return {"images_per_s": len(files) / elapsed, "seconds": elapsed}


def exiftool_stay_open(files: list[Path]) -> dict[str, Any]:
    proc = subprocess.Popen(["exiftool", "-stay_open", "True", "-@", "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
    assert proc.stdin and proc.stdout

    def ask(path: Path) -> str:
        proc.stdin.write(f"-json\n-fast\n{path}\n-execute\n")
        proc.stdin.flush()
        lines = []
        for line in proc.stdout:
            if line.strip() == "{ready}":
                break
            lines.append(line)
        return "".join(lines)

    ask(files[0])  # warm up: perl start-up and module loading are not per-image costs
    start = time.perf_counter()
    for path in files:
        ask(path)
    elapsed = time.perf_counter() - start
    proc.stdin.write("-stay_open\nFalse\n")
    proc.stdin.flush()
    proc.wait(30)
    return {"images_per_s": len(files) / elapsed, "seconds": elapsed}


def one_process(cmd: list[str], files: list[Path]) -> dict[str, Any]:
    start = time.perf_counter()
    subprocess.run(cmd + [str(f) for f in files], check=False, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    return {"images_per_s": len(files) / elapsed, "seconds": elapsed}


def through_azurite(files: list[Path], limits: Limits) -> dict[str, Any]:
    """Bytes and requests per image over real HTTP ranged reads against Azurite."""
    from devhost.services import Azurite, free_port
    from shared.blob_access import BlobReader, ensure_container, upload_bytes

    azurite = Azurite.start(port=free_port())
    try:
        ensure_container(azurite.connection_string, "images-input")
        per_kind: dict[str, list[tuple[int, int]]] = {}
        for path in files:
            ref = upload_bytes(azurite.connection_string, "images-input", path.name, path.read_bytes())
            reader = BlobReader(azurite.connection_string, ref)
            head = reader.head(limits.head_bytes)
            meta = extract_from_ranges(head.size, reader.fetch, limits, first_chunk=head.data)
            assert meta.read_requests == reader.requests
            kind = path.name.split("-")[0]
            per_kind.setdefault(kind, []).append((meta.bytes_read, meta.read_requests))
    finally:
        azurite.stop()
    summary = {}
    for kind, values in sorted(per_kind.items()):
        summary[kind] = {
            "files": len(values),
            "mean_bytes_read": round(statistics.mean(b for b, _ in values)),
            "max_bytes_read": max(b for b, _ in values),
            "mean_requests": round(statistics.mean(r for _, r in values), 3),
            "one_request_le_64k": round(sum(1 for b, r in values if r == 1 and b <= 65536) / len(values), 4),
        }
    return summary


def vm_hwm_kb() -> int:
    """This process's peak resident memory. (ru_maxrss would include the parent's peak
    inherited across fork, which is large here after generating the 100 MP image.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def memory_100mp() -> dict[str, Any]:
    """Peak RSS growth while extracting a 100 MP JPEG, in a fresh process (nothing else allocated)."""
    path = build_100mp()
    code = (
        "import sys\n"
        "from bench.extraction import vm_hwm_kb\n"
        "from bench.extraction import file_fetch\n"
        "from shared.extraction import extract_from_ranges\n"
        "from shared.settings import Limits\n"
        "from pathlib import Path\n"
        "p = Path(sys.argv[1])\n"
        "before = vm_hwm_kb()\n"
        "h, f = file_fetch(p)\n"
        "m = extract_from_ranges(p.stat().st_size, f, Limits())\n"
        "after = vm_hwm_kb()\n"
        "print(after - before, m.width, m.height, m.bytes_read, m.read_requests)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent).stdout.split()
    decode = subprocess.run([sys.executable, "-c",
                             "import sys\nfrom PIL import Image\nfrom bench.extraction import vm_hwm_kb\n"
                             "Image.MAX_IMAGE_PIXELS=None\nb=vm_hwm_kb()\n"
                             "Image.open(sys.argv[1]).load()\nprint(vm_hwm_kb()-b)", str(path)],
                            check=True, capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent.parent).stdout.strip()
    return {"file_bytes": path.stat().st_size, "pixels": int(out[1]) * int(out[2]),
            "peak_rss_growth_kb": int(out[0]), "bytes_read": int(out[3]), "requests": int(out[4]),
            "full_decode_rss_growth_kb": int(decode)}


LOOKUP_COST = """
import random, sys, time
def vm_rss_kb():
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0])
which = sys.argv[1]
rss0, t0 = vm_rss_kb(), time.perf_counter()
from shared import extraction, places
t1, rss0 = time.perf_counter(), vm_rss_kb()
f = places.time_zone_at if which == "time_zone" else places.place_at
f(48.8583701, 2.2944813)
t2, rss1 = time.perf_counter(), vm_rss_kb()
rng = random.Random(1)
points = [(rng.uniform(-80, 80), rng.uniform(-179, 179)) for _ in range(5000)]
t3 = time.perf_counter()
for lat, lon in points:
    f.__wrapped__(lat, lon)
t4 = time.perf_counter()
print(1000 * (t1 - t0), 1000 * (t2 - t1), (rss1 - rss0) / 1024, 1e6 * (t4 - t3) / len(points))
"""
LOOKUP_PACKAGES = {"time_zone": ("tzfpy",), "place": ("reverse_geocode", "numpy", "scipy")}


def vm_rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def installed_mb(distributions: tuple[str, ...]) -> float:
    from importlib.metadata import distribution

    total = 0
    for name in distributions:
        for file in distribution(name).files or []:
            path = Path(str(file.locate()))
            if path.is_file():
                total += path.stat().st_size
    return round(total / 1e6, 1)


def lookup_costs() -> dict[str, Any]:
    """Time zone and place look-ups, each in a fresh process: importing the extractor (which
    must not load them), the first look-up (which loads the package and its data), resident memory it adds, a warm look-up, and the
    installed size of the packages it needs."""
    costs = {}
    for which, packages in LOOKUP_PACKAGES.items():
        out = subprocess.run([sys.executable, "-c", LOOKUP_COST, which], check=True, capture_output=True,
                             text=True, cwd=Path(__file__).resolve().parent.parent).stdout.split()
        costs[which] = {"import_extractor_ms": round(float(out[0]), 1), "first_lookup_ms": round(float(out[1]), 1),
                        "rss_growth_mb": round(float(out[2]), 1), "warm_lookup_us": round(float(out[3]), 1),
                        "packages": list(packages), "installed_mb": installed_mb(packages)}
    return costs


def lookups_in_stream(files: list[Path]) -> dict[str, Any]:
    """Each look-up timed between two extractions (caches cold, as in a real stream of images),
    for the corpus's GPS positions (random: mostly sea) and for positions 1 km from GeoNames
    places (what photos mostly are): mean microseconds per look-up."""
    import random

    from shared import extraction, places

    jpegs = [p.read_bytes() for p in files if p.name.startswith("jpeg-")]
    metas = [extraction.extract_from_bytes(d) for d in jpegs]
    corpus_points = [(m.gps_latitude, m.gps_longitude) for m in metas if m.gps_latitude is not None]
    places.place_at(0.0, 0.0)
    rng = random.Random(11)
    towns = rng.sample(places._geocoder._locations, len(corpus_points))
    town_points = [(t["latitude"] + 0.009, t["longitude"]) for t in towns]
    result: dict[str, Any] = {}
    for label, points in (("corpus_positions", corpus_points), ("near_places", town_points)):
        timings = {"place_us": 0.0, "time_zone_us": 0.0}
        for data, (lat, lon) in zip(jpegs, points, strict=False):
            extraction.extract_from_bytes(data)
            start = time.perf_counter()
            places.place_at.__wrapped__(lat, lon)
            timings["place_us"] += time.perf_counter() - start
            extraction.extract_from_bytes(data)
            start = time.perf_counter()
            places.time_zone_at.__wrapped__(lat, lon)
            timings["time_zone_us"] += time.perf_counter() - start
        n = min(len(jpegs), len(points))
        result[label] = {k: round(1e6 * v / n, 1) for k, v in timings.items()}
        result[label]["points"] = n
        result[label]["with_a_place"] = sum(places.place_at(*p) is not None for p in points[:n])
    return result


def ours_without_lookups(files: list[Path], limits: Limits) -> dict[str, Any]:
    """The same extraction with the GPS look-ups switched off: what they cost per image."""
    from shared import extraction

    real = extraction.places

    class NoLookups:
        time_zone_at = staticmethod(lambda lat, lon: None)
        place_at = staticmethod(lambda lat, lon: None)

    extraction.places = NoLookups  # type: ignore[assignment]
    try:
        return ours(files, limits)
    finally:
        extraction.places = real


CAMERA_RAW_BYTES = 8 * 1024 * 1024  # the raw data of a camera's file: a few MB


def raw_reads(limits: Limits) -> dict[str, Any]:
    """Bytes and ranged requests each raw format costs (64 KiB chunks), against its file size,
    for files whose raw data is the size a camera's is."""
    from bench.spec_files import raw_corpus

    found = {}
    for _, data in sorted(raw_corpus(CAMERA_RAW_BYTES).items()):
        meta = extract_from_ranges(len(data), lambda off, n, d=data: d[off:off + n], limits)
        found[meta.format] = {"file_bytes": len(data), "bytes_read": meta.bytes_read,
                              "requests": meta.read_requests}
    return found


def main() -> int:
    for tool in ("exiftool", "identify"):
        if shutil.which(tool) is None:
            print(f"{tool} is missing: apt-get install libimage-exiftool-perl imagemagick", file=sys.stderr)
            return 2
    files = sorted(build(), key=lambda p: p.name)
    limits = Limits()
    total_mb = sum(f.stat().st_size for f in files) / 1e6
    print(f"corpus: {len(files)} files, {total_mb:.1f} MB in {CORPUS}", flush=True)
    for path in files[:50]:  # warm the page cache for everyone alike
        path.read_bytes()
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "exiftool": subprocess.run(["exiftool", "-ver"], capture_output=True, text=True).stdout.strip()},
        "corpus_files": len(files), "corpus_mb": round(total_mb, 1),
    }
    # Interleaved, so that both see the same machine load: what the GPS look-ups cost.
    runs = [(ours(files, limits), ours_without_lookups(files, limits)) for _ in range(10)]
    results["ours"] = max((r[0] for r in runs), key=lambda r: r["images_per_s"])
    results["ours_without_gps_lookups"] = max((r[1] for r in runs), key=lambda r: r["images_per_s"])
    results["exiftool_stay_open"] = best_of(3, lambda: exiftool_stay_open(files))
    results["exiftool_batch_fast_json"] = best_of(3, lambda: one_process(["exiftool", "-fast", "-json", "-q"],
                                                                         files))
    results["identify_ping"] = best_of(3, lambda: one_process(["identify", "-ping", "-format",
                                                               "%m %w %h\n"], files))
    base = results["exiftool_stay_open"]["images_per_s"]
    for key in ("ours", "ours_without_gps_lookups", "exiftool_stay_open", "exiftool_batch_fast_json", "identify_ping"):
        results[key]["ratio_vs_exiftool_stay_open"] = round(results[key]["images_per_s"] / base, 2)
    results["reads_through_azurite"] = through_azurite(files, limits)
    results["raw_reads"] = raw_reads(limits)
    results["memory_100mp_jpeg"] = memory_100mp()
    results["gps_lookups"] = lookup_costs()
    results["gps_lookups_in_stream"] = lookups_in_stream(files)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "extraction.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
