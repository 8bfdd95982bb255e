"""Deletions in the store, on real SQLite and PostgreSQL: kept rows, and no old event undoing a newer state.

Event Grid's ``sequencer`` is "an opaque string value representing the logical sequence of
events for any particular blob name. Users can use standard string comparison to understand
the relative sequence of two events on the same blob name" (StorageBlobCreatedEventData,
@azure/eventgrid reference, learn.microsoft.com). The docs' samples use 32 and 48 hex
digits, upper and lower case (event-schema-blob-storage.md), so the store compares them by
code point whatever the database collation.
"""

from __future__ import annotations

from datetime import UTC, datetime

from shared.models import BlobRef, ImageMetadata, ImageRecord
from shared.store import APPLIED, KEPT, SUPERSEDED, TIED, SqlStore

T0 = "2026-01-01T10:00:00+00:00"
T1 = "2026-01-01T10:00:05+00:00"
T2 = "2026-01-01T10:00:06+00:00"


def run_result(name: str, etag: str, modified: str | None, seq: str | None = None,
               status: str = "processed", width: int = 10) -> ImageRecord:
    blob = BlobRef("images-input", name, etag, size=100, last_modified=modified, sequencer=seq)
    return ImageRecord.for_blob(blob, status, metadata=ImageMetadata(width=width, format="PNG"),
                                instance_id=f"img-{etag}")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def row(store: SqlStore, name: str = "a.png") -> dict:
    [found] = [r for r in store.rows() if r["BlobName"] == name]
    return found


def seq(n: int) -> str:
    return f"{n:032X}"


def test_delete_keeps_the_row_with_status_time_and_metadata(any_db_cs):
    store = SqlStore(any_db_cs)
    store.upsert(run_result("a.png", "v1", T0, seq(1), width=42))
    assert store.mark_deleted("images-input", "a.png", deleted_at=at(T1), sequencer=seq(2)) is True
    r = row(store)
    assert (r["Status"], r["ETag"], r["Width"], r["Sequencer"]) == ("deleted", "v1", 42, seq(2))
    assert str(r["DeletedAt"]).startswith("2026-01-01 10:00:05")
    assert len(store.rows()) == 1


def test_duplicate_delete_changes_nothing(any_db_cs):
    store = SqlStore(any_db_cs)
    store.upsert(run_result("a.png", "v1", T0, seq(1)))
    assert store.mark_deleted("images-input", "a.png", deleted_at=at(T1), sequencer=seq(2)) is True
    assert store.mark_deleted("images-input", "a.png", deleted_at=at(T1), sequencer=seq(2)) is False
    assert row(store)["Status"] == "deleted"


def test_old_delete_after_new_upload_is_refused_by_sequencer(any_db_cs):
    """upload v1 (seq 1), delete (seq 2), upload v2 (seq 3); the delete arrives last."""
    store = SqlStore(any_db_cs)
    store.upsert(run_result("a.png", "v2", T1, seq(3), width=2))
    assert store.mark_deleted("images-input", "a.png", deleted_at=at(T0), sequencer=seq(2)) is False
    assert (row(store)["Status"], row(store)["ETag"]) == ("processed", "v2")


def test_old_delete_without_sequencers_is_refused_by_version_time(any_db_cs):
    """The row came from the blob trigger (no sequencer): its Last-Modified is after the delete."""
    store = SqlStore(any_db_cs)
    store.upsert(run_result("a.png", "v2", T1))
    assert store.mark_deleted("images-input", "a.png", deleted_at=at(T0), sequencer=seq(2)) is False
    assert row(store)["Status"] == "processed"
    assert store.mark_deleted("images-input", "a.png", deleted_at=at("2026-01-01T10:00:06+00:00"),
                              sequencer=seq(4)) is True


def test_delete_then_reupload_replaces_the_deleted_row(any_db_cs):
    store = SqlStore(any_db_cs)
    store.upsert(run_result("a.png", "v1", T0, seq(1), width=1))
    store.mark_deleted("images-input", "a.png", deleted_at=at(T0), sequencer=seq(2))
    assert store.upsert(run_result("a.png", "v2", T1, seq(3), width=2)) is True
    r = row(store)
    assert (r["Status"], r["ETag"], r["Width"], r["DeletedAt"]) == ("processed", "v2", 2, None)


def test_delete_then_reupload_without_sequencers(any_db_cs):
    """Blob trigger + reconciliation (no events): the new version's time decides."""
    store = SqlStore(any_db_cs)
    store.upsert(run_result("a.png", "v1", T0))
    assert store.mark_deleted("images-input", "a.png", deleted_at=at(T1), etag="v1") is True
    assert store.upsert(run_result("a.png", "v2", T2)) is True
    assert row(store)["Status"] == "processed"


