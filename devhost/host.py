"""The local host: blob trigger, durable client endpoint and orchestration engine in one process.

It does what the Functions host and the Durable extension do for this app:
polls the trigger's container, keeps a durable receipt per blob version so each
version fires once (across restarts too), passes poison blobs aside after a
bounded number of failed starts, serves the client HTTP API on 127.0.0.1, and
drives orchestrations and activities (a bounded thread pool) through the engine.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing as mp
import os
import secrets
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from devhost.blob_trigger import trigger_input
from devhost.client_api import build_app, client_binding
from devhost.engine import Engine, WorkItem, invoke_activity
from devhost.eventgrid import ContainerDiff, DeliveryPolicy, EventGridEmulator, webhook_handler
from devhost.functions import APP_ROOT, FunctionSpec, discover, registries
from devhost.timers import next_occurrence, resolve_schedule, timer_input
from devhost.worker import Data, FunctionWorker, load_app
from shared.blob_access import list_blob_refs, service_client
from shared.models import BlobRef

log = logging.getLogger("devhost")

_RECEIPTS = """
CREATE TABLE IF NOT EXISTS receipts (
    function TEXT NOT NULL, container TEXT NOT NULL, name TEXT NOT NULL, etag TEXT NOT NULL,
    status TEXT NOT NULL, tries INTEGER NOT NULL, reason TEXT, updated_at REAL NOT NULL,
    PRIMARY KEY (function, container, name, etag)
)
"""


def load_local_settings(app_root: Path = APP_ROOT) -> dict[str, str]:
    """local.settings.json Values, as `func start` reads them; environment variables win."""
    path = app_root / "local.settings.json"
    values = json.loads(path.read_text()).get("Values", {}) if path.exists() else {}
    merged = {k: str(v) for k, v in values.items()}
    merged.update({k: os.environ[k] for k in merged if k in os.environ})
    return merged


def apply_settings(values: dict[str, str]) -> None:
    for key, value in values.items():
        os.environ.setdefault(key, value)


def kill_point(name: str) -> None:
    """Test hook: DEVHOST_KILL_AT=point:n SIGKILLs this process the n-th time it passes point."""
    spec = os.environ.get("DEVHOST_KILL_AT", "")
    if not spec.startswith(name + ":"):
        return
    counter = _KILL_COUNTS[name] = _KILL_COUNTS.get(name, 0) + 1
    if counter >= int(spec.split(":", 1)[1]):
        log.warning("DEVHOST_KILL_AT reached %s #%d: SIGKILL", name, counter)
        os.kill(os.getpid(), signal.SIGKILL)


_KILL_COUNTS: dict[str, int] = {}


@dataclass
class HostConfig:
    state_dir: Path
    port: int = 0
    workers: int = 2
    poll_interval: float = 0.5
    max_start_tries: int = 5
    task_hub: str = "ImageIndexHub"
    app_root: Path = APP_ROOT
    settings: dict[str, str] = field(default_factory=dict)
    # The container the emulated Event Grid subscription covers, and how it delivers.
    eventgrid_container: str = "images-input"
    eventgrid: DeliveryPolicy = field(default_factory=DeliveryPolicy)


@dataclass
class BlobWatch:
    spec: FunctionSpec
    container: str
    connection_string: str
    client_param: str


class LocalHost:
    def __init__(self, config: HostConfig) -> None:
        self.config = config
        config.state_dir.mkdir(parents=True, exist_ok=True)
        apply_settings(config.settings)
        self.specs = discover(config.app_root)
        # Starter and orchestrator episodes run through Microsoft's worker in this process; activities
        # through the same worker code in the worker processes below.
        self.worker = load_app(config.app_root, [s.folder for s in self.specs.values()])
        for name, error in self.worker.load_errors.items():
            log.error("function %s failed to load in the worker (as it would in Azure): %s", name, error)
        orchestrators, _ = registries(self.worker, self.specs)
        self.engine = Engine(str(config.state_dir / "durable.db"), orchestrators, {})
        self.engine.db.execute(_RECEIPTS)
        self._load_receipts()
        self.watches = [self._watch_for(s) for s in self.specs.values() if s.trigger["type"] == "blobTrigger"]
        # Function code runs in worker processes, as the Functions host runs a language worker:
        # the host's own work (trigger, client API, replay) then never waits for the GIL.
        self.pool = ProcessPoolExecutor(max_workers=config.workers, mp_context=mp.get_context("spawn"),
                                        initializer=_worker_init, initargs=(str(config.app_root),
                                                                            dict(os.environ), os.getpid()))
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._inflight: dict[int, asyncio.Future] = {}
        self._results: list[tuple[WorkItem, dict[str, Any]]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.system_key = secrets.token_urlsafe(24)  # the extension's webhook key ('code=')
        self.trigger_bytes = 0  # blob bytes the trigger shipped to the worker (the host downloads them all)
        self.trigger_invocations = 0
        self.event_bytes = 0  # event JSON shipped to the Event Grid trigger (never a blob byte)
        self.event_invocations = 0
        self.eventgrid_specs = {n: s for n, s in self.specs.items() if s.trigger["type"] == "eventGridTrigger"}
        self.timer_specs = {n: s for n, s in self.specs.items() if s.trigger["type"] == "timerTrigger"}
        self.timer_schedules = {n: resolve_schedule(s.trigger.get("schedule", "")) for n, s in self.timer_specs.items()}
        for schedule in self.timer_schedules.values():
            next_occurrence(schedule, time_now())  # a bad schedule stops the host at start, with the reason
        self.eventgrid = EventGridEmulator(self._deliver_event, config.eventgrid)
        self._timer_last: dict[str, Any] = {}

    def _watch_for(self, spec: FunctionSpec) -> BlobWatch:
        trigger = spec.trigger
        container = trigger["path"].split("/", 1)[0]
        setting = trigger.get("connection") or "AzureWebJobsStorage"
        conn = os.environ.get(setting, "")
        if not conn:
            raise RuntimeError(f"{spec.name}: app setting {setting!r} (the trigger's connection) is empty")
        client = spec.binding("durableClient")
        if client is None:
            raise RuntimeError(f"{spec.name}: a blob-triggered starter needs a durableClient binding")
        return BlobWatch(spec, container, conn, client["name"])

    # -- lifecycle ------------------------------------------------------------
    async def start(self) -> None:
        self.engine.on_change = self._wake.set
        app = build_app(self.engine, self.system_key)
        app.router.add_post("/runtime/webhooks/eventgrid",
                            webhook_handler(self.invoke_event, lambda: set(self.eventgrid_specs)))
        app.router.add_post("/admin/functions/{name}", self._admin_run)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.config.port)
        try:
            await site.start()
        except OSError as exc:
            raise RuntimeError(f"cannot listen on 127.0.0.1:{self.config.port} for the durable client "
                               f"API ({exc.strerror}); is another host running? Choose another port.") from None
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.binding = client_binding(f"http://127.0.0.1:{self.port}", self.config.task_hub, self.system_key)
        log.info("durable client API on http://127.0.0.1:%d/durabletask/", self.port)

    async def serve(self) -> None:
        """Run until stop() (or SIGTERM/SIGINT when installed by the caller)."""
        await self.start()
        tasks = [asyncio.create_task(self._dispatch())]
        tasks += [asyncio.create_task(self._poll(w)) for w in self.watches]
        if self.eventgrid_specs:
            tasks.append(asyncio.create_task(self._watch_events()))
        tasks += [asyncio.create_task(self._run_timer(n)) for n in self.timer_specs]
        await self._stopping.wait()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._inflight:
            await asyncio.wait(list(self._inflight.values()), timeout=30)
        self.write_stats()
        await self.close()

    def write_stats(self) -> None:
        """What the starters were sent, for benchmarks and tests: <state>/host-stats.json."""
        stats = {
            "blob_trigger": {"invocations": self.trigger_invocations, "blob_bytes": self.trigger_bytes},
            "event_grid": {"invocations": self.event_invocations, "event_bytes": self.event_bytes,
                           "delivered": self.eventgrid.delivered, "duplicated": self.eventgrid.duplicated,
                           "reordered": self.eventgrid.reordered,
                           "dead_lettered": len(self.eventgrid.dead_lettered)},
        }
        (self.config.state_dir / "host-stats.json").write_text(json.dumps(stats, indent=2))

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def close(self) -> None:
        self.worker.close()
        if self._runner is not None:
            await self._runner.cleanup()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.engine.close()

    # -- blob trigger -----------------------------------------------------------
    def _load_receipts(self) -> None:
        """Finished receipts in memory (one query at start); every change is written through."""
        self._receipted = {tuple(r) for r in self.engine.db.execute(
            "SELECT function, container, name, etag FROM receipts WHERE status IN ('done', 'poison')")}
        self._tries = {tuple(r[:4]): r[4] for r in self.engine.db.execute(
            "SELECT function, container, name, etag, tries FROM receipts WHERE status = 'retry'")}

    def _write_receipt(self, watch: BlobWatch, ref: BlobRef, status: str, tries: int, reason: str | None) -> None:
        key = (watch.spec.name, ref.container, ref.name, ref.etag)
        self.engine.db.execute("INSERT OR REPLACE INTO receipts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                               (*key, status, tries, reason, time.time()))
        if status == "retry":
            self._tries[key] = tries
        else:
            self._receipted.add(key)
            self._tries.pop(key, None)

    async def _poll(self, watch: BlobWatch) -> None:
        loop = asyncio.get_running_loop()
        limit = asyncio.Semaphore(32)

        async def fire(ref: BlobRef, tries: int) -> None:
            async with limit:
                await self._fire(watch, ref, tries)

        while not self._stopping.is_set():
            try:
                refs = await loop.run_in_executor(None, lambda: list(list_blob_refs(watch.connection_string,
                                                                                   watch.container)))
            except Exception as exc:  # noqa: BLE001 - storage down: say so, keep polling
                log.error("blob trigger %s: %s", watch.spec.name, exc)
                refs = []
            pending = []
            for ref in refs:
                key = (watch.spec.name, ref.container, ref.name, ref.etag)
                if key not in self._receipted:
                    pending.append(fire(ref, self._tries.get(key, 0)))
            await asyncio.gather(*pending)
            try:
                await asyncio.wait_for(self._stopping.wait(), self.config.poll_interval)
            except TimeoutError:
                pass

    async def _fire(self, watch: BlobWatch, ref: BlobRef, tries: int) -> None:
        """One trigger invocation with the host's exact input: the downloaded body as bytes and the
        blobs extension's trigger metadata (devhost.blob_trigger), through the worker."""
        container = service_client(watch.connection_string).get_container_client(watch.container)
        loop = asyncio.get_running_loop()
        try:
            fired = await loop.run_in_executor(None, trigger_input, container, ref.name, watch.spec.trigger["path"])
        except Exception as exc:  # noqa: BLE001 - storage hiccup: the next poll tries again
            log.error("blob trigger %s: cannot read %r: %s", watch.spec.name, ref.name, exc)
            return
        if fired is None:
            log.info("blob %r was deleted before its trigger ran: skipped, as the host skips it", ref.name)
            return
        if fired.etag != ref.etag:
            ref = BlobRef(ref.container, ref.name, fired.etag)
            key = (watch.spec.name, ref.container, ref.name, ref.etag)
            if key in self._receipted:
                return
            tries = self._tries.get(key, 0)
        self.trigger_bytes += len(fired.body)
        self.trigger_invocations += 1
        inputs = {watch.spec.trigger["name"]: Data("bytes", fired.body), watch.client_param: Data("string", self.binding)}
        try:
            await self.worker.invoke_async(watch.spec.name, inputs, fired.metadata)
        except Exception as exc:  # noqa: BLE001 - a failing starter is retried, then poisoned
            tries += 1
            reason = str(exc)
            status = "poison" if tries >= self.config.max_start_tries else "retry"
            self._write_receipt(watch, ref, status, tries, reason)
            log.error("%s failed for %r (try %d): %s%s", watch.spec.name, ref.name, tries, reason,
                      " -> poison" if status == "poison" else "")
            return
        kill_point("after-start")
        self._write_receipt(watch, ref, "done", tries + 1, None)

    # -- Event Grid (emulated: Azurite has none) and its webhook -----------------------------------
    async def invoke_event(self, name: str, event: dict[str, Any]) -> None:
        """One eventGridTrigger invocation: the event as JSON TypedData and the extension's trigger
        metadata ``data`` (EventGridTriggerAttributeBindingProvider binds {"data": event.data})."""
        spec = self.eventgrid_specs[name]
        client = spec.binding("durableClient")
        body = json.dumps(event)
        self.event_bytes += len(body)
        self.event_invocations += 1
        inputs = {spec.trigger["name"]: Data("json", body)}
        if client is not None:
            inputs[client["name"]] = Data("string", self.binding)
        await self.worker.invoke_async(name, inputs, {"data": Data.json_of(event.get("data"))})

    async def _deliver_event(self, event: dict[str, Any]) -> None:
        """Every subscribed function gets the event (one subscription per eventGridTrigger function)."""
        for name in self.eventgrid_specs:
            await self.invoke_event(name, event)

    async def _watch_events(self) -> None:
        """Diff the container per poll into Blob Storage events and deliver them as Event Grid does."""
        conn = os.environ.get("AzureWebJobsStorage", "")
        container = self.config.eventgrid_container
        diff = ContainerDiff(self.engine.db, container)
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            try:
                refs = await loop.run_in_executor(None, lambda: list(list_blob_refs(conn, container)))
                events = diff.events(refs)
            except Exception as exc:  # noqa: BLE001 - storage down: say so, keep watching
                log.error("event grid: cannot list %r: %s", container, exc)
                events = []
            order = self.eventgrid.schedule(events) if events else self.eventgrid.flush()
            if order:
                await self.eventgrid.send(order)
            try:
                await asyncio.wait_for(self._stopping.wait(), self.config.poll_interval)
            except TimeoutError:
                pass

    # -- timer triggers -------------------------------------------------------------------------
    async def invoke_timer(self, name: str, past_due: bool = False) -> None:
        """One timerTrigger invocation with the host's TimerInfo JSON (devhost.timers)."""
        spec = self.timer_specs[name]
        now = time_now()
        inputs = {spec.trigger["name"]: Data("json", timer_input(self._timer_last.get(name),
                                                                next_occurrence(self.timer_schedules[name], now),
                                                                now, past_due))}
        client = spec.binding("durableClient")
        if client is not None:
            inputs[client["name"]] = Data("string", self.binding)
        self._timer_last[name] = now
        await self.worker.invoke_async(name, inputs)

    async def _run_timer(self, name: str) -> None:
        while not self._stopping.is_set():
            due = next_occurrence(self.timer_schedules[name], time_now())
            try:
                await asyncio.wait_for(self._stopping.wait(), max(0.0, (due - time_now()).total_seconds()))
                return
            except TimeoutError:
                pass
            try:
                await self.invoke_timer(name)
            except Exception as exc:  # noqa: BLE001 - a failed run waits for its next occurrence
                log.error("timer %s failed: %s", name, exc)

    async def _admin_run(self, request: web.Request) -> web.Response:
        """POST /admin/functions/<name>: run a non-HTTP function now, as the host's admin API does
        (MicrosoftDocs functions-manually-run-non-http.md; answers 202). Timer and Event Grid
        functions here; for Event Grid the body's "input" is the event JSON."""
        name = request.match_info["name"]
        try:
            body = json.loads(await request.text() or "{}")
        except ValueError:
            return web.Response(status=400, text="the body must be JSON, e.g. {\"input\": \"\"}")
        if name in self.timer_specs:
            asyncio.get_running_loop().create_task(self._admin_timer(name))
            return web.Response(status=202)
        if name in self.eventgrid_specs and isinstance(body.get("input"), str) and body["input"]:
            await self.invoke_event(name, json.loads(body["input"]))
            return web.Response(status=202)
        return web.Response(status=404, text=f"no timer or Event Grid function {name!r} is enabled")

    async def _admin_timer(self, name: str) -> None:
        try:
            await self.invoke_timer(name)
        except Exception as exc:  # noqa: BLE001
            log.error("timer %s (run on demand) failed: %s", name, exc)

    def poison(self) -> list[dict[str, Any]]:
        rows = self.engine.db.execute("SELECT container, name, etag, tries, reason FROM receipts "
                                      "WHERE status = 'poison'").fetchall()
        return [dict(zip(("container", "name", "etag", "tries", "reason"), r, strict=True)) for r in rows]

    # -- orchestrations and activities -----------------------------------------------
    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            self._wake.clear()
            self._record_results()
            if self.engine.process_episodes():
                kill_point("after-episode")
            self.engine.fire_due_timers()
            # Keep a few activities queued per worker so no worker idles between dispatcher turns.
            free = self.config.workers * 4 - len(self._inflight)
            if free > 0:
                for item in self.engine.ready_activities(set(self._inflight), free):
                    future = loop.run_in_executor(self.pool, _worker_invoke, item.name, item.input,
                                                  getattr(self, "binding", None))
                    self._inflight[item.id] = future
                    kill_point("activity-start")
                    future.add_done_callback(lambda f, i=item: self._activity_done(i, f))
            timeout = 0.5
            due = self.engine.next_timer_due()
            if due is not None:
                timeout = max(0.0, min(timeout, (due - self.engine.clock.now()).total_seconds()))
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass

    def _restart_pool_if_broken(self) -> None:
        if getattr(self.pool, "_broken", False):
            log.error("an activity worker process died; starting new workers")
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = ProcessPoolExecutor(max_workers=self.config.workers, mp_context=mp.get_context("spawn"),
                                            initializer=_worker_init,
                                            initargs=(str(self.config.app_root), dict(os.environ),
                                                      os.getpid()))

    def _activity_done(self, item: WorkItem, future: asyncio.Future) -> None:
        self._inflight.pop(item.id, None)
        if future.cancelled():
            return
        try:
            outcome = future.result()
        except Exception as exc:  # noqa: BLE001 - the worker process died: the activity failed
            outcome = {"EventType": 6, "Reason": f"worker process failed: {exc}", "Details": ""}
            self._restart_pool_if_broken()
        self._results.append((item, outcome))
        self._wake.set()

    def _record_results(self) -> None:
        """Results that arrived since the last turn, recorded in one transaction."""
        if self._results:
            batch, self._results = self._results, []
            kill_point("activity-done")
            self.engine.complete_activities(batch)


