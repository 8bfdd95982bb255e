"""Property test: random sequences of upserts and deletions through the real SQLite and PostgreSQL
stores and through a pure-Python model of the table (the decision tables of shared.store.rules
applied to dicts) end in the same rows, with the same outcome for every step."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.models import STATUS_DELETED, BlobRef, ImageMetadata, ImageRecord
from shared.store import APPLIED, KEPT, TIED, SqlStore
from shared.store.columns import BY_NAME, blob_key
from shared.store.rules import APPLY, DELETE_TABLE, KEEP, UPSERT_TABLE, decide, merged_sequencer

BASE = datetime(2026, 1, 1, 10, 0, 0)
COMPARED = ("ETag", "Status", "Sequencer", "Width", "ExtractorVersion", "BlobLastModified", "DeletedAt")

upserts = st.fixed_dictionaries({
    "op": st.just("upsert"),
    "etag": st.sampled_from(["v1", "v2", "v3"]),
    "second": st.integers(0, 3),
    "seq": st.one_of(st.none(), st.integers(1, 6)),
    "status": st.sampled_from(["processed", "rejected", "failed"]),
    "ev": st.sampled_from([2, 3]),
    "width": st.integers(1, 9),
})
deletes = st.fixed_dictionaries({
    "op": st.just("delete"),
    "second": st.integers(0, 3),
    "millis": st.sampled_from([0, 400]),
    "seq": st.one_of(st.none(), st.integers(1, 6)),
    "etag": st.one_of(st.none(), st.sampled_from(["v1", "v2", "v3"])),
})
sequences = st.lists(st.one_of(upserts, deletes), min_size=1, max_size=8)


def seq_text(n: int | None) -> str | None:
    return None if n is None else f"{n:032X}"


def to_record(name: str, step: dict[str, Any]) -> ImageRecord:
    when = (BASE + timedelta(seconds=step["second"])).isoformat() + "+00:00"
    blob = BlobRef("images-input", name, step["etag"], size=1, last_modified=when, sequencer=seq_text(step["seq"]))
    meta = ImageMetadata(width=step["width"], extractor_version=step["ev"])
    return ImageRecord.for_blob(blob, step["status"], metadata=meta)


class Model:
    """The table as dicts: insert when absent, else the decision table says whether to replace."""

    def __init__(self, store: SqlStore) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.store = store

    def upsert(self, record: ImageRecord) -> str:
        new = self.store._record_values(record)
        old = self.rows.get(new["BlobKey"])
        if old is None:
            self.rows[new["BlobKey"]] = new
            return APPLIED
        outcome = decide(UPSERT_TABLE, old, new).outcome
        if outcome != APPLY:
            return KEPT if outcome == KEEP else TIED
        self.rows[new["BlobKey"]] = {**new, "Sequencer": merged_sequencer(old, new)}
        return APPLIED

    def delete(self, name: str, when: datetime, seq: str | None, etag: str | None) -> bool:
        key = blob_key("images-input", name)
        d = self.store.dialect
        new = {"ETag": etag, "Sequencer": seq, "DeletedAt": d.to_db(BY_NAME["DeletedAt"], when.replace(microsecond=0)),
               "Status": STATUS_DELETED, "BlobLastModified": None, "ExtractorVersion": None}
        old = self.rows.get(key)
        if old is None:
            self.rows[key] = {**new, "Width": None}
            return True
        if decide(DELETE_TABLE, old, new).outcome != APPLY:
            return False
        old.update(Status=STATUS_DELETED, DeletedAt=new["DeletedAt"], Sequencer=merged_sequencer(old, new))
        return True


_names = itertools.count()


def normal(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def check(store: SqlStore, steps: list[dict[str, Any]]) -> None:
    name = f"prop-{next(_names)}.png"
    model = Model(store)
    for step in steps:
        if step["op"] == "upsert":
            record = to_record(name, step)
            assert store.upsert_outcome(record) == model.upsert(record), (step, steps)
        else:
            when = BASE + timedelta(seconds=step["second"], milliseconds=step["millis"])
            args = (name, when, seq_text(step["seq"]), step["etag"])
            assert store.mark_deleted("images-input", name, deleted_at=when, sequencer=args[2],
                                      etag=args[3]) == model.delete(*args), (step, steps)
    [row] = [r for r in store.rows() if r["BlobName"] == name]
    expected = model.rows[blob_key("images-input", name)]
    got = {c: normal(row[c]) for c in COMPARED}
    want = {c: normal(expected.get(c)) for c in COMPARED}
    assert got == want, steps


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_store(request: pytest.FixtureRequest) -> SqlStore:
    cs = request.getfixturevalue("sqlite_cs" if request.param == "sqlite" else "postgres_cs")
    store = SqlStore(cs)
    store.ensure_schema()
    return store


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=sequences)
def test_real_engines_and_the_model_end_in_the_same_rows(engine_store, steps):
    check(engine_store, steps)


def test_the_model_check_catches_a_wrong_rule(engine_store, monkeypatch):
    """Negative control: a model where a same-second other version simply wins disagrees with
    the engines on the sequence that shows it."""
    import shared.store.rules as rules

    broken = tuple(d for d in UPSERT_TABLE if d.outcome != rules.TIE) + (rules.Decision((), APPLY, "wins"),)
    monkeypatch.setattr(f"{__name__}.UPSERT_TABLE", broken)
    steps = [{"op": "upsert", "etag": "v1", "second": 0, "seq": None, "status": "processed", "ev": 2, "width": 1},
             {"op": "upsert", "etag": "v2", "second": 0, "seq": None, "status": "processed", "ev": 2, "width": 2}]
    with pytest.raises(AssertionError):
        check(engine_store, steps)


def test_every_decision_row_is_reachable():
    """Each row of both tables decides some case (no dead rule the SQL would carry)."""
    seen_upsert, seen_delete = set(), set()
    stamps = [None, "2026-01-01 10:00:00", "2026-01-01 10:00:01"]
    for o_status, o_etag, n_etag, o_seq, n_seq, o_lm, n_lm, o_del, o_ev, n_ev, n_status in itertools.product(
            ["processed", "failed", "deleted"], [None, "a"], ["a", "b"], [None, "1"], [None, "2", "0"],
            stamps, stamps, stamps, [2, 3], [2, 3], ["processed", "rejected", "failed"]):
        o = {"Status": o_status, "ETag": o_etag, "Sequencer": o_seq, "BlobLastModified": o_lm,
             "DeletedAt": o_del, "ExtractorVersion": o_ev}
        n = {"Status": n_status, "ETag": n_etag, "Sequencer": n_seq, "BlobLastModified": n_lm,
             "DeletedAt": n_lm, "ExtractorVersion": n_ev}
        seen_upsert.add(decide(UPSERT_TABLE, o, n).why)
        seen_delete.add(decide(DELETE_TABLE, o, {**n, "ETag": None if n_status == "failed" else n_etag}).why)
    assert seen_upsert == {d.why for d in UPSERT_TABLE}
    assert seen_delete == {d.why for d in DELETE_TABLE}


def test_every_dialect_statement_is_generated_from_the_tables():
    """One CASE row per decision row, in order, in every dialect's upsert and deletion; a change
    to a table changes the SQL (nothing else writes these conditions)."""
    from shared.store import PostgresDialect, SQLiteDialect, TSqlDialect
    from shared.store.rules import sql_case

    for dialect in (SQLiteDialect(), PostgresDialect(), TSqlDialect()):
        upsert, delete = dialect.upsert().sql, dialect.mark_deleted().sql
        assert upsert.count(" WHEN (") == len(UPSERT_TABLE) - 1 and "THEN 1 WHEN" in upsert
        assert delete.count(" WHEN (") == len(DELETE_TABLE) - 1
        old, new = ("t", "s") if dialect.name == "tsql" else ("ImageMetadata", "excluded" if dialect.name == "sqlite"
                                                                else "EXCLUDED")
        assert sql_case(UPSERT_TABLE, old, new, dialect.ordinal) in upsert
        assert sql_case(UPSERT_TABLE[1:], old, new, dialect.ordinal) not in upsert
