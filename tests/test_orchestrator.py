"""ImageOrchestrator driven exactly as the host drives it, through the project's one engine.

Every episode is an InvocationRequest to Microsoft's worker (azure-functions-runtime-v1), which
hands ImageOrchestrator/__init__.py's ``main`` the context JSON with history (replay schema V3)
and returns its OrchestratorState JSON; activities are
stand-ins here so each failure mode can be produced on demand (the end-to-end
tests run the real ones).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from devhost import protocol as p
from devhost.engine import Engine, ManualClock, python_activity
from devhost.functions import load_spec, registries
from shared.models import BlobRef
from shared.orchestration import orchestration_input
from tests.conftest import add_function

DELAYS = (5.0, 10.0, 20.0)
BLOB = BlobRef("images-input", "holiday/eiffel.jpg", "0x8DC", size=2048,
               last_modified="2026-01-01T10:00:00+00:00")


class Script:
    """Activity stand-ins that answer from a queue of planned outcomes and log their inputs."""

    def __init__(self, extract: list[Any], store: list[Any]) -> None:
        self.plan = {"ExtractMetadata": list(extract), "StoreMetadata": list(store)}
        self.calls: list[tuple[str, Any]] = []

    def activity(self, name: str):
        def run(payload: Any) -> Any:
            self.calls.append((name, payload))
            planned = self.plan[name].pop(0) if len(self.plan[name]) > 1 else self.plan[name][0]
            if isinstance(planned, Exception):
                raise planned
            return planned

        return run


OK_EXTRACT = {"outcome": "ok", "size_bytes": 2048, "last_modified": "2026-01-01T10:00:03+00:00",
              "metadata": {"format": "JPEG", "width": 640, "height": 480}}
OK_STORE = {"outcome": "ok", "applied": True}
TRANSIENT = {"outcome": "transient", "reason": "SQL error 40613: database is not currently available"}


@pytest.fixture(scope="module")
def test_orchestrators(worker, tmp_path_factory) -> dict[str, Any]:
    """Two engine-test orchestrators as function folders, loaded into the worker beside the app's."""
    root = tmp_path_factory.mktemp("orchestrators")
    trigger = [{"name": "context", "type": "orchestrationTrigger", "direction": "in"}]
    add_function(worker, root, "RetryingOrchestrator", trigger,
                 "import azure.durable_functions as df\n\n\n"
                 "def run(context):\n"
                 "    result = yield context.call_activity_with_retry('Flaky', df.RetryOptions(1000, 3), 'go')\n"
                 "    return result\n\n\n"
                 "main = df.Orchestrator.create(run)\n")
    add_function(worker, root, "WaitingOrchestrator", trigger,
                 "import azure.durable_functions as df\n\n\n"
                 "def run(context):\n"
                 "    value = yield context.wait_for_external_event('approval')\n"
                 "    return value\n\n\n"
                 "main = df.Orchestrator.create(run)\n")
    return registries(worker, {s.name: s for s in (load_spec(root / "RetryingOrchestrator"),
                                                    load_spec(root / "WaitingOrchestrator"))})[0]


def run(orchestrators: dict[str, Any], script: Script, delays=DELAYS) -> tuple[Engine, dict[str, Any]]:
    engine = Engine(":memory:", orchestrators,
                    {n: python_activity(script.activity(n)) for n in ("ExtractMetadata", "StoreMetadata")},
                    ManualClock())
    engine.start("ImageOrchestrator", "img-test", json.dumps(orchestration_input(BLOB, delays)))
    engine.run_until_idle()
    status = engine.status("img-test", show_history=True)
    assert status is not None
    return engine, status


def names(script: Script) -> list[str]:
    return [n for n, _ in script.calls]


def events(status: dict[str, Any], kind: int) -> list[dict[str, Any]]:
    return [e for e in status["historyEvents"] if e["EventType"] == kind]


def test_happy_path_extracts_then_stores_processed_row(orchestrators):
    script = Script([OK_EXTRACT], [OK_STORE])
    _, status = run(orchestrators, script)
    assert status["runtimeStatus"] == "Completed"
    assert names(script) == ["ExtractMetadata", "StoreMetadata"]
    assert script.calls[0][1] == {"blob": BLOB.to_dict(), "instanceId": "img-test"}
    record = script.calls[1][1]["record"]
    assert record["status"] == "processed" and record["error"] is None
    assert record["metadata"]["width"] == 640 and record["size_bytes"] == 2048
    assert record["instance_id"] == "img-test" and record["etag"] == "0x8DC"
    # the storage response's timestamp, not the trigger's, orders versions in the store
    assert record["blob_last_modified"] == "2026-01-01T10:00:03+00:00"
    assert status["output"]["status"] == "processed"
    assert status["customStatus"]["stage"] == "done"
    assert not events(status, p.TIMER_CREATED)


