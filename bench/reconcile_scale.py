"""Reconciliation at 100,000 blobs: what a first pass and a routine pass cost, counted outside the app.

    .venv/bin/python -m bench.reconcile_scale [--count 100000] [--db postgresql|sqlite]

Seeding (timed apart from the passes): one tiny PNG is uploaded to a fresh Azurite through the SDK,
Azurite is stopped, and its metadata file is rewritten to hold N copies of that blob (each its own
name and ETag; see ``write_blobs`` for why not N uploads), then Azurite starts on it with its
request log on. The table gets a processed row at the current extractor version for 89 % of the
blobs, none for 10 %, a failed row for 0.3 %; 1 % get a row while their blob is left out of
storage: deleted behind the table's back.

Each pass runs in this process against the local engine standing in for the Durable extension;
the ImageOrchestrator runs it starts are recorded Pending and never run (their cost is the
pipeline's, measured per image by bench.capacity; here it would only blur the pass's own cost).
Between the first pass and the routine pass the benchmark writes the row each started run would
have written, so the routine pass meets a container where every blob has its final row.

What is counted, and where:

* storage requests (List Blobs, Get Blob Properties, ...): Azurite's request log (``--debug``),
  every request whichever process or thread sent it;
* SQL statements: PostgreSQL's statement log (``log_statement=all``), every statement of every
  session; on SQLite (no server), a counting wrapper around the cursors of the connections the
  app's store opens in this process;
* starts: instances created in the engine's task hub, by orchestrator name;
* wall time, CPU seconds of this process, and its peak resident memory during the pass
  (``VmHWM`` after resetting it through ``/proc/self/clear_refs``) above its size at the start.

Results go to bench/results/reconcile-<db>-<count>.json with per-blob rates and projections to
1 million and 10 million blobs (docs/capacity.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.capacity import sql_statements, storage_requests
from devhost.functions import APP_ROOT, discover, registries
from devhost.samples import encode, picture
from devhost.services import Azurite, Postgres, free_port
from devhost.worker import load_app
from shared.blob_access import blob_version, ensure_container, upload_bytes
from shared.keyfilter import bytes_for
from shared.models import STATUS_FAILED, STATUS_PROCESSED, BlobRef, ImageRecord, normalise_etag
from shared.store import SqlStore, store_for
from shared.store import store as store_module
from tests.durable import counting_client, pipeline_engine

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


class CountingCursor:
    """A pyodbc cursor that counts what it executes (SQLite has no server log to count from)."""

    def __init__(self, cursor: Any, counts: Counter[str]) -> None:
        self._cursor = cursor
        self._counts = counts

    def execute(self, sql: str, *params: Any) -> Any:
        self._counts[sql.split(None, 1)[0].upper()] += 1
        return self._cursor.execute(sql, *params)

    def executemany(self, sql: str, params: Any) -> Any:
        self._counts[sql.split(None, 1)[0].upper()] += len(params)
        return self._cursor.executemany(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor)


class CountingConnection:
    def __init__(self, conn: Any, counts: Counter[str]) -> None:
        self._conn = conn
        self._counts = counts

    def cursor(self) -> CountingCursor:
        return CountingCursor(self._conn.cursor(), self._counts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@contextmanager
def counted_connections(counts: Counter[str]) -> Iterator[None]:
    """Connections the store opens meanwhile count their statements into ``counts``."""
    original, dialect_for = store_module.connect, store_module.dialect_for
    store_module.connect = lambda cs: CountingConnection(original(cs), counts)  # type: ignore[assignment]
    # The dialect is read from the driver's own connection object.
    store_module.dialect_for = lambda conn: dialect_for(getattr(conn, "_conn", conn))  # type: ignore[assignment]
    try:
        yield
    finally:
        store_module.connect, store_module.dialect_for = original, dialect_for  # type: ignore[assignment]


def forget_connections() -> None:
    """Drop every thread's cached store connection, so the next statements go through new ones."""
    store_module._local.__dict__.clear()


