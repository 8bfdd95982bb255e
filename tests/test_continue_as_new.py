"""continue_as_new on the local engine, through Microsoft's worker and the real Durable SDK.

What the extension does, from its public sources (docs/host-protocol.md, ContinueAsNew):
the SDK ends the episode with ``isDone: true`` and, last among its actions, a ContinueAsNew
action (action type 4, ``{"actionType": 4, "input": <JSON text>}``: azure-functions-durable's
``models/actions/ContinueAsNewAction.py`` and ``ActionType.py``); the instance keeps its id,
gets a new ExecutionId and an empty history, its input becomes the new one, and its status reads
ContinuedAsNew until the new generation runs (Microsoft Learn, "Eternal orchestrations in Durable
Functions": "the instance ID is maintained but internally a new execution ID is created";
IDurableOrchestrationContext.ContinueAsNew: "Restarts the orchestration by clearing its history").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devhost.engine import Engine, ManualClock, python_activity
from devhost.functions import load_spec, registries
from tests.conftest import add_function

LOOP = """import azure.durable_functions as df


def run(context):
    state = context.get_input() or {{"n": 0, "total": 0}}
    for _ in range(3):
        value = yield context.call_activity("Echo", state["n"])
        state = {{"n": state["n"] + 1, "total": state["total"] + value}}
    if state["n"] < {steps} and {continues}:
        context.continue_as_new(state)
        return None
    if state["n"] < {steps}:
        # The broken variant: one generation that never continues as new, looping instead.
        while state["n"] < {steps}:
            value = yield context.call_activity("Echo", state["n"])
            state = {{"n": state["n"] + 1, "total": state["total"] + value}}
    return state


main = df.Orchestrator.create(run)
"""


@pytest.fixture(scope="module")
def loops(worker, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = Path(tmp_path_factory.mktemp("can"))
    trigger = [{"name": "context", "type": "orchestrationTrigger", "direction": "in"}]
    add_function(worker, root, "ContinuingLoop", trigger, LOOP.format(steps=30, continues=True))
    add_function(worker, root, "GrowingLoop", trigger, LOOP.format(steps=30, continues=False))
    return registries(worker, {n: load_spec(root / n) for n in ("ContinuingLoop", "GrowingLoop")})[0]


def _engine(loops: dict[str, Any]) -> Engine:
    return Engine(":memory:", loops, {"Echo": python_activity(lambda n: n)}, ManualClock())


def _history_lengths(engine: Engine, instance_id: str) -> tuple[list[int], list[str], list[str]]:
    """Drive the instance step by step; the history length, status and execution id after each step."""
    lengths, statuses, executions = [], [], []
    for _ in range(500):
        did = engine.process_episodes()
        if not did:
            items = engine.ready_activities()
            for item in items:
                engine.complete_activity(item, engine.execute_activity(item))
            if not items:
                break
        status = engine.status(instance_id, show_history=True)
        lengths.append(len(status["historyEvents"]))
        statuses.append(status["runtimeStatus"])
        executions.append(engine.db.execute("SELECT execution_id FROM instances WHERE instance_id = ?",
                                            (instance_id,)).fetchone()[0])
    return lengths, statuses, executions


def test_continue_as_new_resets_history_keeps_the_id_and_carries_the_input(loops):
    engine = _engine(loops)
    engine.start("ContinuingLoop", "loop-1", None)
    lengths, statuses, executions = _history_lengths(engine, "loop-1")
    final = engine.status("loop-1")
    assert final["runtimeStatus"] == "Completed"
    assert final["output"] == {"n": 30, "total": sum(range(30))}
    assert engine.generations["loop-1"] == 9  # 10 generations of 3 steps: 9 restarts
    assert "ContinuedAsNew" in statuses
    assert len(set(executions)) == 10  # a new ExecutionId per generation, the instance id kept
    # Each generation's history: 3 activities (scheduled + completed) plus episode markers.
    assert max(lengths) <= 20
    # Its input is the carried state: the last generation started at n = 27.
    assert engine.status("loop-1")["input"] == {"n": 27, "total": sum(range(27))}


def test_negative_control_without_continue_as_new_the_history_grows_with_the_work(loops):
    engine = _engine(loops)
    engine.start("GrowingLoop", "loop-2", None)
    lengths, statuses, executions = _history_lengths(engine, "loop-2")
    assert engine.status("loop-2")["output"] == {"n": 30, "total": sum(range(30))}
    assert "loop-2" not in engine.generations and "ContinuedAsNew" not in statuses
    assert max(lengths) > 90  # 30 activities: the bound above would fail here


def test_results_of_the_old_generation_do_not_reach_the_new_one(loops):
    """A result still in flight when a generation ended names the old ExecutionId: it is dropped,
    not taken as the answer to the new generation's first task (which has the same task id 0)."""
    engine = _engine(loops)
    engine.start("ContinuingLoop", "loop-3", None)
    first_execution = engine.db.execute("SELECT execution_id FROM instances").fetchone()[0]
    injected = False
    for _ in range(300):
        if not injected and engine.generations.get("loop-3") == 1:
            engine.db.execute("INSERT INTO inbox (instance_id, execution_id, event) VALUES (?, ?, ?)",
                              ("loop-3", first_execution, json.dumps({
                                  "EventType": 5, "EventId": -1, "IsPlayed": False, "TaskScheduledId": 0,
                                  "Result": "1000", "Timestamp": "2026-01-01T00:00:00.000000Z"})))
            injected = True
        if engine.process_episodes():
            continue
        items = engine.ready_activities()
        if not items:
            break
        engine.complete_activity(items[0], engine.execute_activity(items[0]))
    assert injected
    assert engine.status("loop-3")["output"] == {"n": 30, "total": sum(range(30))}
