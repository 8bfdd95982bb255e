"""bench.reconcile_scale at a tiny count, so the 100,000-blob benchmark cannot rot unnoticed.

The harness's counters must count what the passes really did: the planted blobs without a row
and with a failed row are each started once and run (one ranged read each), the deleted ones
cost one property read each, the routine pass starts nothing; and the meters, given a pass that
makes exactly one extra storage request and one extra SQL statement, count exactly one more of
each (a meter that returned fixed numbers, or counted nothing, fails).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench import reconcile_scale
from devhost.services import Azurite, Postgres, free_port
from shared.blob_access import blob_version, ensure_container
from shared.reconcile_flow import PassSettings
from shared.store import SqlStore, blob_key, store_for

COUNT = 200


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_the_harness_counts_what_a_first_and_a_routine_pass_do(db: str) -> None:
    result = reconcile_scale.run(COUNT, db, PassSettings(startsPerSecond=1000), timeout=300)
    seeding, first, routine = result["seeding"], result["first_pass"], result["routine_pass"]
    assert seeding["no_row"] > 0 and seeding["deleted_blobs"] > 0
    present = COUNT - seeding["deleted_blobs"]
    runs = seeding["no_row"] + seeding["failed_rows"]
    totals = first["report"]["result"]

    assert first["report"]["runtimeStatus"] == "Completed"
    assert totals["started"] == runs and first["starts"]["ImageOrchestrator"] == runs
    assert first["task_hub"]["instances"]["ImageOrchestrator"] == {"Completed": runs}
    requests = first["storage_requests"]
    assert requests["images-input List Blobs"] == math.ceil(present / 5000) == totals["listCalls"]
    assert requests["images-input Get Blob Properties"] == seeding["deleted_blobs"] == totals["propertyReads"]
    assert requests["images-input Get Blob (ranged)"] == runs  # each run reads its head once
    assert totals["rowsMarkedGone"] == seeding["deleted_blobs"]
    if db == "postgresql":
        assert first["sql_app_statements"] >= totals["sqlStatements"] + runs
    else:
        assert first["sql_statements"] is None

    routine_totals = routine["report"]["result"]
    assert routine["starts"] == {} and routine_totals["started"] == 0 and routine_totals["missingRows"] == 0
    assert "images-input Get Blob Properties" not in routine["storage_requests"]
    assert "images-input Get Blob (ranged)" not in routine["storage_requests"]
    assert routine["storage_requests"]["images-input List Blobs"] == math.ceil(present / 5000)
    assert result["projections"]["1000000"]["first_pass"]["starts"] == math.ceil(runs * 1_000_000 / COUNT)


def test_the_meters_count_one_more_request_and_statement_exactly(tmp_path: Path) -> None:
    log = tmp_path / "requests.log"
    azurite = Azurite.start(port=free_port(), location=tmp_path / "azurite", debug=log)
    postgres = Postgres.create({"log_statement": "all"})
    sql = postgres.create_database("meters")
    try:
        storage = azurite.connection_string
        ensure_container(storage, reconcile_scale.CONTAINER)
        SqlStore(sql).ensure_schema()
        key = blob_key(reconcile_scale.CONTAINER, "absent.png")
        assert store_for(sql).rows_by_keys([key]) == {}  # the session is open before measuring
        meters = reconcile_scale.Meters(log, postgres.datadir.parent / "log", tmp_path / "host")

        async def nothing() -> None:
            return None

        async def one_of_each() -> None:
            assert blob_version(storage, reconcile_scale.CONTAINER, "absent.png") is None
            assert store_for(sql).rows_by_keys([key]) == {}

        _, idle = meters.measure(nothing)
        _, once = meters.measure(one_of_each)
        assert idle["storage_requests_total"] == 0 and idle["sql_app_statements"] == 0
        assert once["storage_requests"] == {"images-input Get Blob Properties": 1}
        assert once["sql_app_statements"] == 1 and once["sql_statements"]["SELECT"] == 1
        assert once["starts"] == {}
    finally:
        store_for(sql).close()
        azurite.stop()
        postgres.destroy()