def test_transient_failure_is_retried_on_durable_timers_then_succeeds(orchestrators):
    script = Script([TRANSIENT, TRANSIENT, OK_EXTRACT], [OK_STORE])
    _, status = run(orchestrators, script)
    assert status["runtimeStatus"] == "Completed"
    assert names(script) == ["ExtractMetadata"] * 3 + ["StoreMetadata"]
    timers = events(status, p.TIMER_CREATED)
    starts = {e["EventId"]: e for e in events(status, p.TASK_SCHEDULED)}
    assert len(timers) == 2
    waited = [p.parse_timestamp(t["FireAt"]) - p.parse_timestamp(t["Timestamp"]) for t in timers]
    assert waited == [timedelta(seconds=5), timedelta(seconds=10)]
    assert len(starts) == 4


def test_crashed_activity_counts_as_transient(orchestrators):
    script = Script([RuntimeError("worker process exited"), OK_EXTRACT], [OK_STORE])
    _, status = run(orchestrators, script)
    assert status["runtimeStatus"] == "Completed"
    assert len(events(status, p.TASK_FAILED)) == 1


def test_retries_exhausted_record_failed_row_then_instance_fails(orchestrators):
    script = Script([OK_EXTRACT], [TRANSIENT])
    _, status = run(orchestrators, script)
    assert status["runtimeStatus"] == "Failed"
    # 1 try + one per delay for the processed row, then the same schedule for the failed row.
    assert names(script) == ["ExtractMetadata"] + ["StoreMetadata"] * 2 * (len(DELAYS) + 1)
    last = script.calls[-1][1]["record"]
    assert last["status"] == "failed" and "40613" in last["error"]
    assert "after 4 attempt(s)" in status["output"]
    assert status["customStatus"]["stage"] == "failed"
    assert status["customStatus"]["failedRowRecorded"] is False
    waited = [p.parse_timestamp(t["FireAt"]) - p.parse_timestamp(t["Timestamp"])
              for t in events(status, p.TIMER_CREATED)]
    assert waited == [timedelta(seconds=d) for d in DELAYS] * 2


def test_failed_row_is_retried_until_the_database_is_back(orchestrators):
    # The database is down through the whole schedule of the processed row and comes back while
    # the failed row is retried: the run still ends Failed, with its failed row recorded.
    script = Script([OK_EXTRACT], [TRANSIENT] * (len(DELAYS) + 1 + 2) + [OK_STORE])
    _, status = run(orchestrators, script)
    assert status["runtimeStatus"] == "Failed"
    assert names(script) == ["ExtractMetadata"] + ["StoreMetadata"] * (len(DELAYS) + 1 + 3)
    assert script.calls[-1][1]["record"]["status"] == "failed"
    assert status["customStatus"]["failedRowRecorded"] is True


def test_superseded_version_completes_and_writes_nothing(orchestrators):
    gone = {"outcome": "superseded", "reason": "blob was overwritten before this version could be read"}
    script = Script([TRANSIENT, gone], [OK_STORE])
    _, status = run(orchestrators, script)
    assert status["runtimeStatus"] == "Completed"
    assert names(script) == ["ExtractMetadata", "ExtractMetadata"]
    assert status["output"]["status"] == "superseded" and status["output"]["applied"] is False
    assert "overwritten" in status["output"]["reason"]
    assert status["customStatus"] == {"stage": "superseded", "blob": BLOB.name, "status": "superseded",
                                      "reason": gone["reason"]}


def test_extraction_never_succeeding_records_failed_row(orchestrators):
    script = Script([TRANSIENT], [OK_STORE])
    _, status = run(orchestrators, script, delays=(1.0,))
    assert status["runtimeStatus"] == "Failed"
    assert names(script) == ["ExtractMetadata", "ExtractMetadata", "StoreMetadata"]
    assert script.calls[-1][1]["record"]["status"] == "failed"
    assert status["customStatus"]["failedRowRecorded"] is True


def test_failed_row_after_extraction_is_retried_on_the_schedule(orchestrators):
    script = Script([TRANSIENT], [TRANSIENT, TRANSIENT, OK_STORE])
    _, status = run(orchestrators, script, delays=(1.0, 2.0))
    assert status["runtimeStatus"] == "Failed"
    assert names(script) == ["ExtractMetadata"] * 3 + ["StoreMetadata"] * 3
    assert status["customStatus"]["failedRowRecorded"] is True


