"""`make reconcile` / `make reindex`: one pass through the local host, waited for, its totals printed.

The host runs in this process (as `make demo` does) with the app's functions, minus the
triggers that would start runs by themselves (blob trigger, Event Grid, timers): what the pass
starts is all that runs. Its state is the local host's task hub (``.local/host`` by default,
the one `make run` and `make status` use), so stop `make run` first. A pass that a killed host
left running is resumed, not started again: the start is refused (the singleton) and this waits
for the running pass instead.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import azure.durable_functions as df
from azure.durable_functions.models.utils import http_utils

from devhost.engine import ACTIVE
from devhost.host import HostConfig, LocalHost
from shared.reconcile_flow import start_pass
from shared.settings import ORCHESTRATOR_NAME, RECONCILE_INSTANCE_ID

# Functions that would start runs on their own while the pass is measured.
QUIET = ("BlobTriggerStarter", "EventGridStarter", "ReconcileBlobs", "PurgeHistory")


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """These settings in os.environ for the block, the previous values put back afterwards (the
    host reads its settings from the environment; two passes in one process must not share them)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


async def run_pass(settings: dict[str, str], state_dir: Path, pass_input: dict[str, Any], *,
                   timeout: float = 3600, wait_runs: bool = True, workers: int = 2) -> dict[str, Any]:
    """Start ``pass_input`` (``shared.reconcile_flow.reconcile_input`` / ``reindex_input``) on a local
    host over ``settings`` (AzureWebJobsStorage, SqlConnectionString, ...), wait for it (and, with
    ``wait_runs``, for every run it started) and return its final status with timings."""
    values = {**settings, **{f"AzureWebJobs.{n}.Disabled": "true" for n in QUIET}}
    # The caller's settings win over this process's environment (the host only fills in what the
    # environment lacks, as `func start` does), and the environment is put back afterwards.
    with environment(values):
        return await _run(values, state_dir, pass_input, timeout, wait_runs, workers)


async def _run(values: dict[str, str], state_dir: Path, pass_input: dict[str, Any], timeout: float,
               wait_runs: bool, workers: int) -> dict[str, Any]:
    host = LocalHost(HostConfig(state_dir=state_dir, settings=values, workers=workers))
    serving = asyncio.create_task(host.serve())
    began = time.monotonic()
    try:
        while not host.port and not serving.done():
            await asyncio.sleep(0.01)
        http_utils._client_session = None  # the SDK's session belongs to the loop that made it
        try:
            started = await start_pass(df.DurableOrchestrationClient(host.binding), pass_input)
        finally:
            await http_utils._close_session()
        status = await _wait(lambda: host.engine.status(RECONCILE_INSTANCE_ID), timeout, began)
        pass_seconds = time.monotonic() - began
        if wait_runs:
            await _wait_runs(host, timeout, began)
        return {"instanceId": RECONCILE_INSTANCE_ID, "startedNow": started,
                "runtimeStatus": status["runtimeStatus"] if status else None,
                "result": (status or {}).get("output") or (status or {}).get("customStatus"),
                "generations": host.engine.generations.get(RECONCILE_INSTANCE_ID, 0) + 1,
                "longestGenerationHistory": max(host.engine.longest_generation.get(RECONCILE_INSTANCE_ID, 0),
                                                len((host.engine.status(RECONCILE_INSTANCE_ID, show_history=True)
                                                     or {}).get("historyEvents") or [])),
                "passSeconds": round(pass_seconds, 3), "wallSeconds": round(time.monotonic() - began, 3),
                "runsStarted": len(host.engine.start_log(ORCHESTRATOR_NAME))}
    finally:
        host.stop()
        await serving


async def _wait(read: Any, timeout: float, began: float) -> dict[str, Any] | None:
    while True:
        status = read()
        if status is None or status["runtimeStatus"] not in ACTIVE:
            return status
        if time.monotonic() - began > timeout:
            raise RuntimeError(f"the pass did not finish within {timeout:.0f} s; it goes on the next time "
                               "the host runs ('make reconcile' again, or 'make run'); see 'make status'")
        await asyncio.sleep(0.25)


async def _wait_runs(host: LocalHost, timeout: float, began: float) -> None:
    while host.engine.query(statuses=ACTIVE):
        if time.monotonic() - began > timeout:
            raise RuntimeError(f"runs still active after {timeout:.0f} s; they finish under 'make run'")
        await asyncio.sleep(0.25)
