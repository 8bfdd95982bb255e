"""Extraction throughput of this work tree against an earlier commit, measured in pairs.

    .venv/bin/python -m bench.compare_versions fa406e0 [rounds]

On a shared 2-core machine one best-of-3 figure swings by ±30 % with other people's load, so
the two versions run alternately, each round in fresh processes over the same files (the
benchmark corpus, `bench/corpus.py`), and the medians of the per-round bests are compared. Both
wall-clock and CPU time (process_time, less sensitive to other load) are reported. GPS look-up
caches are cleared before every pass, so each pass pays every look-up. Results go to
bench/results/compare-versions.json.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

from bench.corpus import CORPUS, build

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
PASS = """
import sys, time
from pathlib import Path
from shared.extraction import extract_from_ranges
from shared.settings import Limits
files = sorted(p for p in Path(sys.argv[1]).glob('*-*.*'))
sizes = [f.stat().st_size for f in files]
def one_pass():
    try:
        from shared import places
        places.place_at.cache_clear()
        places.time_zone_at.cache_clear()
    except ImportError:
        pass
    cpu, wall = time.process_time(), time.perf_counter()
    for path, size in zip(files, sizes):
        with open(path, 'rb') as handle:
            def fetch(offset, length, handle=handle):
                handle.seek(offset)
                return handle.read(length)
            extract_from_ranges(size, fetch, Limits())
    return time.process_time() - cpu, time.perf_counter() - wall
one_pass()  # warm: page cache, lazily loaded look-up data
runs = [one_pass() for _ in range(5)]
print(len(files), min(r[0] for r in runs), min(r[1] for r in runs))
"""


def checkout(rev: str, folder: Path) -> None:
    archive = subprocess.run(["git", "archive", rev, "shared"], cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")


def measure(code_root: Path) -> tuple[float, float]:
    out = subprocess.run([sys.executable, "-c", PASS, str(CORPUS)], cwd=code_root, check=True,
                         capture_output=True, text=True, env={"PYTHONPATH": str(code_root)}).stdout.split()
    files = int(out[0])
    return files / float(out[1]), files / float(out[2])


def main() -> int:
    rev = sys.argv[1] if len(sys.argv) > 1 else "HEAD~1"
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    build()
    results: dict[str, dict[str, list[float]]] = {"before": {"cpu": [], "wall": []},
                                                  "after": {"cpu": [], "wall": []}}
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp)
        checkout(rev, old)
        for _ in range(rounds):
            for label, root in (("before", old), ("after", ROOT)):
                cpu, wall = measure(root)
                results[label]["cpu"].append(round(cpu))
                results[label]["wall"].append(round(wall))
    summary = {
        "before_rev": rev, "rounds": rounds, "runs_images_per_s": results,
        "median_images_per_s": {k: {m: statistics.median(v[m]) for m in v} for k, v in results.items()},
    }
    summary["after_over_before"] = {m: round(summary["median_images_per_s"]["after"][m]
                                             / summary["median_images_per_s"]["before"][m], 3)
                                    for m in ("cpu", "wall")}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "compare-versions.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
