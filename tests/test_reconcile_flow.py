"""The pass's own decisions, as pure functions of its state: phases, totals, pacing, settings.

The orchestration (``shared.reconcile_flow.orchestrate``) is these functions plus yields; the
end-to-end behaviour through the worker is in tests/test_e2e_reconcile.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import ConfigurationError
from shared.models import EXTRACTOR_VERSION
from shared.reconcile_flow import (
    PHASES,
    PassSettings,
    advance,
    begin,
    pass_settings,
    progress,
    reconcile_input,
    reindex_input,
    step_request,
)
from tests.durable import max_starts_in_window

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_pass_walks_its_phases_and_sums_the_steps_counters():
    state = begin(reconcile_input(PassSettings()), T0)
    assert (state["phase"], state["cursor"], state["generation"]) == ("deadletter", None, 0)
    seen = []
    cursors = {"deadletter": [None], "list": [{"token": "t1"}, {"token": "t2"}, None], "rows": [{"after": "ab"}, None],
               "cleanup": [None]}
    while state["phase"] != "done":
        seen.append(state["phase"])
        cursor = cursors[state["phase"]].pop(0)
        state = advance(state, {"cursor": cursor, "counters": {"blobsListed": 5, "started": 0, "bogus": 9}}, T0, T0)
        if cursor is not None:
            assert state["cursor"] == cursor  # carried to the next step of the same phase
    assert seen == ["deadletter", "list", "list", "list", "rows", "rows", "cleanup"]
    assert state["totals"]["pages"] == 7 and state["totals"]["blobsListed"] == 35
    assert "bogus" not in state["totals"]
    assert begin(state, T0 + timedelta(days=1)) is state  # a continued generation keeps its pass


def test_a_reindex_has_one_phase_and_an_unknown_mode_is_refused():
    state = begin(reindex_input(PassSettings()), T0)
    assert PHASES["reindex"] == ("reindex",) and state["phase"] == "reindex"
    assert advance(state, {"cursor": None, "counters": {}}, T0, T0)["phase"] == "done"
    with pytest.raises(ValueError, match="unknown pass mode"):
        begin({"mode": "reindx"}, T0)


def test_reindex_filters():
    plain = reindex_input(PassSettings())["filter"]
    assert (plain["olderThan"], plain["restartCompleted"]) == (EXTRACTOR_VERSION, False)
    by_status = reindex_input(PassSettings(), statuses=("failed", "rejected"))["filter"]
    assert (by_status["olderThan"], by_status["restartCompleted"], by_status["statuses"]) == \
        (None, True, ["failed", "rejected"])
    before = reindex_input(PassSettings(), before=T0)["filter"]
    assert before["before"] == T0.isoformat() and before["restartCompleted"] is True


def simulate(settings: PassSettings, steps: int, step_seconds: float, rate_in_advance: float | None = None
             ) -> list[datetime]:
    """Start times of a pass whose every step starts its full share, spread over the step."""
    state = begin(reconcile_input(settings), T0)
    state = {**state, "phase": "list"}
    if rate_in_advance is not None:  # the broken variant: pacing computed with another rate
        state["settings"] = {**state["settings"], "startsPerSecond": rate_in_advance}
    now, times = T0, []
    for _ in range(steps):
        if state["nextStepAt"] and datetime.fromisoformat(state["nextStepAt"]) > now:
            now = datetime.fromisoformat(state["nextStepAt"])
        began, k = now, settings.max_starts
        times += [began + timedelta(seconds=step_seconds * i / k) for i in range(k)]
        now = began + timedelta(seconds=step_seconds)
        state = advance(state, {"cursor": {"token": "t"}, "counters": {"started": k}}, began, now)
    return times




@pytest.mark.parametrize("step_seconds", [0.05, 0.5, 1.0])
def test_pacing_keeps_starts_within_the_rate_plus_one_step(step_seconds):
    settings = PassSettings(startsPerSecond=20, stepSeconds=1)
    times = simulate(settings, steps=30, step_seconds=step_seconds)
    for window in (1.0, 5.0, 10.0):
        assert max_starts_in_window(times, window) <= settings.startsPerSecond * window + settings.max_starts
    # Negative control: pacing at ten times the rate floods the same check.
    flood = simulate(settings, steps=30, step_seconds=step_seconds, rate_in_advance=200)
    if step_seconds < 1:
        assert max_starts_in_window(flood, 5.0) > settings.startsPerSecond * 5.0 + settings.max_starts


def test_no_wait_after_a_step_that_started_nothing():
    state = {**begin(reconcile_input(PassSettings()), T0), "phase": "list"}
    after = advance(state, {"cursor": {"token": "t"}, "counters": {"started": 0}}, T0, T0)
    assert after["nextStepAt"] is None
    paced = advance(state, {"cursor": {"token": "t"}, "counters": {"started": 100}}, T0, T0)
    assert paced["nextStepAt"] == (T0 + timedelta(seconds=2)).isoformat()  # 100 at 50/s


def test_step_request_and_progress_carry_what_the_step_and_the_status_need():
    state = begin(reindex_input(PassSettings(startsPerSecond=5, stepSeconds=4), prefix="a/"), T0)
    request = step_request(state)
    assert (request["phase"], request["maxStarts"], request["budgetSeconds"]) == ("reindex", 20, 4)
    assert request["filter"]["prefix"] == "a/" and request["passId"] == state["passId"]
    state = advance(state, {"cursor": {"after": "k"}, "counters": {"started": 10}}, T0, T0 + timedelta(seconds=2))
    status = progress(state, T0 + timedelta(seconds=4))
    assert (status["phase"], status["started"], status["startsPerSecond"], status["seconds"]) == ("reindex", 10, 2.5, 4)


def test_pass_settings_from_app_settings():
    assert pass_settings({}) == PassSettings()
    custom = pass_settings({"ReconcileStartsPerSecond": "7", "ReconcileListPageSize": "9000",
                            "ReconcilePagesPerGeneration": "4"})
    assert (custom.startsPerSecond, custom.listPageSize, custom.pagesPerGeneration) == (7, 5000, 4)
    with pytest.raises(ConfigurationError, match="ReconcileStartsPerSecond"):
        pass_settings({"ReconcileStartsPerSecond": "fast"})