def time_now() -> datetime:
    return datetime.now(UTC)


_WORKER_ACTIVITIES: dict[str, Any] = {}
_WORKER_CLIENT: dict[str, str | None] = {"binding": None}


def _worker_init(app_root: str, environ: dict[str, str], host_pid: int) -> None:
    """In each worker process: the host's settings, then Microsoft's worker with the app loaded once."""

    def exit_with_host() -> None:
        # A host killed with SIGKILL (or gone before this worker finished starting) cannot stop
        # its workers; they notice and leave.
        while os.getppid() == host_pid:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=exit_with_host, daemon=True, name="host-watch").start()

    os.environ.update(environ)
    specs = discover(Path(app_root))
    worker: FunctionWorker = load_app(Path(app_root), [s.folder for s in specs.values()])
    _, activities = registries(worker, specs, lambda: _WORKER_CLIENT["binding"])
    _WORKER_ACTIVITIES.update(activities)


def _worker_invoke(name: str, input_json: str | None, binding: str | None = None) -> dict[str, Any]:
    """One activity in a worker process; ``binding`` is the host's durableClient binding JSON (its
    port and key are known only once the host serves, after the workers were spawned)."""
    _WORKER_CLIENT["binding"] = binding
    return invoke_activity(_WORKER_ACTIVITIES, name, input_json)


async def run_host(config: HostConfig, ready: Any = None) -> LocalHost:
    host = LocalHost(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, host.stop)
    serving = asyncio.create_task(host.serve())
    while not host.port and not serving.done():
        await asyncio.sleep(0.01)
    if ready is not None and host.port:
        ready(host)
    await serving
    return host

