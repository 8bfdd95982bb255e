"""Reconciliation cost: one pass over a container of N blobs and its table, scaled to 1 million.

    .venv/bin/python -m bench.reconcile [--count 5000] [--db sqlite|postgresql]

The container gets N tiny blobs on a fresh Azurite; the table gets a processed row for most of
them, a failed row for 1 %, none for 5 %, and 1 % of the blobs are deleted behind its back.
Starts go over HTTP to the local durable client endpoint (the runs themselves are not part of
the cost). A second pass right after finds the started runs pending; a third, after every blob
got its row, is the routine cost. Counts storage list calls, property reads, SQL reads and time per pass; the 1-million
figures scale the measured per-blob rates linearly (every cost is per page or per row).
Results go to bench/results/reconcile-<db>-<count>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from devhost.functions import discover, registries
from devhost.samples import encode, picture
from devhost.services import Azurite, Postgres, free_port
from devhost.worker import load_app
from shared.blob_access import ensure_container, service_client, upload_bytes
from shared.keyfilter import bytes_for
from shared.models import STATUS_FAILED, STATUS_PROCESSED, ImageRecord
from shared.reconcile import reconcile
from shared.store import SqlStore
from tests.durable import counting_client, pipeline_engine

RESULTS = Path(__file__).resolve().parent / "results"
MILLION = 1_000_000


def run(count: int, db: str) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-reconcile-"))
    azurite = Azurite.start(port=free_port(), location=work / "azurite")
    postgres = Postgres.create() if db == "postgresql" else None
    try:
        storage = azurite.connection_string
        sql = (postgres.create_database("bench") if postgres
               else f"Driver={{SQLite3}};Database={work / 'images.db'};Timeout=2000;")
        container = "images-input"
        ensure_container(storage, container)
        png = encode(picture((16, 8)), "PNG")
        names = [f"{i % 97:02d}/photo-{i:07d}.png" for i in range(count)]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            refs = list(pool.map(lambda n: upload_bytes(storage, container, n, png, "image/png"), names))
        upload_seconds = time.perf_counter() - t0
        rng = random.Random(1)
        store = SqlStore(sql)
        no_row = failed = deleted = 0
        doomed = []
        for ref in refs:
            roll = rng.random()
            if roll < 0.05:
                no_row += 1
                continue
            status = STATUS_FAILED if roll < 0.06 else STATUS_PROCESSED
            failed += status == STATUS_FAILED
            store.upsert(ImageRecord.for_blob(ref, status, instance_id="bench"))
            if 0.06 <= roll < 0.07:
                doomed.append(ref.name)
        blobs = service_client(storage).get_container_client(container)
        for name in doomed:
            blobs.delete_blob(name)
            deleted += 1
        worker = load_app(Path(__file__).resolve().parent.parent)
        engine = pipeline_engine(registries(worker, discover())[0])  # starts recorded, never run

        present = [r for r in refs if r.name not in set(doomed)]

        async def measure() -> tuple[Any, Any, Any]:
            async with counting_client(engine) as client:
                kwargs = {"container": container, "storage_connection": storage, "sql_connection": sql,
                          "retry_delays": (5.0,)}
                first = await reconcile(client, **kwargs)
                second = await reconcile(client, **kwargs)
                # Steady state: every run finished (its row written), nothing gone since.
                for ref in present:
                    store.upsert(ImageRecord.for_blob(ref, STATUS_PROCESSED, instance_id="bench"))
                return first, second, await reconcile(client, **kwargs)

        report, second, clean = asyncio.run(measure())
        per_blob = report.seconds / count
        scale = MILLION / count
        return {
            "count": count, "db": db, "upload_seconds": round(upload_seconds, 1),
            "planted": {"no_row": no_row, "failed_rows": failed, "deleted_blobs": deleted},
            "report": report.to_dict(),
            # The same pass again: nothing to start (the runs it started are pending), nothing gone.
            "second_pass": second.to_dict(),
            # Every blob has its final row: the cost of a routine pass.
            "clean_pass": clean.to_dict(),
            "scaled_to_1m": {
                "list_calls": -(-MILLION // 5000),
                "sql_reads": -(-MILLION // 500) + -(-int(report.rows_checked * scale) // 1000),
                "property_reads": int(report.property_reads * scale),
                "starts_at_same_rates": int(report.started * scale),
                "start_pass_minutes": round(report.start_pass_seconds * scale / 60, 1),
                "deletion_pass_minutes": round(report.deletion_pass_seconds * scale / 60, 1),
                "total_minutes": round(per_blob * MILLION / 60, 1),
                "clean_pass_minutes": round(clean.seconds * scale / 60, 1),
                "filter_megabytes": round(bytes_for(MILLION) / 1e6, 1),
            },
        }
    finally:
        azurite.stop()
        if postgres:
            postgres.destroy()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    result = run(args.count, args.db)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"reconcile-{args.db}-{args.count}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