def test_reupload_in_the_second_of_the_deletion_is_a_tie_that_storage_decides(any_db_cs):
    """Last-Modified has one-second precision: a version written in the second of the deletion
    may be older or newer than it. The store reports a tie; storage's current ETag decides."""
    store = SqlStore(any_db_cs)
    store.upsert(run_result("a.png", "v1", T0))
    store.mark_deleted("images-input", "a.png", deleted_at=at("2026-01-01T10:00:05.700+00:00"), etag="v1")
    late = run_result("a.png", "v2", T1)
    assert store.upsert_outcome(late) == TIED
    assert row(store)["Status"] == "deleted"
    assert store.resolve_tie(late, is_current=False) == SUPERSEDED
    assert row(store)["Status"] == "deleted"
    assert store.resolve_tie(late, is_current=True) == APPLIED
    assert (row(store)["Status"], row(store)["ETag"]) == ("processed", "v2")


def test_late_run_of_the_deleted_version_does_not_bring_it_back(any_db_cs):
    store = SqlStore(any_db_cs)
    store.upsert(run_result("a.png", "v1", T0, seq(1), status="failed"))
    store.mark_deleted("images-input", "a.png", deleted_at=at(T1), sequencer=seq(2))
    assert store.upsert(run_result("a.png", "v1", T0, seq(1))) is False
    assert store.upsert(run_result("a.png", "v1", T0)) is False  # same version, no sequencer either
    assert row(store)["Status"] == "deleted"


def test_delete_before_any_row_leaves_a_tombstone_that_orders_the_late_run(any_db_cs):
    """Upload then delete; the delete event is handled before the upload's run stores its row."""
    store = SqlStore(any_db_cs)
    assert store.mark_deleted("images-input", "a.png", deleted_at=at(T1), sequencer=seq(2)) is True
    tomb = row(store)
    assert (tomb["Status"], tomb["ETag"], tomb["FileName"]) == ("deleted", None, "a.png")
    assert store.upsert(run_result("a.png", "v1", T0, seq(1), status="rejected")) is False
    assert store.upsert(run_result("a.png", "v2", T1, seq(3))) is True
    assert row(store)["Status"] == "processed"


def test_older_run_result_never_replaces_newer_by_sequencer_even_in_the_same_second(any_db_cs):
    store = SqlStore(any_db_cs)
    store.upsert(run_result("a.png", "v2", T0, seq(5), width=2))
    assert store.upsert(run_result("a.png", "v1", T0, seq(4), width=1)) is False
    assert row(store)["Width"] == 2
    # Without sequencers the same-second pair cannot be ordered: another ETag is not "newer".
    other = SqlStore(any_db_cs)
    other.upsert(run_result("b.png", "v2", T0, width=2))
    older = run_result("b.png", "v1", T0, width=1)
    assert other.upsert_outcome(older) == TIED
    assert other.resolve_tie(older, is_current=False) == SUPERSEDED
    assert row(other, "b.png")["Width"] == 2


def test_a_tie_resolved_as_current_writes_only_over_the_row_it_was_decided_on(any_db_cs):
    """Compare-and-swap: if the row changes between the tie and the write, it is decided again."""
    store = SqlStore(any_db_cs)
    store.upsert(run_result("a.png", "v1", T0, width=1))
    mine = run_result("a.png", "v2", T0, width=2)
    assert store.upsert_outcome(mine) == TIED
    store.upsert(run_result("a.png", "v3", T1, width=3))  # a newer version lands meanwhile
    assert store.resolve_tie(mine, is_current=True) == KEPT
    assert row(store)["Width"] == 3
    assert store.upsert_outcome(run_result("a.png", "v4", T1, width=4)) == TIED
    assert store.resolve_tie(run_result("a.png", "v4", T1, width=4), is_current=True) == APPLIED
    assert row(store)["Width"] == 4


def test_sequencer_is_kept_when_a_write_carries_none(any_db_cs):
    store = SqlStore(any_db_cs)
    store.upsert(run_result("a.png", "v1", T0, seq(5)))
    assert store.upsert(run_result("a.png", "v1", T0, None, status="processed")) is True
    assert row(store)["Sequencer"] == seq(5)
    assert store.upsert(run_result("a.png", "v2", T1, None)) is True
    assert row(store)["Sequencer"] == seq(5)
    assert store.upsert(run_result("a.png", "v0", T1, seq(4))) is False  # an earlier event still loses


def test_late_run_never_resurrects_a_newer_tombstone_without_sequencers(any_db_cs):
    store = SqlStore(any_db_cs)
    assert store.mark_deleted("images-input", "a.png", deleted_at=at(T2), sequencer=seq(9)) is True
    assert store.upsert(run_result("a.png", "v1", T0)) is False  # blob trigger run: no sequencer
    assert store.upsert_outcome(run_result("a.png", "v1", T0)) == KEPT
    assert row(store)["Status"] == "deleted"


def test_higher_extractor_version_is_never_replaced_by_a_lower_one(any_db_cs):
    store = SqlStore(any_db_cs)
    new = run_result("a.png", "v1", T0, width=2)
    new.metadata.extractor_version = 3
    old = run_result("a.png", "v1", T0, width=1)
    old.metadata.extractor_version = 2
    assert store.upsert(new) is True
    assert store.upsert(old) is False
    assert row(store)["Width"] == 2
    again = run_result("a.png", "v1", T0, width=5)
    again.metadata.extractor_version = 3
    assert store.upsert(again) is True
    rejected = run_result("a.png", "v1", T0, status="rejected")
    rejected.metadata.extractor_version = 4
    assert store.upsert(rejected) is True  # a higher extractor's answer replaces processed
    assert row(store)["Status"] == "rejected"


