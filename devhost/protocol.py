"""The wire format between the Durable extension and a Python orchestrator.

Builds the context JSON the extension sends (replay schema V3), reads the
OrchestratorState JSON the SDK returns, and flattens its actions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

OUT_OF_PROC_MARKER = "\n\n$OutOfProcData$:"

# History event types (DurableTask HistoryEventType).
EXECUTION_STARTED = 0
EXECUTION_COMPLETED = 1
TASK_SCHEDULED = 4
TASK_COMPLETED = 5
TASK_FAILED = 6
TIMER_CREATED = 10
TIMER_FIRED = 11
ORCHESTRATOR_STARTED = 12
ORCHESTRATOR_COMPLETED = 13

# Action types.
CALL_ACTIVITY = 0
CALL_ACTIVITY_WITH_RETRY = 1
CONTINUE_AS_NEW = 4
CREATE_TIMER = 5
WHEN_ANY = 11
WHEN_ALL = 12


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def event(event_type: int, event_id: int, moment: datetime, **fields: Any) -> dict[str, Any]:
    return {"EventType": event_type, "EventId": event_id, "IsPlayed": False,
            "Timestamp": timestamp(moment), **fields}


def context_json(instance_id: str, input_json: str | None, played: list[dict[str, Any]],
                 new: list[dict[str, Any]]) -> str:
    history = [{**e, "IsPlayed": True} for e in played] + [{**e, "IsPlayed": False} for e in new]
    return json.dumps({
        "history": history,
        "input": input_json,
        "instanceId": instance_id,
        "isReplaying": bool(played),
        "parentInstanceId": None,
        "upperSchemaVersion": 1,
        "upperSchemaVersionNew": 2,
    })


@dataclass
class EpisodeResult:
    """What one call of the orchestrator's ``main`` decided."""

    done: bool
    actions: list[dict[str, Any]] = field(default_factory=list)
    output: Any = None
    custom_status: Any = None
    error: str | None = None


def flatten(actions: list[Any]) -> list[dict[str, Any]]:
    """Leaf actions in yield order; V3 nests them in one list and in WhenAll/WhenAny."""
    leaves: list[dict[str, Any]] = []
    for item in actions:
        if isinstance(item, list):
            leaves.extend(flatten(item))
        elif item.get("actionType") in (WHEN_ALL, WHEN_ANY):
            leaves.extend(flatten(item.get("compoundActions") or []))
        else:
            leaves.append(item)
    return leaves


def run_episode(main: Callable[[Any], str], context: str) -> EpisodeResult:
    """Call the orchestrator as the worker does and decode its answer."""
    try:
        raw = main(context)
    except Exception as exc:  # noqa: BLE001 - an orchestrator failure is an outcome, not a host crash
        message = str(exc)
        if OUT_OF_PROC_MARKER in message:
            text, state_json = message.split(OUT_OF_PROC_MARKER, 1)
            try:
                state = json.loads(state_json)
            except json.JSONDecodeError:
                state = {}
            return EpisodeResult(done=True, actions=flatten(state.get("actions") or []),
                                 custom_status=state.get("customStatus"),
                                 error=state.get("error") or text)
        return EpisodeResult(done=True, error=f"{type(exc).__name__}: {message}")
    state = json.loads(raw)
    return EpisodeResult(
        done=bool(state.get("isDone")),
        actions=flatten(state.get("actions") or []),
        output=state.get("output"),
        custom_status=state.get("customStatus"),
        error=state.get("error"),
    )
