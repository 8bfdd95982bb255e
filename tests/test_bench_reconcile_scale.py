"""bench.reconcile_scale at a tiny count, so the 100,000-blob benchmark cannot rot unnoticed.

The harness's counters must count what the passes really did: the planted blobs without a row
and with a failed row are each started once, the deleted ones cost one property read each, the
routine pass starts nothing; and the meters, given a pass that makes exactly one extra storage
request and one extra SQL statement, count exactly one more of each (a meter that returned fixed
numbers, or counted nothing, fails).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from bench import reconcile_scale
from devhost.services import Azurite, free_port
from shared.blob_access import blob_version, ensure_container
from shared.store import SqlStore, blob_key, store_for
from tests.durable import pipeline_engine

COUNT = 200


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_the_harness_counts_what_a_first_and_a_routine_pass_do(db: str) -> None:
    result = reconcile_scale.run(COUNT, db, "invocation")
    seeding, first, routine = result["seeding"], result["first_pass"], result["routine_pass"]
    assert seeding["no_row"] > 0 and seeding["deleted_blobs"] > 0
    present = COUNT - seeding["deleted_blobs"]

    assert first["starts"] == {"ImageOrchestrator": seeding["no_row"] + seeding["failed_rows"]}
    assert first["storage_requests"]["List Blobs"] == math.ceil(present / 5000)
    assert first["storage_requests"]["Get Blob Properties"] == seeding["deleted_blobs"]
    assert first["report"]["marked_deleted"] == seeding["deleted_blobs"]
    # One read per 500 listed keys, one per table page (the last one empty), one write per gone row.
    assert first["sql_app_statements"] >= first["report"]["sql_reads"] + seeding["deleted_blobs"]

    assert routine["starts"] == {}
    assert routine["storage_requests"] == {"List Blobs": math.ceil(present / 5000)}
    assert routine["report"]["marked_deleted"] == 0 and routine["report"]["missing_rows"] == 0
    assert routine["sql_app_statements"] < first["sql_app_statements"]
    assert result["projections"]["1000000"]["first_pass"]["starts"]["ImageOrchestrator"] == math.ceil(
        first["starts"]["ImageOrchestrator"] * 1_000_000 / COUNT)


def test_the_meters_count_one_more_request_and_statement_exactly(tmp_path: Path, sqlite_cs: str) -> None:
    log = tmp_path / "requests.log"
    azurite = Azurite.start(port=free_port(), location=tmp_path / "azurite", debug=log)
    try:
        storage = azurite.connection_string
        ensure_container(storage, reconcile_scale.CONTAINER)
        SqlStore(sqlite_cs).ensure_schema()
        engine = pipeline_engine({})
        counts: Counter[str] = Counter()
        meters = reconcile_scale.Meters(log, None, engine, counts)

        async def nothing() -> None:
            return None

        async def one_of_each() -> None:
            assert blob_version(storage, reconcile_scale.CONTAINER, "absent.png") is None
            assert store_for(sqlite_cs).rows_by_keys([blob_key(reconcile_scale.CONTAINER, "absent.png")]) == {}

        with reconcile_scale.counted_connections(counts):
            reconcile_scale.forget_connections()
            _, idle = meters.measure(nothing)
            _, once = meters.measure(one_of_each)
        assert idle["storage_requests_total"] == 0 and idle["sql_statements_total"] == 0
        assert once["storage_requests"] == {"Get Blob Properties": 1}
        assert once["sql_statements"] == {"SELECT": 1}
        assert once["starts"] == {}
        engine.close()
    finally:
        azurite.stop()
        reconcile_scale.forget_connections()
