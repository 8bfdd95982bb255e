"""Per-image costs for docs/capacity.md, every function through Microsoft's Python worker.

    .venv/bin/python -m bench.capacity [--count 300]

One process loads the app into Microsoft's worker (azure-functions-runtime-v1, as on Azure) and
drives the local engine by hand: EventGridStarter gets one BlobCreated event per upload (the Flex
path), then every orchestrator episode and activity runs through the worker. Measured per image:

* function executions by function (starter, orchestrator episodes, each activity);
* CPU seconds the worker's threads spent in each (read from /proc per thread, so neither the
  engine standing in for the Durable extension, nor Azurite, nor PostgreSQL is counted; CPU time,
  not wall time: the machine is shared);
* the app's storage requests and bytes read, counted from Azurite's request log (``--debug``);
* SQL statements, counted from PostgreSQL's statement log (``log_statement=all``);
* the worker process's resident memory after loading and its peak while extracting.

Images: a mix of a small PNG, a 1,600 x 1,200 camera-like JPEG with EXIF and a 4,000 x 3,000 one
(the extractor reads their heads by ranges; a camera's 4,000 x 3,000 JPEG is larger, which changes
nothing here: only the head is read). Results go to bench/results/capacity.json.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from devhost import samples
from devhost.engine import Engine, ManualClock
from devhost.eventgrid import Sequencer, blob_created_event
from devhost.functions import APP_ROOT, discover, registries
from devhost.services import Azurite, Postgres, free_port
from devhost.worker import Data, load_app
from shared.blob_access import ensure_container, upload_bytes
from shared.settings import INPUT_CONTAINER
from shared.store import SqlStore
from tests.test_starter import client_endpoint

RESULTS = Path(__file__).resolve().parent / "results"
TICK = os.sysconf("SC_CLK_TCK")


def worker_thread_cpu() -> float:
    """CPU seconds of every thread but the main one (the worker's loop thread and thread pools)."""
    main = threading.main_thread().native_id
    total = 0
    for task in Path("/proc/self/task").iterdir():
        if int(task.name) == main:
            continue
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Meter:
    """Wraps the worker calls: counts and CPU per function."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.cpu: Counter[str] = Counter()
        self.first: dict[str, float] = {}
        self.peak_rss: Counter[str] = Counter()

    def reset(self) -> None:
        self.calls.clear()
        self.cpu.clear()
        self.first.clear()

    def add(self, name: str, cpu: float) -> None:
        self.first.setdefault(name, cpu)
        self.cpu[name] += cpu
        self.calls[name] += 1

    def wrap(self, name: str, call: Any) -> Any:
        def measured(arg: Any) -> Any:
            before = worker_thread_cpu()
            try:
                return call(arg)
            finally:
                self.add(name, worker_thread_cpu() - before)
                self.peak_rss[name] = max(self.peak_rss[name], rss_mb())

        return measured


def images(count: int) -> dict[str, bytes]:
    exif = samples.Exif(make="Canon", model="EOS R6", taken="2024:06:01 10:11:12", gps=(47.37, 8.54, 410.0))
    variants = [
        ("png", samples.encode(samples.picture((64, 48), seed=1), "PNG")),
        ("jpg", samples.encode(samples.noise((1600, 1200), seed=2), "JPEG", exif=exif, quality=85)),
        ("jpg", samples.encode(samples.picture((4000, 3000), seed=3), "JPEG", exif=exif, quality=92)),
    ]
    return {f"capacity/{i:05d}.{variants[i % 3][0]}": variants[i % 3][1] for i in range(count)}


_REQUEST = re.compile(r"RequestMethod=(\w+) RequestURL=\S+?/devstoreaccount1/([^?\s]*)(\?\S*)? RequestHeaders:(\{.*\})")
_DOWNLOAD = re.compile(r"RequiredContentLength=(\d+)")


def storage_requests(log_text: str) -> tuple[Counter[str], int]:
    """Requests by kind (method + what they address) and bytes downloaded, from Azurite's log."""
    kinds: Counter[str] = Counter()
    downloaded = 0
    for line in log_text.splitlines():
        match = _REQUEST.search(line)
        if match:
            method, path, query, headers = match.groups()
            query = query or ""
            target = "container" if "/" not in path else "blob"
            if "comp=list" in query:
                kind = "List Blobs"
            elif method == "GET" and target == "blob":
                kind = "Get Blob (ranged)" if '"x-ms-range"' in headers or '"range"' in headers else "Get Blob"
            elif method == "HEAD" and target == "blob":
                kind = "Get Blob Properties"
            elif method == "PUT" and target == "blob":
                kind = "Put Blob"
            else:
                kind = f"{method} {target} {query[:40]}"
            kinds[kind] += 1
        elif "downloadBlockBlobOrAppendBlob" in line:
            found = _DOWNLOAD.search(line)
            downloaded += int(found.group(1)) if found else 0
    return kinds, downloaded


def sql_statements(log_text: str) -> Counter[str]:
    """Statements the app sent, from PostgreSQL's log (log_statement=all), by first keyword."""
    kinds: Counter[str] = Counter()
    for match in re.finditer(r"LOG:\s+(?:statement|execute [^:]*):\s+(\w+)", log_text):
        kinds[match.group(1).upper()] += 1
    return kinds


def run(count: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-capacity-"))
    debug_log = work / "azurite-debug.log"
    azurite = Azurite.start(port=free_port(), location=work / "azurite", debug=debug_log)
    pg = Postgres.create({"log_statement": "all"})
    try:
        sql = pg.create_database("images")
        SqlStore(sql).ensure_schema()
        storage = azurite.connection_string
        ensure_container(storage, INPUT_CONTAINER)
        os.environ.update({"AzureWebJobsStorage": storage, "SqlConnectionString": sql,
                           "RetryDelaysSeconds": "0", "AzureWebJobs.ReconcileBlobs.Disabled": "true"})
        blobs = {**{f"warmup/{i}{n[-4:]}": d for i, (n, d) in enumerate(images(3).items())}, **images(count)}
        refs = {name: upload_bytes(storage, INPUT_CONTAINER, name, data, "image/jpeg" if name.endswith("jpg")
                                   else "image/png") for name, data in blobs.items()}
        sizes = [len(b) for n, b in blobs.items() if not n.startswith("warmup/")]
        del blobs
        gc.collect()
        rss_before_load = rss_mb()
        worker = load_app(APP_ROOT)
        rss_loaded = rss_mb()
        specs = discover(APP_ROOT)
        orchestrators, activities = registries(worker, specs)
        meter = Meter()
        engine = Engine(":memory:", {n: meter.wrap(n, c) for n, c in orchestrators.items()},
                        {n: meter.wrap(n, c) for n, c in activities.items()}, ManualClock())
        pg_log = pg.datadir.parent / "log"
        seq = Sequencer()

        async def start_all(batch: list[Any]) -> None:
            async with client_endpoint(engine) as binding:
                for ref in batch:
                    event = blob_created_event(ref, seq.next())
                    before = worker_thread_cpu()
                    await worker.invoke_async("EventGridStarter", {"event": Data("json", json.dumps(event)),
                                                                   "starter": Data("string", binding)},
                                              {"data": Data.json_of(event["data"])})
                    meter.add("EventGridStarter", worker_thread_cpu() - before)

        # One image of each kind first, unmeasured: imports, SDK clients and the place data load
        # once per worker process (warmup_cpu_ms: those 3 images, per function).
        asyncio.run(start_all([r for n, r in refs.items() if n.startswith("warmup/")]))
        engine.run_until_idle()
        warm_cpu = dict(meter.cpu)
        meter.reset()
        pg_offset = pg_log.stat().st_size
        az_offset = debug_log.stat().st_size
        asyncio.run(start_all([r for n, r in refs.items() if not n.startswith("warmup/")]))
        az_after_start = debug_log.stat().st_size
        engine.run_until_idle()
        rows = [r for r in SqlStore(sql).rows() if not r["BlobName"].startswith("warmup/")]
        worker.close()
        az_text = debug_log.read_text(errors="replace")
        start_requests, _ = storage_requests(az_text[az_offset:az_after_start])
        run_requests, downloaded = storage_requests(az_text[az_after_start:])
        statements = sql_statements(pg_log.read_text(errors="replace")[pg_offset:])
    finally:
        azurite.stop()
        pg.destroy()
    steady = {n: meter.cpu[n] / meter.calls[n] for n in meter.calls}
    per = {n: {"executions_per_image": round(meter.calls[n] / count, 2),
               "cpu_ms_per_execution": round(1000 * steady[n], 2),
               "cpu_ms_per_image": round(1000 * steady[n] * meter.calls[n] / count, 2),
               "warmup_cpu_ms": round(1000 * warm_cpu.get(n, 0.0), 1)} for n in sorted(meter.calls)}
    return {
        "images": count, "cpus": os.cpu_count(), "python": sys.version.split()[0],
        "all_processed": len(rows) == count and all(r["Status"] == "processed" for r in rows),
        "mean_image_bytes": round(sum(sizes) / count), "max_image_bytes": max(sizes),
        "functions": per,
        "worker_cpu_ms_per_image": round(sum(v["cpu_ms_per_image"] for v in per.values()), 2),
        "storage_requests_per_image": {
            "starter": {k: round(v / count, 3) for k, v in start_requests.items()},
            "orchestration_and_activities": {k: round(v / count, 3) for k, v in run_requests.items()},
        },
        "bytes_read_per_image": round(downloaded / count),
        "sql_statements_per_image": {k: round(v / count, 3) for k, v in statements.most_common()},
        # The benchmark process: Python + the SDKs it imported itself, then with the app loaded
        # into Microsoft's worker, then the highest resident size seen after each execution.
        "memory_mb": {"process_before_worker": round(rss_before_load, 1),
                      "after_loading_app_into_worker": round(rss_loaded, 1),
                      "peak_after_execution": {n: round(v, 1) for n, v in sorted(meter.peak_rss.items())}},
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()
    started = time.process_time()
    result = run(args.count)
    result["bench_process_cpu_s"] = round(time.process_time() - started, 1)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "capacity.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
