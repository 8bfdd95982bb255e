"""Reconciliation at 100,000 blobs: what a first pass and a routine pass cost, counted outside the app.

    .venv/bin/python -m bench.reconcile_scale [--count 100000] [--db postgresql|sqlite] [--starts-per-second 50]

Seeding (timed apart from the passes): one tiny PNG is uploaded to a fresh Azurite through the SDK,
Azurite is stopped, and its metadata file is rewritten to hold N copies of that blob (each its own
name and ETag; see ``write_blobs`` for why not N uploads), then Azurite starts on it with its
request log on. The table gets a processed row at the current extractor version for 89 % of the
blobs, none for 10 %, a failed row for 0.3 %; 1 % get a row while their blob is left out of
storage: deleted behind the table's back.

Each pass is one ReconcileOrchestrator pass through the local host (``devhost.passes.run_pass``:
the host in this process, its activities in 2 worker processes, all through Microsoft's worker),
paced at ``ReconcileStartsPerSecond``. The ImageOrchestrator runs it starts are executed by that
host while the pass goes on, as on Azure, and waited for; their rows are what the routine pass
then finds. The pass's own costs are told apart from the runs' by what they are (below).

What is counted, and where:

* storage requests by container and kind: Azurite's request log (``--debug``), every request of
  every process. List Blobs and Get Blob Properties on the images are the pass's; ranged Get Blob
  on the images is the runs'; requests on ``reconcile-state`` are the pass's listed keys;
* SQL statements: the pass's own count (its result), and PostgreSQL's statement log
  (``log_statement=all``) for every session's, the runs' writes included; SQLite has no server
  log, so on SQLite only the pass's own count is given;
* starts and the bytes the task hub keeps: the host's task hub (``durable.db``), by name;
* wall time, CPU seconds of this process, its peak resident memory during the pass (``VmHWM``
  after a reset through ``/proc/self/clear_refs``) above its size at the start, and the largest
  worker process's peak.

Results go to bench/results/reconcile-<db>-<count>.json with per-blob rates and projections to
1 million and 10 million blobs (docs/capacity.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import re
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.capacity import sql_statements
from devhost.passes import environment, run_pass
from devhost.samples import encode, picture
from devhost.services import Azurite, Postgres, free_port
from shared.blob_access import blob_version, ensure_container, upload_bytes
from shared.models import STATUS_FAILED, STATUS_PROCESSED, BlobRef, ImageRecord, normalise_etag
from shared.reconcile_flow import PassSettings, reconcile_input
from shared.store import SqlStore, store_for

RESULTS = Path(__file__).resolve().parent / "results"
CONTAINER = "images-input"
NO_ROW, DELETED, FAILED = 0.10, 0.01, 0.003
SCALES = (1_000_000, 10_000_000)
# What the app's store sends; the rest (BEGIN, COMMIT, SAVEPOINT, SET) is psqlODBC's own framing,
# which Azure SQL's drivers do not send as statements.
APP_STATEMENTS = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "WITH"})


# ---- seeding -------------------------------------------------------------------------------


def blob_names(count: int) -> list[str]:
    return [f"{i % 97:02d}/photo-{i:07d}.png" for i in range(count)]


def cloned_refs(template: BlobRef, names: list[str]) -> list[BlobRef]:
    """The versions ``write_blobs`` gives these names: the template's content, each its own ETag."""
    base = int(normalise_etag(template.etag), 16)
    folder = template.url.rsplit("/", 1)[0] if "/" not in template.name else template.url[: -len(template.name) - 1]
    return [BlobRef(container=CONTAINER, name=name, etag=f"0x{base + at + 1:015X}", size=template.size,
                    last_modified=template.last_modified, url=f"{folder}/{name}", content_type=template.content_type)
            for at, name in enumerate(names)]


