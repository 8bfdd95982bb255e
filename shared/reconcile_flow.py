"""Reconciliation and re-index as one durable, singleton orchestration (ReconcileOrchestrator).

One pass is a sequence of steps, each one ReconcilePage activity call (``shared.reconcile_pages``)
that carries its cursor (a List Blobs continuation token, or the last BlobKey of a table page)
in and out. The orchestration holds the cursor and the running totals in its input, so:

* a host killed at any moment replays the history and resumes at the last completed step (an
  activity that was running runs again: each step is idempotent);
* every ``pagesPerGeneration`` steps it continues as new with that state, which keeps its
  history short (a few events per step) however large the container;
* its custom status shows the progress (phase, pages, blobs listed, versions started, rows
  marked gone, starts per second), which ``make status`` reads;
* starts are paced with durable timers: after a step that started k runs, the next step waits
  until k / ``startsPerSecond`` seconds after the step began, and one step starts at most
  ``startsPerSecond x stepSeconds`` runs. Over any stretch of steps the rate is therefore at
  most the setting, plus one step's share.

A reconciliation's phases: ``deadletter`` (re-queue what Event Grid gave up on), ``list`` (the
container, starting what has no final row), ``rows`` (the table, marking rows of gone blobs),
``cleanup`` (the pass's state). A re-index has one: ``reindex`` (table rows by filter).
All of it runs under one instance id, ``RECONCILE_INSTANCE_ID``: a start while an instance is
under way is refused (``start_pass``), so two passes never run at once.

Everything here is deterministic (times come from the orchestration context), as replay needs.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.models import EXTRACTOR_VERSION
from shared.settings import (
    DEFAULT_RETRY_DELAYS,
    RECONCILE_ACTIVITY,
    RECONCILE_INSTANCE_ID,
    RECONCILE_ORCHESTRATOR,
    int_setting,
)

log = logging.getLogger(__name__)

STEP_RETRY_DELAYS = DEFAULT_RETRY_DELAYS

PHASES = {"reconcile": ("deadletter", "list", "rows", "cleanup"), "reindex": ("reindex",)}
ACTIVE = frozenset({"Pending", "Running", "ContinuedAsNew", "Suspended"})
# Totals the status shows, summed over the steps' counters.
TOTALS = ("pages", "listCalls", "blobsListed", "missingRows", "otherVersionRows", "failedRows",
          "deletedRowsOfPresentBlobs", "started", "alreadyCovered", "rowsChecked", "rowsSelected",
          "propertyReads", "rowsMarkedGone", "sqlStatements", "stateCalls", "stateBytes", "deadLetterBlobs",
          "deadLetterEventsRequeued", "deadLetterBlobsFailed", "waits", "stepRetries", "stateBytesWritten",
          "stateBytesRead")
# Seconds spent in each phase's steps (the activities' own time), summed.
PHASE_SECONDS = tuple(f"{phase}Seconds" for phase in ("deadletter", "list", "rows", "cleanup", "reindex"))


@dataclass(frozen=True)
class PassSettings:
    """How a pass paces itself; read from app settings by whoever starts it (see docs)."""

    startsPerSecond: float = 50.0     # ReconcileStartsPerSecond
    stepSeconds: int = 10             # ReconcileStepSeconds: one step's share of starts and its time budget
    pagesPerGeneration: int = 20      # ReconcilePagesPerGeneration: steps between continue_as_new
    listPageSize: int = 5000          # ReconcileListPageSize (List Blobs maximum: 5,000)
    rowPageSize: int = 2000           # ReconcileRowPageSize

    @property
    def max_starts(self) -> int:
        return max(1, int(self.startsPerSecond * self.stepSeconds))


def pass_settings(env: Mapping[str, str] | None = None) -> PassSettings:
    defaults = PassSettings()
    return PassSettings(
        startsPerSecond=float(int_setting(env, "ReconcileStartsPerSecond", int(defaults.startsPerSecond))),
        stepSeconds=int_setting(env, "ReconcileStepSeconds", defaults.stepSeconds),
        pagesPerGeneration=int_setting(env, "ReconcilePagesPerGeneration", defaults.pagesPerGeneration),
        listPageSize=min(5000, int_setting(env, "ReconcileListPageSize", defaults.listPageSize)),
        rowPageSize=int_setting(env, "ReconcileRowPageSize", defaults.rowPageSize),
    )


def reindex_input(settings: PassSettings, *, statuses: tuple[str, ...] = (), prefix: str = "",
                  before: datetime | None = None) -> dict[str, Any]:
    """A re-index's input. No filter: every live row written by an older extractor. An explicit
    filter takes matching rows whatever their version and restarts Completed instances too."""
    explicit = bool(statuses or prefix or before)
    flt = {"statuses": list(statuses), "prefix": prefix, "before": before.isoformat() if before else None,
           "olderThan": None if explicit else EXTRACTOR_VERSION, "restartCompleted": explicit}
    return {"mode": "reindex", "settings": asdict(settings), "filter": flt}


def reconcile_input(settings: PassSettings) -> dict[str, Any]:
    return {"mode": "reconcile", "settings": asdict(settings)}


def _stamp(moment: datetime) -> str:
    return moment.isoformat()


def begin(state: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Fill in what a new pass needs (a generation that continues as new keeps its own)."""
    if "passId" in state:
        return state
    mode = state.get("mode", "reconcile")
    if mode not in PHASES:
        raise ValueError(f"unknown pass mode {mode!r}: 'reconcile' or 'reindex'")
    return {**state, "mode": mode, "settings": {**asdict(PassSettings()), **(state.get("settings") or {})},
            "passId": now.strftime("%Y%m%dT%H%M%S%fZ"), "phase": PHASES[mode][0], "cursor": None,
            "totals": dict.fromkeys(TOTALS + PHASE_SECONDS, 0), "startedAt": _stamp(now), "nextStepAt": None, "generation": 0}


