"""History retention: purge finished orchestrations older than ``HistoryRetentionDays``.

At a million images the task hub would otherwise keep every instance and its history for ever
(Microsoft: "Purge instance history" in the Durable Functions instance-management docs
recommends purging periodically). The Durable client's purge by time window
(``purge_instance_history_by``: ``DELETE {rpcBaseUrl}instances/?createdTimeFrom=..&
createdTimeTo=..&runtimeStatus=..``, answered 200 ``{"instancesDeleted": n}`` or 404 when none;
docs/history-retention.md cites the SDK and the extension's handler) deletes the instances
*created* in a window with one of the given statuses. Only Completed, Failed and Terminated are
asked for: a running instance is never purged.

One invocation walks windows forward from a cursor (the end of the last window purged) to the
cutoff (now - retention), and stops when its time budget is spent; the next run goes on from
there. The cursor is a small blob in the host's storage, saved after every window, so a run
killed half-way repeats at most one window (purging twice deletes nothing the second time).
A window's width adapts to what it held: halved when it deleted more than
``HistoryPurgeBatchInstances``, doubled (up to a day) when it deleted under a quarter of that,
so a backlog is cut into bounded purges and an empty stretch is crossed in a few calls.

After a purge the starter's instance check no longer sees those versions; the row check
(shared.starter) is what keeps a late or duplicate event from indexing them again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from shared.blob_access import ensure_container, service_client, storage_call
from shared.settings import StorageTarget, int_setting

log = logging.getLogger(__name__)

PURGED_STATUSES = ("Completed", "Failed", "Terminated")
CURSOR_CONTAINER = "durable-retention"
CURSOR_BLOB = "history-purge-cursor.json"
MIN_WINDOW = timedelta(minutes=1)
MAX_WINDOW = timedelta(days=1)


@dataclass(frozen=True)
class RetentionSettings:
    retention_days: int = 7
    # Where the very first run starts (before that, nothing is purged until a cursor exists).
    lookback_days: int = 30
    window_minutes: int = 60
    batch_instances: int = 5000
    budget_seconds: int = 60


def load_retention_settings(env: Mapping[str, str] | None = None) -> RetentionSettings:
    """``HistoryRetentionDays`` (default 7), ``HistoryPurgeLookbackDays`` (30),
    ``HistoryPurgeWindowMinutes`` (60), ``HistoryPurgeBatchInstances`` (5000),
    ``HistoryPurgeBudgetSeconds`` (60); each a positive whole number."""
    d = RetentionSettings()
    return RetentionSettings(
        retention_days=int_setting(env, "HistoryRetentionDays", d.retention_days),
        lookback_days=int_setting(env, "HistoryPurgeLookbackDays", d.lookback_days),
        window_minutes=int_setting(env, "HistoryPurgeWindowMinutes", d.window_minutes),
        batch_instances=int_setting(env, "HistoryPurgeBatchInstances", d.batch_instances),
        budget_seconds=int_setting(env, "HistoryPurgeBudgetSeconds", d.budget_seconds),
    )


@dataclass(frozen=True)
class PurgeCursor:
    purged_until: datetime
    window: timedelta

    def to_json(self) -> str:
        return json.dumps({"purgedUntil": self.purged_until.astimezone(UTC).isoformat(),
                           "windowSeconds": self.window.total_seconds()})

    @classmethod
    def from_json(cls, text: str | bytes) -> PurgeCursor:
        data = json.loads(text)
        return cls(datetime.fromisoformat(data["purgedUntil"]).astimezone(UTC),
                   timedelta(seconds=float(data["windowSeconds"])))


class BlobCursorStore:
    """The cursor as one blob in the host's storage (AzureWebJobsStorage)."""

    def __init__(self, target: StorageTarget, container: str = CURSOR_CONTAINER, name: str = CURSOR_BLOB) -> None:
        self.target, self.container, self.name = target, container, name

    def load(self) -> PurgeCursor | None:
        blob = service_client(self.target).get_blob_client(self.container, self.name)

        def call() -> bytes | None:
            try:
                return blob.download_blob().readall()
            except ResourceNotFoundError:
                return None

        text = storage_call(self.target, f"read the purge cursor {self.container}/{self.name}", call)
        return PurgeCursor.from_json(text) if text else None

    def save(self, cursor: PurgeCursor) -> None:
        blob = service_client(self.target).get_blob_client(self.container, self.name)

        def call() -> None:
            try:
                blob.upload_blob(cursor.to_json(), overwrite=True)
            except ResourceNotFoundError:
                ensure_container(self.target, self.container)
                blob.upload_blob(cursor.to_json(), overwrite=True)

        storage_call(self.target, f"write the purge cursor {self.container}/{self.name}", call)


@dataclass
class PurgeReport:
    cutoff: str = ""
    started_from: str = ""
    purged_until: str = ""
    windows: int = 0
    instances_deleted: int = 0
    caught_up: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _next_window(window: timedelta, deleted: int, batch: int) -> timedelta:
    if deleted > batch:
        return max(MIN_WINDOW, window / 2)
    if deleted < batch / 4:
        return min(MAX_WINDOW, window * 2)
    return window


async def purge_history(client: Any, cursors: Any, statuses: list[Any], *, now: datetime | None = None,
                        settings: RetentionSettings | None = None,
                        monotonic: Callable[[], float] = time.monotonic) -> PurgeReport:
    """Purge finished instances created before now - retention, window by window, within budget.

    ``client`` is a ``DurableOrchestrationClient``; ``statuses`` the SDK's
    ``OrchestrationRuntimeStatus`` values of ``PURGED_STATUSES`` (built by the function's adapter:
    shared/ does not import the Functions SDK); ``cursors`` has ``load()`` / ``save(cursor)``.
    """
    if sorted(getattr(s, "value", s) for s in statuses) != sorted(PURGED_STATUSES):
        raise ValueError(f"purge only {PURGED_STATUSES}, got {statuses!r}: never a running instance")
    settings = settings or RetentionSettings()
    now = (now or datetime.now(UTC)).astimezone(UTC)
    cutoff = now - timedelta(days=settings.retention_days)
    cursor = cursors.load() or PurgeCursor(cutoff - timedelta(days=settings.lookback_days),
                                           timedelta(minutes=settings.window_minutes))
    report = PurgeReport(cutoff=cutoff.isoformat(), started_from=cursor.purged_until.isoformat())
    began = monotonic()
    start, window = cursor.purged_until, cursor.window
    while start < cutoff and monotonic() - began < settings.budget_seconds:
        end = min(start + window, cutoff)
        result = await client.purge_instance_history_by(created_time_from=start, created_time_to=end,
                                                        runtime_status=statuses)
        deleted = int(result.instances_deleted)
        report.windows += 1
        report.instances_deleted += deleted
        window = _next_window(window, deleted, settings.batch_instances)
        start = end
        cursors.save(PurgeCursor(start, window))
    report.purged_until = start.isoformat()
    report.caught_up = start >= cutoff
    report.seconds = round(monotonic() - began, 3)
    log.info("history purge: %s", report.to_dict())
    return report