def test_reconciliation_delete_is_limited_to_the_version_it_saw(any_db_cs):
    store = SqlStore(any_db_cs)
    store.upsert(run_result("a.png", "v2", T1))
    assert store.mark_deleted("images-input", "a.png", deleted_at=at(T1), etag="v1") is False
    assert row(store)["Status"] == "processed"
    assert store.mark_deleted("images-input", "a.png", deleted_at=at(T1), etag="v2") is True


def test_sequencers_compare_by_code_point_not_collation(any_db_cs):
    """'B' (0x42) < 'a' (0x61) by code point; a case-insensitive or linguistic collation says otherwise."""
    store = SqlStore(any_db_cs)
    store.upsert(run_result("a.png", "v1", T0, "000B"))
    assert store.mark_deleted("images-input", "a.png", deleted_at=at(T0), sequencer="000a") is True
    store.upsert(run_result("b.png", "v1", T0, "000a"))
    assert store.mark_deleted("images-input", "b.png", deleted_at=at(T0), sequencer="000B") is False


def test_paging_reads_for_reconciliation(any_db_cs):
    store = SqlStore(any_db_cs)
    for i in range(25):
        store.upsert(run_result(f"p{i:02}.png", f"e{i}", T0))
    store.mark_deleted("images-input", "p03.png", deleted_at=at(T1), etag="e3")
    seen, after = [], ""
    while page := store.page_live_rows("images-input", after, 10):
        assert len(page) <= 10
        seen += page
        after = page[-1]["BlobKey"]
    assert len(seen) == 24 and "p03.png" not in {r["BlobName"] for r in seen}
    assert [r["BlobKey"] for r in seen] == sorted(r["BlobKey"] for r in seen)
    assert store.page_live_rows("other-container", "", 10) == []
    keys = [r["BlobKey"] for r in seen[:3]] + ["0" * 64]
    found = store.rows_by_keys(keys)
    assert set(found) == set(keys[:3])
    assert {v["Status"] for v in found.values()} == {"processed"}


def test_deleted_at_is_utc(any_db_cs):
    store = SqlStore(any_db_cs)
    store.upsert(run_result("a.png", "v1", T0))
    store.mark_deleted("images-input", "a.png",
                       deleted_at=datetime(2026, 1, 1, 12, 0, 5, tzinfo=UTC).astimezone(), etag="v1")
    assert str(row(store)["DeletedAt"]).startswith("2026-01-01 12:00:05")


def test_a_run_of_the_tombstoned_version_asks_storage_and_repairs_a_wrong_tombstone(any_db_cs, monkeypatch):
    """Reconciliation restarts a version whose row says deleted while the blob is there: the write
    must replace the tombstone when storage holds that version, and never when the blob is gone."""
    from shared.store import store as store_module
    from shared.store.rules import GONE, KEEP, SAME_VERSION, UPSERT_TABLE, Decision

    store = SqlStore(any_db_cs)
    store.upsert(run_result("a.png", "v1", T0))
    store.mark_deleted("images-input", "a.png", deleted_at=at(T1), etag="v1")
    repair = run_result("a.png", "v1", T0, width=77)
    assert store.upsert_outcome(repair) == TIED
    assert store.resolve_tie(repair, is_current=False) == SUPERSEDED
    assert row(store)["Status"] == "deleted"
    assert store.resolve_tie(repair, is_current=True) == APPLIED
    assert (row(store)["Status"], row(store)["Width"]) == ("processed", 77)
    # Negative control: under the former row (KEEP, never asking storage) the tombstone stays.
    store.mark_deleted("images-input", "a.png", deleted_at=at(T2), etag="v1")
    former = tuple(Decision(d.when, KEEP, d.why) if d.when == (GONE, SAME_VERSION) else d for d in UPSERT_TABLE)
    monkeypatch.setattr(store_module, "UPSERT_TABLE", former)
    assert store.upsert_outcome(repair) == KEPT
    assert row(store)["Status"] == "deleted"


def test_a_row_of_a_newer_extractor_is_never_replaced_by_an_older_one(any_db_cs):
    """Two app versions side by side during a rollout: the older extractor's write of the same
    version is kept out; a newer extractor's write goes in."""
    store = SqlStore(any_db_cs)

    def by(version: int, width: int) -> ImageRecord:
        blob = BlobRef("images-input", "a.png", "v1", size=100, last_modified=T0)
        return ImageRecord.for_blob(blob, "processed", metadata=ImageMetadata(width=width, format="PNG",
                                                                              extractor_version=version))

    assert store.upsert_outcome(by(4, 40)) == APPLIED
    assert store.upsert_outcome(by(3, 30)) == KEPT
    assert (row(store)["ExtractorVersion"], row(store)["Width"]) == (4, 40)
    assert store.upsert_outcome(by(5, 50)) == APPLIED  # negative control: a newer one does replace it
    assert (row(store)["ExtractorVersion"], row(store)["Width"]) == (5, 50)
