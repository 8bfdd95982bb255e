"""ImageOrchestrator with previews: MakePreview beside ExtractMetadata through ``task_all``.

Driven as the host drives it (Microsoft's worker runs ImageOrchestrator's ``main``; the engine
records the history). The SDK's WhenAll sends both activities in one episode as one V3
compound action (actionType 12, azure-functions-durable 1.7.0 ``WhenAllAction``), the engine
schedules both leaves, and each completion arrives as its own TaskCompleted; the SDK fails a
WhenAll at the first failed child, which the orchestrator then awaits task by task.
"""

from __future__ import annotations

import json
from typing import Any

from devhost import protocol as p
from devhost.engine import Engine, ManualClock, python_activity
from shared.models import BlobRef
from shared.orchestration import orchestration_input

DELAYS = (5.0, 10.0)
BLOB = BlobRef("images-input", "holiday/eiffel.jpg", "0x8DC", size=2048,
               last_modified="2026-01-01T10:00:00+00:00")
OK_EXTRACT = {"outcome": "ok", "size_bytes": 2048, "metadata": {"format": "JPEG", "warnings": ["x"]}}
OK_PREVIEW = {"outcome": "ok", "preview": {"previews": {"256": "holiday/eiffel.jpg/0x8DC/256.webp"},
                                            "warnings": []}}
OK_STORE = {"outcome": "ok", "applied": True}
TRANSIENT = {"outcome": "transient", "reason": "blob storage is busy (503)"}
NAMES = ("ExtractMetadata", "MakePreview", "StoreMetadata")


class Script:
    def __init__(self, **plans: list[Any]) -> None:
        self.plan = {n: list(plans.get(n, [OK_STORE])) for n in NAMES}
        self.calls: list[tuple[str, Any]] = []

    def activity(self, name: str):
        def run(payload: Any) -> Any:
            self.calls.append((name, payload))
            planned = self.plan[name].pop(0) if len(self.plan[name]) > 1 else self.plan[name][0]
            if isinstance(planned, Exception):
                raise planned
            return planned
        return run


def run(orchestrators, script: Script, previews: bool = True) -> dict[str, Any]:
    engine = Engine(":memory:", orchestrators, {n: python_activity(script.activity(n)) for n in NAMES},
                    ManualClock())
    engine.start("ImageOrchestrator", "img", json.dumps(orchestration_input(BLOB, DELAYS, previews=previews)))
    engine.run_until_idle()
    status = engine.status("img", show_history=True)
    assert status is not None
    return status


def scheduled_per_episode(status: dict[str, Any]) -> list[list[str]]:
    """The activities each episode scheduled, in order."""
    episodes: list[list[str]] = [[]]
    for event in status["historyEvents"]:
        if event["EventType"] == p.ORCHESTRATOR_COMPLETED:
            episodes.append([])
        elif event["EventType"] == p.TASK_SCHEDULED:
            episodes[-1].append(event["Name"])
    return [e for e in episodes if e]


def stored(script: Script) -> dict[str, Any]:
    return [c for n, c in script.calls if n == "StoreMetadata"][-1]


def test_both_activities_are_scheduled_in_one_episode_and_the_row_carries_both(orchestrators):
    script = Script(ExtractMetadata=[OK_EXTRACT], MakePreview=[OK_PREVIEW])
    status = run(orchestrators, script)
    assert status["runtimeStatus"] == "Completed", status["output"]
    assert scheduled_per_episode(status) == [["ExtractMetadata", "MakePreview"], ["StoreMetadata"]]
    record = stored(script)["record"]
    assert record["preview"]["previews"] == {"256": "holiday/eiffel.jpg/0x8DC/256.webp"}
    assert record["metadata"]["format"] == "JPEG" and record["metadata"]["warnings"] == ["x"]