def _rss_kb(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def instances_by_name(engine: Any) -> Counter[str]:
    return Counter(dict(engine.db.execute("SELECT name, count(*) FROM instances GROUP BY name").fetchall()))


def history_bytes(engine: Any, name: str) -> int:
    """Bytes of history, input, output and custom status the task hub keeps for ``name``'s instances."""
    row = engine.db.execute(
        "SELECT coalesce(sum(length(coalesce(history, '')) + length(coalesce(input, '')) + "
        "length(coalesce(output, '')) + length(coalesce(custom_status, ''))), 0) FROM instances WHERE name = ?",
        (name,)).fetchone()
    return int(row[0])


@dataclass
class Meters:
    """Where each counter reads from; ``measure`` returns what one pass added to each."""

    azurite_log: Path
    pg_log: Path | None
    engine: Any
    sql_counts: Counter[str] = field(default_factory=Counter)

    def measure(self, run: Callable[[], Awaitable[Any]]) -> tuple[Any, dict[str, Any]]:
        az_offset = self.azurite_log.stat().st_size
        pg_offset = self.pg_log.stat().st_size if self.pg_log else 0
        before_sql = Counter(self.sql_counts)
        before_instances = instances_by_name(self.engine)
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
            requests, _ = storage_requests(log.read().decode(errors="replace"))
        if self.pg_log:
            with self.pg_log.open("rb") as log:
                log.seek(pg_offset)
                statements = sql_statements(log.read().decode(errors="replace"))
        else:
            statements = self.sql_counts - before_sql
        starts = instances_by_name(self.engine) - before_instances
        return result, {
            "seconds": round(seconds, 2),
            "cpu_seconds_this_process": round(cpu_end.ru_utime + cpu_end.ru_stime
                                              - cpu_start.ru_utime - cpu_start.ru_stime, 2),
            "peak_rss_mb_above_start": round((peak - rss_start) / 1024, 1),
            "rss_mb_at_start": round(rss_start / 1024, 1),
            "storage_requests": dict(requests.most_common()),
            "storage_requests_total": sum(requests.values()),
            "sql_statements": dict(statements.most_common()),
            "sql_statements_total": sum(statements.values()),
            "sql_app_statements": sum(v for k, v in statements.items() if k in APP_STATEMENTS),
            "starts": dict(starts),
        }


# ---- the designs ---------------------------------------------------------------------------


def invocation_pass(engine: Any, storage: str, sql: str) -> Callable[[], Awaitable[Any]]:
    """The one-invocation reconciliation (shared.reconcile) as the ReconcileBlobs timer runs it."""
    from shared.reconcile import reconcile

    async def run() -> dict[str, Any]:
        async with counting_client(engine) as client:
            report = await reconcile(client, container=CONTAINER, storage_connection=storage,
                                     sql_connection=sql, retry_delays=(5.0,))
        return report.to_dict()

    return run


DESIGNS: dict[str, Callable[[Any, str, str], Callable[[], Awaitable[Any]]]] = {"invocation": invocation_pass}


# ---- the run -------------------------------------------------------------------------------


def progress(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def run(count: int, db: str, design: str) -> dict[str, Any]:
    """Seed a fresh Azurite and database, then measure ``design``'s first and routine pass."""
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

        worker = load_app(APP_ROOT)
        orchestrators = registries(worker, discover())[0]
        result: dict[str, Any] = {
            "count": count, "db": db,
            "seeding": {"blobs_seconds": round(seed_seconds, 1), "rows_seconds": round(rows_seconds, 1),
                        **planted.counts()},
        }
        engine = pipeline_engine(orchestrators)  # starts recorded Pending, never run
        sql_counts: Counter[str] = Counter()
        meters = Meters(azurite_log, postgres.datadir.parent / "log" if postgres else None, engine, sql_counts)
        started = {*planted.no_row, *planted.failed}
        with counted_connections(sql_counts):
            forget_connections()
            first_report, first = meters.measure(DESIGNS[design](engine, storage, sql))
            progress(f"first pass: {first['seconds']} s")
            # Every started run finished: its row is written (what ImageOrchestrator would do).
            write_rows(sql, [ImageRecord.for_blob(r, STATUS_PROCESSED, instance_id="bench")
                             for r in present if r.name in started])
            forget_connections()
            routine_report, routine = meters.measure(DESIGNS[design](engine, storage, sql))
        first["report"], routine["report"] = first_report, routine_report
        result.update(first_pass=first, routine_pass=routine, projections=project(count, first, routine))
        engine.close()
        worker.close()
        return result
    finally:
        azurite.stop()
        if postgres:
            postgres.destroy()
        shutil.rmtree(work, ignore_errors=True)


def _per_blob(value: float, count: int) -> float:
    return value / count if count else 0.0


def project(count: int, first: dict[str, Any], routine: dict[str, Any]) -> dict[str, Any]:
    """Scale the measured counts to 1 M and 10 M blobs with the same mix.

    List calls grow with ceil(N / 5,000) and the table's reads with ceil(N / page): both linear in
    N by page; starts and property reads are linear in the planted fractions; wall time scales
    linearly only while the database and storage keep their per-call latency (see docs)."""
    out = {}
    for scale in SCALES:
        factor = scale / count
        out[str(scale)] = {
            "first_pass": {
                "storage_requests": {k: math.ceil(v * factor) for k, v in first["storage_requests"].items()},
                "sql_statements_total": math.ceil(first["sql_statements_total"] * factor),
                "sql_app_statements": math.ceil(first["sql_app_statements"] * factor),
                "starts": {k: math.ceil(v * factor) for k, v in first["starts"].items()},
                "minutes_at_measured_rate": round(first["seconds"] * factor / 60, 1),
            },
            "routine_pass": {
                "storage_requests": {k: math.ceil(v * factor) for k, v in routine["storage_requests"].items()},
                "sql_statements_total": math.ceil(routine["sql_statements_total"] * factor),
                "sql_app_statements": math.ceil(routine["sql_app_statements"] * factor),
                "minutes_at_measured_rate": round(routine["seconds"] * factor / 60, 1),
            },
            "listing_filter_megabytes": round(bytes_for(scale) / 1e6, 1),
        }
    out["per_blob"] = {
        "first_pass_ms": round(1000 * _per_blob(first["seconds"], count), 3),
        "routine_pass_ms": round(1000 * _per_blob(routine["seconds"], count), 3),
        "first_pass_sql_app_statements": round(_per_blob(first["sql_app_statements"], count), 4),
        "routine_pass_sql_app_statements": round(_per_blob(routine["sql_app_statements"], count), 4),
    }
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="postgresql")
    parser.add_argument("--design", choices=sorted(DESIGNS), default="invocation")
    args = parser.parse_args()
    measured = run(args.count, args.db, args.design)
    # One file per database and size; each design's run (its own fresh seeding) adds its section.
    path = RESULTS / f"reconcile-{args.db}-{args.count}.json"
    result = json.loads(path.read_text()) if path.exists() else {}
    result.setdefault("designs", {})[args.design] = measured
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(measured, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