def write_blobs(location: Path, template: BlobRef, refs: list[BlobRef]) -> None:
    """Make ``refs`` the stopped Azurite's blobs at ``location``, as copies of the template blob
    (same content and extent, their own names and ETags).

    Uploading through the API is quadratic in Azurite (every Put Blob scans the account's blobs:
    about 90 a second past 20,000 on this machine), so the container is written the way Azurite
    itself persists it (its LokiJS metadata file); everything after that, listing included, is
    Azurite serving requests."""
    path = location / "__azurite_db_blob__.json"
    db = json.loads(path.read_text())
    blobs = next(c for c in db["collections"] if c["name"] == "$BLOBS_COLLECTION$")
    (model,) = [d for d in blobs["data"] if d["name"] == template.name]
    data = []
    for at, ref in enumerate(refs):
        doc = json.loads(json.dumps(model))
        doc.update(name=ref.name, **{"$loki": at + 1})
        doc["properties"]["etag"] = f'"{ref.etag}"'
        data.append(doc)
    blobs["data"], blobs["maxId"], blobs["idIndex"] = data, len(data), None
    by_name = sorted(range(len(data)), key=lambda i: data[i]["name"])
    for field_name, index in blobs["binaryIndices"].items():
        index.update(dirty=False, values=by_name if field_name == "name" else list(range(len(data))))
    path.write_text(json.dumps(db))


@dataclass
class Planted:
    no_row: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"no_row": len(self.no_row), "failed_rows": len(self.failed), "deleted_blobs": len(self.deleted)}


def plant(refs: list[BlobRef], seed: int = 1) -> tuple[Planted, list[ImageRecord]]:
    """Which blobs get no row, a failed row, a row and then deletion; the records to write."""
    rng = random.Random(seed)
    planted = Planted()
    records = []
    for ref in refs:
        roll = rng.random()
        if roll < NO_ROW:
            planted.no_row.append(ref.name)
            continue
        status = STATUS_PROCESSED
        if roll < NO_ROW + DELETED:
            planted.deleted.append(ref.name)
        elif roll < NO_ROW + DELETED + FAILED:
            planted.failed.append(ref.name)
            status = STATUS_FAILED
        records.append(ImageRecord.for_blob(ref, status, instance_id="bench", error="bench" if status == STATUS_FAILED
                                            else None))
    return planted, records


def write_rows(sql: str, records: list[ImageRecord], threads: int = 4) -> None:
    """Each record through the store's own upsert (its statements, its types), a few threads at once."""
    SqlStore(sql).ensure_schema()

    def chunk(part: list[ImageRecord]) -> None:
        store = store_for(sql)
        for record in part:
            store.upsert(record)
        store.close()

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(chunk, [records[i::threads] for i in range(threads)]))


# ---- counting ------------------------------------------------------------------------------

_REQUEST = re.compile(r"RequestMethod=(\w+) RequestURL=\S+?/devstoreaccount1/([^/?\s]*)/?([^?\s]*)(\?\S*)? "
                      r"RequestHeaders:(\{.*\})")


def storage_requests(log_text: str) -> Counter[str]:
    """Requests by container and kind ("images-input List Blobs"), from Azurite's request log."""
    kinds: Counter[str] = Counter()
    for match in _REQUEST.finditer(log_text):
        method, container, blob, query, headers = match.groups()
        query = query or ""
        if "comp=list" in query:
            kind = "List Blobs"
        elif "comp=appendblock" in query:
            kind = "Append Block"
        elif method == "GET" and blob:
            kind = "Get Blob (ranged)" if '"x-ms-range"' in headers or '"range"' in headers else "Get Blob"
        elif method == "HEAD" and blob:
            kind = "Get Blob Properties"
        elif method == "PUT" and blob:
            kind = "Put Blob"
        elif method == "DELETE" and blob:
            kind = "Delete Blob"
        else:
            kind = f"{method} {'blob' if blob else 'container'} {query[:30]}".strip()
        kinds[f"{container} {kind}"] += 1
    return kinds


