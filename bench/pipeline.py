"""End-to-end benchmark: N small images through Azurite + the local host + SQLite.

    .venv/bin/python -m bench.pipeline [--count 1000] [--workers 4] [--rate 60] [--starter blob|eventgrid]
                                       [--previews on|off] [--size 1600x1200]

Measures sustained throughput (images/s from the first upload to the last row), upload-to-row
latency (p50, p95, max; upload completion to the row's ProcessedAt) and where the time goes,
read back from the host's durable history, plus CPU seconds of the host and of Azurite, and
what reached the starter per image (the blob trigger: the whole blob; Event Grid: the event JSON).
Results go to bench/results/pipeline.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devhost import protocol as p
from devhost import samples
from devhost.services import Azurite, free_port
from shared.blob_access import ensure_container, upload_bytes
from shared.store import SqlStore
from tests.hosting import HostProcess

RESULTS = Path(__file__).resolve().parent / "results"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds(pid: int) -> float:
    """CPU of the host's worker processes (the function code runs there)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def history_breakdown(db_path: Path) -> dict[str, float]:
    """Median seconds per stage, from the engine's recorded event timestamps."""
    stages: dict[str, list[float]] = {"extract_queue_and_run": [], "between_activities": [],
                                      "store_queue_and_run": [], "orchestration_total": []}
    conn = sqlite3.connect(db_path)
    for (history_json,) in conn.execute("SELECT history FROM instances WHERE status = 'Completed'"):
        events = json.loads(history_json)
        ts = [(e["EventType"], p.parse_timestamp(e["Timestamp"]), e) for e in events]
        scheduled = [(t, e) for k, t, e in ts if k == p.TASK_SCHEDULED]
        completed = {e["TaskScheduledId"]: t for k, t, e in ts if k == p.TASK_COMPLETED}
        if len(scheduled) < 2:
            continue
        (s_ext, e_ext), (s_sto, e_sto) = scheduled[0], scheduled[-1]
        c_ext, c_sto = completed[e_ext["EventId"]], completed[e_sto["EventId"]]
        stages["extract_queue_and_run"].append((c_ext - s_ext).total_seconds())
        stages["between_activities"].append((s_sto - c_ext).total_seconds())
        stages["store_queue_and_run"].append((c_sto - s_sto).total_seconds())
        stages["orchestration_total"].append((ts[-1][1] - ts[0][1]).total_seconds())
    conn.close()
    return {k: round(statistics.median(v), 4) for k, v in stages.items() if v}


STARTER_SETTINGS = {
    "blob": {"AzureWebJobs.EventGridStarter.Disabled": "true", "AzureWebJobs.BlobTriggerStarter.Disabled": "false"},
    "eventgrid": {"AzureWebJobs.EventGridStarter.Disabled": "false", "AzureWebJobs.BlobTriggerStarter.Disabled": "true"},
}


