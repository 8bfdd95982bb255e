"""The local host's Event Grid emulation and timer inputs, without a host process.

Event shapes: MicrosoftDocs azure-docs, articles/event-grid/event-schema-blob-storage.md.
Timer input: WebJobs extensions TimerInfo / ScheduleStatus (PascalCase, Newtonsoft), read by
azure.functions' TimerRequestConverter; NCRONTAB with seconds first (CronSchedule.TryCreate).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime

import pytest
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.timer import TimerRequestConverter

from devhost.eventgrid import ContainerDiff, DeliveryPolicy, EventGridEmulator, blob_created_event
from devhost.timers import ScheduleError, next_occurrence, resolve_schedule, timer_input
from shared.models import BlobRef


def ref(name: str, etag: str) -> BlobRef:
    return BlobRef("images-input", name, etag, size=10, url=f"http://x/images-input/{name}", content_type="image/png")


def test_container_diff_events_baseline_and_restart(tmp_path):
    db = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    diff = ContainerDiff(db, "images-input")
    assert diff.events([]) == []  # an empty container is a baseline too
    created = diff.events([ref("a.png", "1"), ref("b.png", "1")])
    assert [(e["eventType"], e["subject"].rsplit("/", 1)[1]) for e in created] == [
        ("Microsoft.Storage.BlobCreated", "a.png"), ("Microsoft.Storage.BlobCreated", "b.png")]
    changed = diff.events([ref("a.png", "2")])
    assert [(e["eventType"].rsplit(".", 1)[1], e["subject"].rsplit("/", 1)[1]) for e in changed] == [
        ("BlobCreated", "a.png"), ("BlobDeleted", "b.png")]
    assert changed[0]["data"]["eTag"] == '"2"'
    sequencers = [e["data"]["sequencer"] for e in created + changed]
    assert sequencers == sorted(sequencers) and len(set(sequencers)) == 4
    # Restart: the snapshot and the sequencer survive; what changed meanwhile becomes events.
    again = ContainerDiff(db, "images-input")
    after = again.events([ref("a.png", "2"), ref("c.png", "1")])
    assert [e["subject"].rsplit("/", 1)[1] for e in after] == ["c.png"]
    assert after[0]["data"]["sequencer"] > sequencers[-1]
    # Negative control: a fresh state takes the current listing as its baseline and says nothing.
    assert ContainerDiff(sqlite3.connect(":memory:"), "images-input").events([ref("z.png", "1")]) == []


def test_events_decode_through_the_azure_functions_converter():
    event = blob_created_event(ref("a b/ü.png", "0x8D"), "0" * 31 + "1")
    decoded = EventGridEventInConverter.decode(meta.Datum(json.dumps(event), "json"), trigger_metadata={})
    assert decoded.event_type == "Microsoft.Storage.BlobCreated"
    assert decoded.subject.endswith("/blobs/a b/ü.png")
    assert decoded.get_json()["eTag"] == '"0x8D"' and decoded.event_time.tzinfo is not None


def test_emulator_delivers_everything_at_least_once_some_twice_some_late():
    got: list[str] = []

    async def deliver(event: dict) -> None:
        got.append(event["id"])

    emulator = EventGridEmulator(deliver, DeliveryPolicy(duplicate_rate=0.3, reorder_rate=0.3, seed=5))
    batches = [[{"id": f"{b}-{i}"} for i in range(10)] for b in range(5)]

    async def run() -> None:
        for batch in batches:
            await emulator.send(emulator.schedule(batch))
        await emulator.send(emulator.flush())

    asyncio.run(run())
    sent = [e["id"] for batch in batches for e in batch]
    assert set(got) == set(sent)
    assert len(got) > len(sent) and emulator.duplicated > 0
    assert emulator.reordered > 0 and got != sent
    # Negative control: no duplicates and no reordering gives the input order, once each.
    plain: list[str] = []

    async def keep(event: dict) -> None:
        plain.append(event["id"])

    calm = EventGridEmulator(keep, DeliveryPolicy(duplicate_rate=0, reorder_rate=0, seed=5))
    asyncio.run(calm.send(calm.schedule([{"id": str(i)} for i in range(5)])))
    assert sorted(plain) == [str(i) for i in range(5)] and len(plain) == 5


def test_emulator_retries_a_failing_subscriber_then_dead_letters():
    calls: list[int] = []

    async def flaky(event: dict) -> None:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("database is locked")

    emulator = EventGridEmulator(flaky, DeliveryPolicy(duplicate_rate=0, reorder_rate=0, retry_delay=0.01))
    asyncio.run(emulator.send([{"id": "e1"}]))
    assert len(calls) == 3 and emulator.delivered == 1 and not emulator.dead_lettered

    async def broken(event: dict) -> None:
        raise RuntimeError("down")

    dead = EventGridEmulator(broken, DeliveryPolicy(max_attempts=2, retry_delay=0.01))
    asyncio.run(dead.send([{"id": "e2"}]))
    assert dead.delivered == 0 and [e["id"] for e, _ in dead.dead_lettered] == ["e2"]


def test_schedule_from_app_setting_and_ncrontab_with_seconds():
    assert resolve_schedule("%ReconcileSchedule%", {"ReconcileSchedule": "0 */10 * * * *"}) == "0 */10 * * * *"
    start = datetime(2026, 11, 25, 3, 1, 2, tzinfo=UTC)
    assert next_occurrence("0 */10 * * * *", start) == datetime(2026, 11, 25, 3, 10, tzinfo=UTC)
    assert next_occurrence("*/15 * * * * *", start) == datetime(2026, 11, 25, 3, 1, 15, tzinfo=UTC)
    with pytest.raises(ScheduleError, match="not set"):
        resolve_schedule("%Missing%", {})
    with pytest.raises(ScheduleError, match="six"):
        next_occurrence("*/5 * * * *", start)  # five-field cron: not NCRONTAB
    with pytest.raises(ScheduleError, match="not a valid"):
        next_occurrence("0 */10 * * * funday", start)


def test_timer_input_is_what_the_converter_reads():
    now = datetime(2026, 11, 25, 3, 10, 0, 1234, tzinfo=UTC)
    body = timer_input(datetime(2026, 11, 25, 3, 0, tzinfo=UTC), datetime(2026, 11, 25, 3, 20, tzinfo=UTC), now)
    assert json.loads(body) == {
        "Schedule": {"AdjustForDST": True},
        "ScheduleStatus": {"Last": "2026-11-25T03:00:00+00:00", "Next": "2026-11-25T03:20:00+00:00",
                           "LastUpdated": "2026-11-25T03:10:00+00:00"},
        "IsPastDue": False,
    }
    request = TimerRequestConverter.decode(meta.Datum(body, "json"), trigger_metadata={})
    assert request.past_due is False and request.schedule == {"AdjustForDST": True}
    assert request.schedule_status["Next"] == "2026-11-25T03:20:00+00:00"
    late = TimerRequestConverter.decode(meta.Datum(timer_input(None, now, now, past_due=True), "json"),
                                        trigger_metadata={})
    assert late.past_due is True
