"""Extraction throughput of this work tree against an earlier commit, measured side by side.

    .venv/bin/python -m bench.compare_versions fa406e0 [rounds]

On a shared 2-core machine one best-of-3 figure swings by ±30 % with other people's load. So
the earlier commit's ``shared`` package is loaded beside this one in the same process (as
``oldshared``), the two extract the whole benchmark corpus alternately, pass after pass, from
memory, and the fastest pass of each is compared: both see the same machine at nearly the same
moments. GPS look-up caches are cleared before every pass of this version, so each pass pays
every look-up. Results go to bench/results/compare-versions.json.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
import tempfile
import timeit
from io import BytesIO
from pathlib import Path

from bench.corpus import CORPUS, build

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


def checkout(rev: str, folder: Path) -> None:
    archive = subprocess.run(["git", "archive", rev, "shared"], cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")


def load_old(rev: str, folder: Path):  # noqa: ANN201 - a module object
    """The commit's shared/ as package ``oldshared`` (its own imports rewritten to match)."""
    checkout(rev, folder)
    package = folder / "oldshared"
    (folder / "shared").rename(package)
    for module in package.glob("*.py"):
        text = module.read_text()
        module.write_text(re.sub(r"\b(from|import) shared\b", r"\1 oldshared", text))
    sys.path.insert(0, str(folder))
    from oldshared import extraction  # type: ignore[import-not-found]

    return extraction


def main() -> int:
    rev = sys.argv[1] if len(sys.argv) > 1 else "HEAD~1"
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    from shared import extraction as new
    from shared import places

    datas = [p.read_bytes() for p in sorted(build(), key=lambda p: p.name)]
    with tempfile.TemporaryDirectory() as tmp:
        old = load_old(rev, Path(tmp))

        def before() -> None:
            for data in datas:
                old.extract_from_bytes(data)

        def after() -> None:
            places.place_at.cache_clear()
            places.time_zone_at.cache_clear()
            for data in datas:
                new.extract_from_bytes(data)

        after()  # warm: lazily loaded look-up data
        best = {"before": float("inf"), "after": float("inf")}
        for _ in range(rounds):
            best["before"] = min(best["before"], min(timeit.repeat(before, number=1, repeat=2)))
            best["after"] = min(best["after"], min(timeit.repeat(after, number=1, repeat=2)))
    summary = {
        "before_rev": rev, "files": len(datas), "passes_each": 2 * rounds, "corpus": str(CORPUS),
        "images_per_s": {k: round(len(datas) / v) for k, v in best.items()},
        "after_over_before": round(best["before"] / best["after"], 3),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "compare-versions.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
