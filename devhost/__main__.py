"""Command line: python -m devhost {demo,run,host,upload,show,status,reconcile,reindex}."""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import csv
import json
import logging
import mimetypes
import os
import signal
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from devhost.eventgrid import DeliveryPolicy
from devhost.functions import APP_ROOT
from devhost.host import HostConfig, LocalHost, load_local_settings, run_host
from devhost.services import Azurite, ServiceError, storage_connection_string
from shared.blob_access import check_storage, ensure_container, upload_bytes
from shared.errors import PipelineError
from shared.settings import INPUT_CONTAINER, check_sql_connection_string, parse_odbc_connection_string
from shared.store import SqlStore, connect

LOCAL = Path(os.environ.get("DEVHOST_LOCAL", APP_ROOT / ".local"))
TABLE_COLUMNS = ("BlobName", "Status", "Format", "Width", "Height", "FileSizeKB", "CameraModel",
                 "CapturedAt", "GpsLatitude", "GpsLongitude", "Error")


def _settings(azurite_port: int | None = None) -> dict[str, str]:
    values = load_local_settings()
    if azurite_port is not None and values.get("AzureWebJobsStorage") == "UseDevelopmentStorage=true":
        values["AzureWebJobsStorage"] = storage_connection_string(azurite_port)
    values.setdefault("SqlConnectionString", "")
    values["SqlConnectionString"] = _absolute_sqlite(values["SqlConnectionString"])
    return values


def _absolute_sqlite(cs: str) -> str:
    """Resolve a relative SQLite path against the app root (where `func start` runs) and make its folder."""
    try:
        pairs = parse_odbc_connection_string(cs)
    except PipelineError:
        return cs
    if pairs.get("driver", "").lower().startswith("sqlite") and pairs.get("database"):
        path = Path(pairs["database"])
        if not path.is_absolute():
            path = APP_ROOT / path
            cs = cs.replace(pairs["database"], str(path), 1)
        path.parent.mkdir(parents=True, exist_ok=True)
    return cs


def _preflight_sql(cs: str) -> None:
    check_sql_connection_string(cs)
    connect(cs).close()


def _print_rows(rows: list[dict[str, Any]], fmt: str, out: Any = sys.stdout) -> None:
    if fmt == "json":
        json.dump(rows, out, indent=2, default=str, ensure_ascii=False)
        out.write("\n")
        return
    if fmt == "csv":
        if rows:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return
    def cell(value: Any, width: int = 38, column: str = "") -> str:
        if value is None:
            text = ""
        elif isinstance(value, (float, Decimal)):
            text = f"{value:.2f}" if column == "FileSizeKB" else f"{value:.5f}"
        else:
            text = str(value).removesuffix(".000000")
        return text if len(text) <= width else text[: width - 1] + "…"
    table = [[cell(r.get(c), column=c) for c in TABLE_COLUMNS] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in table]) for i, c in enumerate(TABLE_COLUMNS)]
    line = "  ".join(c.ljust(w) for c, w in zip(TABLE_COLUMNS, widths, strict=True))
    out.write(line + "\n" + "  ".join("-" * w for w in widths) + "\n")
    for row in table:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) + "\n")
    out.write(f"({len(rows)} row{'s' if len(rows) != 1 else ''})\n")