def test_rejected_image_is_stored_with_reason_and_not_retried(orchestrators):
    rejected = {"outcome": "rejected", "reason": "not a supported image", "size_bytes": 12}
    script = Script([rejected], [OK_STORE])
    _, status = run(orchestrators, script)
    assert status["runtimeStatus"] == "Completed"
    assert names(script) == ["ExtractMetadata", "StoreMetadata"]
    record = script.calls[1][1]["record"]
    assert record["status"] == "rejected" and record["error"] == "not a supported image"
    assert status["output"]["status"] == "rejected"


def test_permanent_store_error_is_not_retried(orchestrators):
    permanent = {"outcome": "permanent", "reason": "ODBC driver 'X' is not installed"}
    script = Script([OK_EXTRACT], [permanent])
    _, status = run(orchestrators, script)
    assert status["runtimeStatus"] == "Failed"
    assert names(script) == ["ExtractMetadata", "StoreMetadata", "StoreMetadata"]
    assert not events(status, p.TIMER_CREATED)


def test_replay_of_full_history_is_deterministic(orchestrators):
    script = Script([TRANSIENT, OK_EXTRACT], [OK_STORE])
    _, status = run(orchestrators, script)
    history = [e for e in status["historyEvents"] if e["EventType"] != p.EXECUTION_COMPLETED]
    ctx = p.context_json("img-test", json.dumps(orchestration_input(BLOB, DELAYS)), history, [])
    main = orchestrators["ImageOrchestrator"]
    first, second = json.loads(main(ctx)), json.loads(main(ctx))
    assert first == second
    assert first["isDone"] is True
    kinds = [a["actionType"] for a in p.flatten(first["actions"])]
    assert kinds == [p.CALL_ACTIVITY, p.CREATE_TIMER, p.CALL_ACTIVITY, p.CALL_ACTIVITY]


def test_engine_fails_instance_whose_replay_disagrees_with_history(orchestrators):
    script = Script([TRANSIENT, OK_EXTRACT], [OK_STORE])
    engine = Engine(":memory:", orchestrators,
                    {n: python_activity(script.activity(n)) for n in ("ExtractMetadata", "StoreMetadata")},
                    ManualClock())
    engine.start("ImageOrchestrator", "img-x", json.dumps(orchestration_input(BLOB, DELAYS)))
    engine.process_episodes()
    # Tamper with the recorded history as a changed orchestrator would see it.
    row = engine.db.execute("SELECT history FROM instances").fetchone()
    history = json.loads(row[0])
    for e in history:
        if e["EventType"] == p.TASK_SCHEDULED:
            e["Name"] = "SomethingElse"
    engine.db.execute("UPDATE instances SET history = ?", (json.dumps(history),))
    engine.run_until_idle()
    status = engine.status("img-x")
    assert status["runtimeStatus"] == "Failed"
    assert "Non-Deterministic" in status["output"] and "SomethingElse" in status["output"]


def test_engine_runs_call_activity_with_retry_as_the_extension_does(test_orchestrators):
    attempts: list[str] = []

    def flaky(value: str) -> str:
        attempts.append(value)
        if len(attempts) < 3:
            raise ConnectionError("try again")
        return "done"

    engine = Engine(":memory:", test_orchestrators, {"Flaky": python_activity(flaky)}, ManualClock())
    engine.start("RetryingOrchestrator", "r1", json.dumps(None))
    engine.run_until_idle()
    status = engine.status("r1", show_history=True)
    assert status["runtimeStatus"] == "Completed" and status["output"] == "done"
    assert len(attempts) == 3
    assert len(events(status, p.TIMER_CREATED)) == 2


def test_engine_retry_exhaustion_waits_for_the_final_timer_then_fails(test_orchestrators):
    def broken(value: str) -> str:
        raise ConnectionError("still down")

    engine = Engine(":memory:", test_orchestrators, {"Flaky": python_activity(broken)}, ManualClock())
    engine.start("RetryingOrchestrator", "r2", json.dumps(None))
    engine.run_until_idle()
    status = engine.status("r2", show_history=True)
    assert status["runtimeStatus"] == "Failed"
    assert "still down" in status["output"]
    assert len(events(status, p.TASK_SCHEDULED)) == 3
    # one timer between attempts, plus the one after the last failure that the SDK waits for
    assert len(events(status, p.TIMER_CREATED)) == 3


def test_unsupported_actions_fail_the_instance_with_a_clear_reason(test_orchestrators):
    engine = Engine(":memory:", test_orchestrators, {}, ManualClock())
    engine.start("WaitingOrchestrator", "w1", json.dumps(None))
    engine.run_until_idle()
    status = engine.status("w1")
    assert status["runtimeStatus"] == "Failed"
    assert "not supported by the local host" in status["output"]