def _rss_kb(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def task_hub(state_dir: Path) -> dict[str, Any]:
    """Instances in the local host's task hub by name and status, and the bytes each name keeps."""
    path = state_dir / "durable.db"
    if not path.exists():
        return {"instances": {}, "bytes": {}}
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT name, status, count(*), sum(length(coalesce(history, '')) + length(coalesce(input, '')) + "
            "length(coalesce(output, '')) + length(coalesce(custom_status, ''))) FROM instances "
            "GROUP BY name, status").fetchall()
    instances: dict[str, dict[str, int]] = {}
    kept: Counter[str] = Counter()
    for name, status, number, size in rows:
        instances.setdefault(name, {})[status] = number
        kept[name] += size or 0
    return {"instances": instances, "bytes": dict(kept)}


def _created(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    counts = {name: sum(by_status.values()) - sum(before["instances"].get(name, {}).values())
              for name, by_status in after["instances"].items()}
    return {name: n for name, n in counts.items() if n}


@dataclass
class Meters:
    """Where each counter reads from; ``measure`` returns what one pass added to each."""

    azurite_log: Path
    pg_log: Path | None
    state_dir: Path

    def measure(self, run: Callable[[], Awaitable[Any]]) -> tuple[Any, dict[str, Any]]:
        az_offset = self.azurite_log.stat().st_size
        pg_offset = self.pg_log.stat().st_size if self.pg_log else 0
        hub_before = task_hub(self.state_dir)
        Path("/proc/self/clear_refs").write_text("5")
        rss_start = _rss_kb("VmRSS")
        cpu_start = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        result = asyncio.run(run())
        seconds = time.perf_counter() - started
        cpu_end = resource.getrusage(resource.RUSAGE_SELF)
        peak = _rss_kb("VmHWM")
        with self.azurite_log.open("rb") as log:
            log.seek(az_offset)
            requests = storage_requests(log.read().decode(errors="replace"))
        statements: Counter[str] = Counter()
        if self.pg_log:
            with self.pg_log.open("rb") as log:
                log.seek(pg_offset)
                statements = sql_statements(log.read().decode(errors="replace"))
        hub = task_hub(self.state_dir)
        return result, {
            "seconds": round(seconds, 2),
            "cpu_seconds_this_process": round(cpu_end.ru_utime + cpu_end.ru_stime
                                              - cpu_start.ru_utime - cpu_start.ru_stime, 2),
            "peak_rss_mb_above_start": round((peak - rss_start) / 1024, 1),
            "rss_mb_at_start": round(rss_start / 1024, 1),
            # The largest worker process the host spawned and that has exited (the activities ran there).
            "worker_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
            "storage_requests": dict(requests.most_common()),
            "storage_requests_total": sum(requests.values()),
            # Every session's statements (PostgreSQL only: SQLite has no server log).
            "sql_statements": dict(statements.most_common()) if self.pg_log else None,
            "sql_app_statements": sum(v for k, v in statements.items() if k in APP_STATEMENTS)
            if self.pg_log else None,
            "starts": _created(hub_before, hub),
            "task_hub": hub,
        }


# ---- the design ----------------------------------------------------------------------------


def orchestration_pass(state_dir: Path, settings: dict[str, str], pass_input: dict[str, Any],
                       timeout: float) -> Callable[[], Awaitable[dict[str, Any]]]:
    """One pass of the ReconcileOrchestrator through the local host (``devhost.passes.run_pass``),
    the runs it starts executed by that host and waited for (their rows are what the routine pass
    then finds)."""

    async def run() -> dict[str, Any]:
        report = await run_pass(settings, state_dir, pass_input, timeout=timeout, wait_runs=True, workers=2)
        if report.get("runtimeStatus") != "Completed" or not report.get("result"):
            raise RuntimeError(f"the reconciliation pass did not complete: {json.dumps(report)[:2000]}")
        return report

    return run


# ---- the run -------------------------------------------------------------------------------


def progress(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def run(count: int, db: str, pace: PassSettings, timeout: float = 3600) -> dict[str, Any]:
    """Seed a fresh Azurite and database, then measure a first and a routine pass."""
    work = Path(tempfile.mkdtemp(prefix="bench-reconcile-scale-"))
    azurite_log = work / "azurite-requests.log"
    azurite = Azurite.start(port=free_port(), location=work / "azurite")
    postgres = Postgres.create({"log_statement": "all"}) if db == "postgresql" else None
    try:
        storage = azurite.connection_string
        sql = (postgres.create_database("bench") if postgres
               else f"Driver={{SQLite3}};Database={work / 'images.db'};Timeout=2000;")
        ensure_container(storage, CONTAINER)
        t0 = time.perf_counter()
        upload_bytes(storage, CONTAINER, "template.png", encode(picture((16, 8)), "PNG"), "image/png")
        template = blob_version(storage, CONTAINER, "template.png")
        assert template is not None
        azurite.stop()
        refs = cloned_refs(template, blob_names(count))
        planted, records = plant(refs)
        gone = set(planted.deleted)
        present = [r for r in refs if r.name not in gone]
        del refs
        # The deleted blobs' rows are written, their blobs are not: deleted behind the table's back.
        write_blobs(azurite.location, template, present)
        azurite = Azurite.start(port=azurite.port, location=azurite.location, debug=azurite_log)
        storage = azurite.connection_string
        seed_seconds = time.perf_counter() - t0
        progress(f"seeded {len(present)} blobs in {seed_seconds:.0f} s")
        t0 = time.perf_counter()
        write_rows(sql, records)
        rows_seconds = time.perf_counter() - t0
        progress(f"wrote {len(records)} rows in {rows_seconds:.0f} s")
        del records

        result: dict[str, Any] = {
            "count": count, "db": db,
            "seeding": {"blobs_seconds": round(seed_seconds, 1), "rows_seconds": round(rows_seconds, 1),
                        **planted.counts()},
            "settings": asdict(pace),
        }
        state_dir = work / "host"
        meters = Meters(azurite_log, postgres.datadir.parent / "log" if postgres else None, state_dir)
        # Previews off: the runs the pass starts are the metadata pipeline only, so that their
        # requests and statements separate from the pass's by kind (docs/capacity.md section 7;
        # the preview step's own cost is docs/previews.md's).
        settings = {"AzureWebJobsStorage": storage, "SqlConnectionString": sql, "RetryDelaysSeconds": "0.5,1,2",
                    "PreviewContainer": ""}
        one_pass = orchestration_pass(state_dir, settings, reconcile_input(pace), timeout)
        # The local host takes a setting from the environment when it is there (as `func start`
        # does), and keeps what an earlier host of this process put there: this run's must win.
        with environment(settings):
            first_report, first = meters.measure(one_pass)
            progress(f"first pass: {first['seconds']} s")
            routine_report, routine = meters.measure(one_pass)
            progress(f"routine pass: {routine['seconds']} s")
        first["report"], routine["report"] = first_report, routine_report
        result.update(first_pass=first, routine_pass=routine, projections=project(count, first, routine))
        return result
    finally:
        azurite.stop()
        if postgres:
            postgres.destroy()
        shutil.rmtree(work, ignore_errors=True)


def project(count: int, first: dict[str, Any], routine: dict[str, Any]) -> dict[str, Any]:
    """Scale the measured counts to 1 M and 10 M blobs with the same mix (docs/capacity.md says
    which grow linearly and which do not)."""
    out: dict[str, Any] = {}
    rate = first["report"]["result"]["startsPerSecondLimit"]
    for scale in SCALES:
        factor = scale / count
        out[str(scale)] = {}
        for name, measured in (("first_pass", first), ("routine_pass", routine)):
            totals = measured["report"]["result"]
            out[str(scale)][name] = {
                "list_calls": math.ceil(scale * (1 - DELETED) / 5000),
                "property_reads": math.ceil(totals["propertyReads"] * factor),
                "pass_sql_statements": math.ceil(totals["sqlStatements"] * factor),
                "starts": math.ceil(totals["started"] * factor),
                # Linear in N overstates: 2 x 256 bucket creations and deletions per pass are fixed,
                # and a table page reads fewer buckets as N grows (docs/capacity.md has the model).
                "state_calls_linear_upper_bound": math.ceil(totals["stateCalls"] * factor),
                "state_megabytes": round(totals["stateBytes"] * factor / 1e6, 1),
                "pass_minutes_at_measured_rate": round(measured["report"]["passSeconds"] * factor / 60, 1),
                "minutes_of_pacing_at_start_limit": round(totals["started"] * factor / rate / 60, 1),
            }
    out["per_1000_blobs"] = {
        name: {"pass_seconds": round(1000 * m["report"]["passSeconds"] / count, 3),
               "pass_sql_statements": round(1000 * m["report"]["result"]["sqlStatements"] / count, 2),
               "state_calls": round(1000 * m["report"]["result"]["stateCalls"] / count, 2),
               "state_bytes": round(1000 * m["report"]["result"]["stateBytes"] / count)}
        for name, m in (("first_pass", first), ("routine_pass", routine))}
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="postgresql")
    parser.add_argument("--starts-per-second", type=float, default=PassSettings().startsPerSecond,
                        help="ReconcileStartsPerSecond (default: the app's default)")
    args = parser.parse_args()
    measured = run(args.count, args.db, PassSettings(startsPerSecond=args.starts_per_second))
    # One file per database and size, one section per design ("invocation" was measured at commit
    # 47d673e, before the orchestration replaced it).
    path = RESULTS / f"reconcile-{args.db}-{args.count}.json"
    result = json.loads(path.read_text()) if path.exists() else {}
    result.setdefault("designs", {})["orchestration"] = measured
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(measured, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