def _collect(paths: list[str]) -> list[tuple[Path, str]]:
    files: list[tuple[Path, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += [(f, f.relative_to(path).as_posix()) for f in sorted(path.rglob("*")) if f.is_file()]
        elif path.is_file():
            files.append((path, path.name))
        else:
            raise SystemExit(f"upload: {raw!r} is neither a file nor a folder")
    return files


def upload_files(conn: str, files: list[tuple[str, bytes]], quiet: bool = False) -> list[Any]:
    ensure_container(conn, INPUT_CONTAINER)
    refs: list[Any] = []
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(upload_bytes, conn, INPUT_CONTAINER, name, data,
                               mimetypes.guess_type(name)[0]) for name, data in files]
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            refs.append(future.result())
            if not quiet and (done % 50 == 0 or done == len(files)):
                print(f"uploaded {done}/{len(files)}", flush=True)
    return refs


def cmd_upload(args: argparse.Namespace) -> int:
    values = _settings(args.azurite_port)
    conn = values["AzureWebJobsStorage"]
    problem = check_storage(conn)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    upload_files(conn, [(name, path.read_bytes()) for path, name in _collect(args.paths)])
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    cs = _settings()["SqlConnectionString"]
    _print_rows(SqlStore(cs).rows(), args.format)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from devhost.status import build_report
    from shared.status import render_table

    values = _settings(args.azurite_port)
    report = build_report(values["SqlConnectionString"], values["AzureWebJobsStorage"], LOCAL / "host" / "durable.db",
                          list_blobs=not args.no_list, max_blobs=args.max_blobs)
    if args.format == "json":
        json.dump(report, sys.stdout, default=str, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_table(report))
    return 0


def _run_pass(args: argparse.Namespace, pass_input: dict[str, Any]) -> int:
    """Start one pass on a local host (Azurite started unless --no-azurite), wait, print its totals."""
    from devhost.passes import run_pass

    LOCAL.mkdir(exist_ok=True)
    azurite = None
    if args.no_azurite:
        values = _settings()
    else:
        azurite, values = _start_stack(args.azurite_port)
    try:
        result = asyncio.run(run_pass(values, Path(args.state), pass_input, timeout=args.timeout,
                                      wait_runs=not args.no_wait_runs, workers=args.workers))
    finally:
        if azurite is not None:
            azurite.stop()
    json.dump(result, sys.stdout, default=str, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0 if result["runtimeStatus"] == "Completed" else 1


def cmd_reconcile(args: argparse.Namespace) -> int:
    from shared.reconcile_flow import pass_settings, reconcile_input

    return _run_pass(args, reconcile_input(pass_settings(_settings())))


def cmd_reindex(args: argparse.Namespace) -> int:
    from datetime import datetime

    from shared.models import STATUS_FAILED, STATUS_PROCESSED, STATUS_REJECTED
    from shared.reconcile_flow import pass_settings, reindex_input

    statuses = tuple(s.strip() for s in (args.status or "").split(",") if s.strip())
    allowed = (STATUS_PROCESSED, STATUS_REJECTED, STATUS_FAILED)
    if any(s not in allowed for s in statuses):
        raise SystemExit(f"reindex: STATUS must be a comma-separated list of {', '.join(allowed)}; got {args.status!r}"
                         " (deleted rows are never re-indexed)")
    before = None
    if args.before:
        try:
            before = datetime.fromisoformat(args.before)
        except ValueError:
            raise SystemExit(f"reindex: BEFORE={args.before!r} is not an ISO time, e.g. 2026-12-01T00:00:00Z") from None
    return _run_pass(args, reindex_input(pass_settings(_settings()), statuses=statuses, prefix=args.prefix or "",
                                         before=before))


def _host_config(values: dict[str, str], state: Path, port: int = 0, workers: int = 2) -> HostConfig:
    """EVENTGRID_DUPLICATE_RATE, EVENTGRID_REORDER_RATE and EVENTGRID_SEED tune the emulated Event Grid."""
    policy = DeliveryPolicy(duplicate_rate=float(os.environ.get("EVENTGRID_DUPLICATE_RATE", "0.1")),
                            reorder_rate=float(os.environ.get("EVENTGRID_REORDER_RATE", "0.2")),
                            seed=int(os.environ.get("EVENTGRID_SEED", "0")))
    return HostConfig(state_dir=state, port=port, workers=workers, settings=values, eventgrid=policy)


def cmd_host(args: argparse.Namespace) -> int:
    """The host alone, on whatever storage AzureWebJobsStorage names (tests start it like this)."""
    values = _settings(args.azurite_port)
    config = _host_config(values, Path(args.state), args.port, args.workers)
    config.poll_interval = args.poll_interval
    asyncio.run(run_host(config, ready=lambda h: print(f"host ready on port {h.port}", flush=True)))
    return 0


def _start_stack(port: int) -> tuple[Azurite, dict[str, str]]:
    values = _settings(port)
    _preflight_sql(values["SqlConnectionString"])
    azurite = Azurite.start(port=port, location=LOCAL / "azurite", log=LOCAL / "azurite.log")
    ensure_container(values["AzureWebJobsStorage"], INPUT_CONTAINER)
    return azurite, values


def cmd_run(args: argparse.Namespace) -> int:
    LOCAL.mkdir(exist_ok=True)
    azurite, values = _start_stack(args.azurite_port)

    def ready(host: LocalHost) -> None:
        print(f"Azurite on 127.0.0.1:{azurite.port}; watching '{INPUT_CONTAINER}'. Upload with "
              "'make upload FILES=...', see rows with 'make show'. Ctrl-C stops.", flush=True)
        print(f"Event Grid webhook: http://127.0.0.1:{host.port}/runtime/webhooks/eventgrid?functionName="
              f"EventGridStarter; run a timer now: POST http://127.0.0.1:{host.port}/admin/functions/<name>",
              flush=True)

    try:
        asyncio.run(run_host(_host_config(values, LOCAL / "host", args.port), ready=ready))
    finally:
        azurite.stop()
    print("stopped Azurite and the host")
    return 0


async def _demo(values: dict[str, str], timeout: float) -> int:
    from devhost.samples import demo_images

    host = LocalHost(_host_config(values, LOCAL / "host"))
    serving = asyncio.create_task(host.serve())
    try:
        images = demo_images()
        loop = asyncio.get_running_loop()
        refs = await loop.run_in_executor(None, upload_files, values["AzureWebJobsStorage"],
                                          list(images.items()))
        print(f"uploaded {len(refs)} sample blobs to '{INPUT_CONTAINER}'; waiting for their rows…", flush=True)
        store = SqlStore(values["SqlConnectionString"])
        wanted = {(r.name, r.etag) for r in refs}
        deadline = time.monotonic() + timeout
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            rows = [r for r in store.rows() if (r["BlobName"], r["ETag"]) in wanted]
            if len(rows) == len(wanted):
                break
            await asyncio.sleep(0.2)
        _print_rows(rows, "table")
        if len(rows) != len(wanted):
            missing = sorted(n for n, e in wanted if (n, e) not in {(r["BlobName"], r["ETag"]) for r in rows})
            print(f"error: no row after {timeout:.0f} s for {missing}; see .local/azurite.log", file=sys.stderr)
            return 1
        print(f"all {len(rows)} uploads indexed in ImageMetadata "
              f"({sum(r['Status'] == 'processed' for r in rows)} processed, "
              f"{sum(r['Status'] == 'rejected' for r in rows)} rejected)")
        return 0
    finally:
        host.stop()
        await serving


def cmd_demo(args: argparse.Namespace) -> int:
    LOCAL.mkdir(exist_ok=True)
    azurite, values = _start_stack(args.azurite_port)
    try:
        return asyncio.run(_demo(values, args.timeout))
    finally:
        azurite.stop()


def cmd_azurite(args: argparse.Namespace) -> int:
    """Azurite's blob, queue and table services, for `func start` (the Durable extension keeps its
    state in queues and tables), until Ctrl-C; it stops with this command however it is stopped."""
    LOCAL.mkdir(exist_ok=True)
    port = args.azurite_port
    azurite = Azurite.start(port=port, location=LOCAL / "azurite-func", log=LOCAL / "azurite-func.log",
                            all_services=True)
    hint = "UseDevelopmentStorage=true" if port == 10000 else "not the default ports: set AzureWebJobsStorage"
    print(f"Azurite blob/queue/table on 127.0.0.1:{port}/{port + 1}/{port + 2} ({hint}); "
          "now run 'func start' in another terminal. Ctrl-C stops.", flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        azurite.stop()
    return 0


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    """Before the host's own handlers are installed, SIGTERM still unwinds (and stops Azurite)."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    parser = argparse.ArgumentParser(prog="python -m devhost", description=__doc__)
    parser.add_argument("--azurite-port", type=int, default=int(os.environ.get("AZURITE_PORT", "10000")))
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="index the sample images end to end, print the table, stop")
    demo.add_argument("--timeout", type=float, default=120)
    run = sub.add_parser("run", help="Azurite + host until Ctrl-C")
    run.add_argument("--port", type=int, default=0)
    host = sub.add_parser("host", help="the host alone, on the configured storage")
    host.add_argument("--state", required=True)
    host.add_argument("--port", type=int, default=0)
    host.add_argument("--workers", type=int, default=2)
    host.add_argument("--poll-interval", type=float, default=0.5)
    sub.add_parser("azurite", help="Azurite blob + queue + table for `func start`, until Ctrl-C")
    upload = sub.add_parser("upload", help="upload files or folders into images-input")
    upload.add_argument("paths", nargs="+")
    show = sub.add_parser("show", help="print the ImageMetadata table")
    show.add_argument("--format", choices=("table", "json", "csv"), default="table")
    status = sub.add_parser("status", help="the pipeline's status report (rows, reasons, latency, backlog)")
    status.add_argument("--format", choices=("table", "json"), default="table")
    status.add_argument("--max-blobs", type=int, default=100_000,
                        help="stop listing the container after this many blobs (the count is then partial)")
    status.add_argument("--no-list", action="store_true", help="do not list the container (table only)")
    for name, text in (("reconcile", "one reconciliation pass now: start what has no final row, mark rows of "
                                     "gone blobs; waits, prints its totals as JSON"),
                       ("reindex", "re-index rows (default: written by an older ExtractorVersion); waits, "
                                   "prints its totals as JSON")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--state", default=str(LOCAL / "host"), help="the local host's task hub folder")
        cmd.add_argument("--timeout", type=float, default=3600)
        cmd.add_argument("--workers", type=int, default=2)
        cmd.add_argument("--no-azurite", action="store_true",
                         help="use the storage AzureWebJobsStorage names instead of starting Azurite")
        cmd.add_argument("--no-wait-runs", action="store_true", help="return when the pass ends, before its runs do")
        if name == "reindex":
            cmd.add_argument("--status", help="only rows with these statuses, e.g. failed,rejected")
            cmd.add_argument("--prefix", help="only blobs whose name starts with this")
            cmd.add_argument("--before", help="only rows written before this ISO time")
    args = parser.parse_args(argv)
    quiet = args.command in ("demo", "show", "upload", "status", "reconcile", "reindex")
    logging.basicConfig(level=os.environ.get("DEVHOST_LOG", "ERROR" if quiet else "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "azurite":
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    handlers = {"azurite": cmd_azurite, "demo": cmd_demo, "run": cmd_run, "host": cmd_host, "upload": cmd_upload, "show": cmd_show,
                "status": cmd_status, "reconcile": cmd_reconcile, "reindex": cmd_reindex}
    try:
        return handlers[args.command](args)
    except (ServiceError, PipelineError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