def test_without_previews_in_the_input_only_extract_and_store_run(orchestrators):
    script = Script(ExtractMetadata=[OK_EXTRACT], MakePreview=[OK_PREVIEW])
    status = run(orchestrators, script, previews=False)
    assert scheduled_per_episode(status) == [["ExtractMetadata"], ["StoreMetadata"]]
    assert stored(script)["record"]["preview"]["previews"] is None


def test_a_transient_preview_is_retried_alone_on_a_timer(orchestrators):
    script = Script(ExtractMetadata=[OK_EXTRACT], MakePreview=[TRANSIENT, OK_PREVIEW])
    status = run(orchestrators, script)
    assert scheduled_per_episode(status) == [["ExtractMetadata", "MakePreview"], ["MakePreview"],
                                             ["StoreMetadata"]]
    assert [e["EventType"] for e in status["historyEvents"]].count(p.TIMER_CREATED) == 1
    assert stored(script)["record"]["preview"]["previews"] == OK_PREVIEW["preview"]["previews"]


def test_a_crashed_preview_fails_the_when_all_but_the_row_is_written_with_the_reason(orchestrators):
    crash = RuntimeError("worker process died")
    script = Script(ExtractMetadata=[OK_EXTRACT], MakePreview=[crash])
    status = run(orchestrators, script)
    assert status["runtimeStatus"] == "Completed", status["output"]
    payload = stored(script)
    assert payload["record"]["preview"]["previews"] is None
    assert payload["record"]["status"] == "processed"
    warnings = payload["record"]["metadata"]["warnings"]
    assert warnings[0] == "x" and "MakePreview transient after 3 attempt(s)" in warnings[1]
    assert "worker process died" in warnings[1]


def test_a_permanent_preview_failure_never_blocks_the_metadata_row(orchestrators):
    undecodable = {"outcome": "ok", "preview": {"previews": None,
                                                "warnings": ["preview: the pixels cannot be decoded"]}}
    script = Script(ExtractMetadata=[OK_EXTRACT], MakePreview=[undecodable])
    status = run(orchestrators, script)
    assert status["runtimeStatus"] == "Completed"
    payload = stored(script)
    assert payload["record"]["preview"]["previews"] is None
    assert payload["record"]["metadata"]["warnings"] == ["x", "preview: the pixels cannot be decoded"]


def test_a_superseded_extraction_discards_the_previews_made_beside_it(orchestrators):
    gone = {"outcome": "superseded", "reason": "blob was overwritten"}
    script = Script(ExtractMetadata=[gone], MakePreview=[OK_PREVIEW, {"outcome": "ok", "preview": {}}])
    status = run(orchestrators, script)
    assert status["output"]["status"] == "superseded"
    previews = [c for n, c in script.calls if n == "MakePreview"]
    assert len(previews) == 2 and previews[1]["discard"] is True
    assert not [n for n, _ in script.calls if n == "StoreMetadata"]


def test_a_rejected_image_row_names_no_previews_and_those_made_are_discarded(orchestrators):
    rejected = {"outcome": "rejected", "reason": "not a supported image"}
    script = Script(ExtractMetadata=[rejected], MakePreview=[OK_PREVIEW, {"outcome": "ok", "preview": {}}])
    run(orchestrators, script)
    payload = stored(script)
    assert payload["record"]["status"] == "rejected" and payload["record"]["preview"]["previews"] is None
    assert [n for n, c in script.calls if n == "MakePreview" and c.get("discard")] == ["MakePreview"]


def test_a_row_that_cannot_be_stored_ends_failed_and_its_previews_are_discarded(orchestrators):
    script = Script(ExtractMetadata=[OK_EXTRACT], MakePreview=[OK_PREVIEW, {"outcome": "ok", "preview": {}}],
                    StoreMetadata=[{"outcome": "permanent", "reason": "bad row"}, OK_STORE])
    status = run(orchestrators, script)
    assert status["runtimeStatus"] == "Failed"
    assert [c["record"]["status"] for n, c in script.calls if n == "StoreMetadata"] == ["processed", "failed"]
    assert script.calls[-1][0] == "MakePreview" and script.calls[-1][1]["discard"] is True