def step_request(state: dict[str, Any]) -> dict[str, Any]:
    settings = PassSettings(**state["settings"])
    return {"phase": state["phase"], "cursor": state["cursor"], "passId": state["passId"],
            "maxStarts": settings.max_starts, "budgetSeconds": settings.stepSeconds,
            "listPageSize": settings.listPageSize, "rowPageSize": settings.rowPageSize,
            "filter": state.get("filter")}


def advance(state: dict[str, Any], result: dict[str, Any], began: datetime, now: datetime) -> dict[str, Any]:
    """The state after one step: totals added, cursor moved (next phase when it is None), and the
    earliest moment the next step may begin so starts stay within the rate."""
    totals = dict(state["totals"])
    for name, value in (result.get("counters") or {}).items():
        if name in totals:
            totals[name] += value
    totals["pages"] += 1
    phase, cursor = state["phase"], result.get("cursor")
    seconds = f"{phase}Seconds"
    totals[seconds] = round(totals.get(seconds, 0) + (result.get("counters") or {}).get("stepSeconds", 0), 3)
    if cursor is None:
        phases = PHASES[state["mode"]]
        at = phases.index(phase)
        phase = phases[at + 1] if at + 1 < len(phases) else "done"
    started = (result.get("counters") or {}).get("started", 0)
    rate = float(state["settings"]["startsPerSecond"])
    next_at = began + timedelta(seconds=started / rate) if started else None
    return {**state, "totals": totals, "phase": phase, "cursor": cursor,
            "nextStepAt": _stamp(next_at) if next_at and next_at > now else None}


def progress(state: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The custom status: where the pass is and what it did so far."""
    seconds = max(0.0, (now - datetime.fromisoformat(state["startedAt"])).total_seconds())
    totals = state["totals"]
    return {"mode": state["mode"], "passId": state["passId"], "phase": state["phase"],
            "generation": state["generation"], **totals, "seconds": round(seconds, 3),
            "startsPerSecond": round(totals["started"] / seconds, 2) if seconds else 0.0,
            "startsPerSecondLimit": state["settings"]["startsPerSecond"], "filter": state.get("filter"),
            "startedAt": state["startedAt"], "updatedAt": _stamp(now)}


def orchestrate(context: Any) -> Generator[Any, Any, dict[str, Any] | None]:
    """The pass, step by step (see the module docstring)."""
    now = context.current_utc_datetime
    state = begin(dict(context.get_input() or {}), now)
    steps = 0
    while state["phase"] != "done":
        if steps >= state["settings"]["pagesPerGeneration"]:
            context.set_custom_status(progress(state, now))
            context.continue_as_new({**state, "generation": state["generation"] + 1})
            return None
        if state["nextStepAt"] and datetime.fromisoformat(state["nextStepAt"]) > now:
            yield context.create_timer(datetime.fromisoformat(state["nextStepAt"]))
            state = {**state, "totals": {**state["totals"], "waits": state["totals"]["waits"] + 1}}
            now = context.current_utc_datetime
        began = now
        result = None
        for delay in (*STEP_RETRY_DELAYS, None):
            try:
                result = yield context.call_activity(RECONCILE_ACTIVITY, step_request(state))
                break
            except Exception:
                # Storage or database unavailable (a paused database resumes within a minute): the
                # step is idempotent, so it runs again after a durable timer; the last failure fails
                # the pass (its status says why; the next start begins a new pass).
                if delay is None:
                    raise
                state = {**state, "totals": {**state["totals"], "stepRetries": state["totals"]["stepRetries"] + 1}}
                yield context.create_timer(context.current_utc_datetime + timedelta(seconds=delay))
        now = context.current_utc_datetime
        state = advance(state, result, began, now)
        steps += 1
        context.set_custom_status(progress(state, now))
    final = progress(state, now)
    if not context.is_replaying:
        log.info("%s pass %s done: %s", state["mode"], state["passId"], final)
    return final


async def start_pass(client: Any, pass_input: dict[str, Any]) -> bool:
    """Start the singleton pass; False (and a log line saying why) when one is under way."""
    status = await client.get_status(RECONCILE_INSTANCE_ID)
    runtime = getattr(status, "runtime_status", None)
    existing = getattr(runtime, "value", runtime) if status else None
    if existing in ACTIVE:
        log.warning("a reconciliation or re-index is already running (instance %s is %s): not starting "
                    "another %s; see its progress with 'make status'", RECONCILE_INSTANCE_ID, existing,
                    pass_input.get("mode"))
        return False
    try:
        await client.start_new(RECONCILE_ORCHESTRATOR, RECONCILE_INSTANCE_ID, pass_input)
    except Exception as exc:
        if "already exists" in str(exc).lower() or "OrchestrationAlreadyExists" in str(exc):
            log.warning("a reconciliation or re-index was started meanwhile (instance %s): not starting "
                        "another %s", RECONCILE_INSTANCE_ID, pass_input.get("mode"))
            return False
        raise
    log.info("started %s pass as instance %s", pass_input.get("mode"), RECONCILE_INSTANCE_ID)
    return True