def run(count: int, workers: int, rate: float | None = None, poll_interval: float = 0.5,
        starter: str = "blob", previews: bool = True, size: tuple[int, int] | None = None) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    azurite = Azurite.start(port=free_port(), location=work / "azurite")
    sql = f"Driver={{SQLite3}};Database={work / 'images.db'};Timeout=2000;"
    SqlStore(sql).ensure_schema()
    ensure_container(azurite.connection_string, "images-input")
    host = HostProcess(work / "state", azurite.connection_string, sql,
                       {"DEVHOST_LOG": "ERROR", **STARTER_SETTINGS[starter],
                        "PreviewContainer": "images-previews" if previews else ""},
                       poll_interval=poll_interval, workers=workers)
    blobs = {f"bench/{i:05d}.{'png' if i % 2 else 'jpg'}":
             samples.encode(samples.picture(size or (64 + i % 50, 48), seed=i), "PNG" if i % 2 else "JPEG")
             for i in range(count)}
    uploaded: dict[str, float] = {}
    time.sleep(2)  # let the worker processes finish starting
    cpu_host0, cpu_az0 = cpu_seconds(host.proc.pid), cpu_seconds(azurite.process.pid)
    cpu_workers0 = children_cpu_seconds(host.proc.pid)

    def put(item: tuple[str, bytes]) -> None:
        upload_bytes(azurite.connection_string, "images-input", item[0], item[1])
        uploaded[item[0]] = time.time()

    start = time.time()
    if rate:
        for i, item in enumerate(blobs.items()):
            time.sleep(max(0.0, start + i / rate - time.time()))
            put(item)
    else:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(put, blobs.items()))
    upload_seconds = time.time() - start
    store = SqlStore(sql)
    deadline = time.monotonic() + 600
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = store.rows()
        if len(rows) >= count:
            break
        time.sleep(0.2)
    cpu_host, cpu_az = cpu_seconds(host.proc.pid) - cpu_host0, cpu_seconds(azurite.process.pid) - cpu_az0
    cpu_workers = children_cpu_seconds(host.proc.pid) - cpu_workers0
    host.stop()
    azurite.stop()
    if len(rows) < count:
        raise SystemExit(f"only {len(rows)} of {count} rows after 600 s")
    stats = json.loads((work / "state" / "host-stats.json").read_text())
    processed = {r["BlobName"]: datetime.strptime(r["ProcessedAt"], "%Y-%m-%d %H:%M:%S.%f")
                 .replace(tzinfo=UTC).timestamp() for r in rows}
    latencies = [processed[n] - uploaded[n] for n in blobs]
    span = max(processed.values()) - start
    shipped = stats["blob_trigger"] if starter == "blob" else stats["event_grid"]
    return {
        "starter": starter, "previews": previews, "image_size": list(size) if size else "64-113 x 48",
        # What reached the starter per image: the blob trigger's whole downloaded body, or the event JSON.
        "starter_input_bytes_per_image": {
            "blob_bytes": round(stats["blob_trigger"]["blob_bytes"] / count, 1),
            "event_json_bytes": round(stats["event_grid"]["event_bytes"] / count, 1),
            "mean_image_bytes": round(sum(len(b) for b in blobs.values()) / count, 1),
            "starter_invocations": shipped["invocations"],
        },
        "images": count, "host_workers": workers, "poll_interval_s": poll_interval, "cpus": os.cpu_count(),
        "upload_seconds": round(upload_seconds, 2),
        "images_per_s": round(count / span, 1),
        "latency_s": {"p50": round(pct(latencies, 0.5), 3), "p95": round(pct(latencies, 0.95), 3),
                      "max": round(max(latencies), 3)},
        "all_processed": all(r["Status"] == "processed" for r in rows),
        "upload_rate_per_s": rate or "as fast as 8 threads go",
        "cpu_seconds": {"host": round(cpu_host, 1), "activity_workers": round(cpu_workers, 1),
                        "azurite": round(cpu_az, 1),
                        "benchmark_client": round(time.process_time(), 1)},
        "median_stage_seconds": history_breakdown(work / "state" / "durable.db"),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--poll-interval", type=float, default=0.5)
    parser.add_argument("--rate", type=float, default=None, help="pace uploads at this many per second")
    parser.add_argument("--starter", choices=sorted(STARTER_SETTINGS), default="blob",
                        help="blob trigger (polling) or Event Grid (emulated) starter")
    parser.add_argument("--previews", choices=("on", "off"), default="on",
                        help="MakePreview beside ExtractMetadata (PreviewContainer set) or not")
    parser.add_argument("--size", default=None, help="every image WIDTHxHEIGHT (default: 64-113 x 48)")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x")) if args.size else None
    result = run(args.count, args.workers, args.rate, args.poll_interval, args.starter,
                 previews=args.previews == "on", size=size)  # type: ignore[arg-type]
    RESULTS.mkdir(exist_ok=True)
    stem = "pipeline" if args.starter == "blob" else "pipeline-eventgrid"
    if args.previews == "off":
        stem += "-nopreviews"
    if args.size:
        stem += f"-{args.size}"
    name = f"{stem}-rate{int(args.rate)}.json" if args.rate else f"{stem}.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
