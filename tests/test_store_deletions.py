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
from shared.sql_store import SqlStore

T0 = "2026-01-01T10:00:00+00:00"
T1 = "2026-01-01T10:00:05+00:00"


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
    assert store.upsert(run_result("a.png", "v2", T1)) is True
    assert row(store)["Status"] == "processed"


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
    # Negative control: without sequencers the same-second pair cannot be ordered (time ties win).
    other = SqlStore(any_db_cs)
    other.upsert(run_result("b.png", "v2", T0, width=2))
    assert other.upsert(run_result("b.png", "v1", T0, width=1)) is True


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
