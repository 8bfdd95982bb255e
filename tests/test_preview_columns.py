"""The preview and duplicate columns (migration 3) on real SQLite and PostgreSQL: a database at
version 2 upgrades keeping its rows, every new column round-trips through the store (NULL when
absent, the extremes of the signed 64-bit hash), the band columns hold the hash's 16-bit bands,
and the values that cannot fit are refused or dropped whole.

The expected bands are computed here from the hash with plain shifts, not with shared.hash_bands.
"""

from __future__ import annotations

import json

import pyodbc
import pytest

from shared import hash_bands
from shared.models import BlobRef, ImageMetadata, ImagePreview, ImageRecord
from shared.store import SqlStore, migrations, store
from shared.store.columns import BY_NAME, PREVIEW_COLUMNS, UNIT_UTF16, ValueTooLong, fit
from shared.store.dialects import SQLiteDialect
from shared.store.store import previews_of

MD5 = "9e107d9d372bb6826bd81d3542a419d6"
SHA256 = "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"
PREVIEWS = {"256": "k" * 64 + "/0x8DC1/256.webp", "1024": "k" * 64 + "/0x8DC1/1024.webp"}


@pytest.fixture(autouse=True)
def fresh_process_checks():
    store.forget_schema_checks()
    yield
    store.forget_schema_checks()


def record(name: str, preview: ImagePreview | None = None) -> ImageRecord:
    blob = BlobRef("images-input", name, "e1", size=1, last_modified="2026-01-01T00:00:00Z")
    return ImageRecord.for_blob(blob, "processed", metadata=ImageMetadata(width=1), preview=preview)


def expected_bands(signed: int) -> list[int]:
    unsigned = signed + (1 << 64) if signed < 0 else signed
    return [(unsigned >> shift) & 0xFFFF for shift in (0, 16, 32, 48)]


def stored(cs: str, name: str) -> dict:
    return next(r for r in SqlStore(cs).rows() if r["BlobName"] == name)


def test_a_version_2_database_upgrades_to_3_keeping_rows(any_db_cs):
    conn = pyodbc.connect(any_db_cs, autocommit=False)
    dialect = store.dialect_for(conn)
    cursor = conn.cursor()
    if dialect.name == "sqlite":
        conn.autocommit = True
        cursor.execute("BEGIN")
    cursor.execute(migrations.ddl.version_table(dialect.name))
    for migration in migrations.MIGRATIONS[dialect.name][:2]:
        migration.run(cursor, dialect)
        cursor.execute(migrations.ddl.record_version(dialect.name),
                       (migration.number, migration.description, "2026-01-01 00:00:00"))
    cursor.execute("INSERT INTO ImageMetadata (BlobKey, Container, BlobName, ETag, Status, Width) "
                   "VALUES (?, 'images-input', 'old.jpg', 'old', 'processed', 7)", "0" * 64)
    cursor.execute("COMMIT") if dialect.name == "sqlite" else conn.commit()
    cursor.execute("SELECT * FROM ImageMetadata WHERE 1 = 0")
    assert "perceptualhash" not in {d[0].lower() for d in cursor.description}
    conn.close()

    s = SqlStore(any_db_cs)
    assert s.schema_version() == 2
    assert s.upsert(record("new.jpg", ImagePreview(perceptual_hash=5))) is True
    assert s.schema_version() == migrations.LATEST == 3
    old = stored(any_db_cs, "old.jpg")
    assert old["Width"] == 7 and all(old[c.name] is None for c in PREVIEW_COLUMNS)
    assert stored(any_db_cs, "new.jpg")["PHashBand0"] == 5


@pytest.mark.parametrize("signed", [0, 1, -1, -(1 << 63), (1 << 63) - 1, 0x1234_5678_9ABC_DEF0 - (1 << 64) // 2])
def test_every_new_column_round_trips(any_db_cs, signed):
    preview = ImagePreview(previews=PREVIEWS, thumb_hash="1QcSHQRnh493V4dIh4eXh1h4kJUI", content_md5=MD5,
                           content_sha256=SHA256, perceptual_hash=signed)
    s = SqlStore(any_db_cs)
    assert s.upsert(record("a.jpg", preview)) is True
    row = stored(any_db_cs, "a.jpg")
    assert json.loads(row["Previews"]) == PREVIEWS
    assert (row["ThumbHash"], row["ContentMD5"], row["ContentSHA256"]) == (
        "1QcSHQRnh493V4dIh4eXh1h4kJUI", MD5, SHA256)
    assert row["PerceptualHash"] == signed
    assert [row[f"PHashBand{i}"] for i in range(4)] == expected_bands(signed)
    key = store.blob_key("images-input", "a.jpg")
    assert s.rows_by_keys([key])[key]["Previews"] == PREVIEWS


def test_absent_values_are_null(any_db_cs):
    s = SqlStore(any_db_cs)
    assert s.upsert(record("none.jpg")) is True
    row = stored(any_db_cs, "none.jpg")
    assert all(row[c.name] is None for c in PREVIEW_COLUMNS)
    key = store.blob_key("images-input", "none.jpg")
    assert s.rows_by_keys([key])[key]["Previews"] is None


def test_a_new_version_without_previews_clears_the_old_ones(any_db_cs):
    s = SqlStore(any_db_cs)
    s.upsert(record("v.jpg", ImagePreview(previews=PREVIEWS, perceptual_hash=3, content_md5=MD5)))
    newer = ImageRecord.for_blob(BlobRef("images-input", "v.jpg", "e2", size=1,
                                         last_modified="2026-01-02T00:00:00Z"), "processed")
    assert s.upsert(newer) is True
    row = stored(any_db_cs, "v.jpg")
    assert (row["Previews"], row["PerceptualHash"], row["PHashBand0"], row["ContentMD5"]) == (None,) * 4


def test_band_check_catches_a_broken_split(any_db_cs, monkeypatch):
    """Negative control: a split that takes the bands high bits first is caught by the check above."""
    right = hash_bands.bands
    monkeypatch.setattr(hash_bands, "bands", lambda h: None if h is None else tuple(reversed(right(h))))
    s = SqlStore(any_db_cs)
    s.upsert(record("b.jpg", ImagePreview(perceptual_hash=0x0001_0002_0003_0004)))
    row = stored(any_db_cs, "b.jpg")
    assert [row[f"PHashBand{i}"] for i in range(4)] != expected_bands(0x0001_0002_0003_0004)


def test_digests_that_cannot_fit_are_refused_naming_the_column():
    with pytest.raises(ValueTooLong, match="ContentMD5"):
        fit(BY_NAME["ContentMD5"], MD5 + "0", UNIT_UTF16)
    with pytest.raises(ValueTooLong, match="ThumbHash"):
        fit(BY_NAME["ThumbHash"], "é" * 10, UNIT_UTF16)
    assert fit(BY_NAME["ContentMD5"], MD5, UNIT_UTF16) == MD5


def test_previews_that_cannot_fit_drop_whole_sizes():
    many = {str(size): "k" * 64 + f"/0x8DC1/{size}.webp" for size in range(100, 2100, 100)}
    text = fit(BY_NAME["Previews"], many, SQLiteDialect.unit)
    kept = json.loads(text)
    assert len(text) <= 1024 and 0 < len(kept) < len(many)
    assert kept == {k: many[k] for k in list(many)[: len(kept)]}


def test_previews_column_reads_back_only_objects():
    assert previews_of(json.dumps(PREVIEWS)) == PREVIEWS
    assert previews_of("[1, 2]") is None and previews_of("{broken") is None and previews_of(None) is None


def test_hash_conversions_refuse_values_out_of_range():
    assert hash_bands.to_unsigned(hash_bands.to_signed((1 << 64) - 1)) == (1 << 64) - 1
    assert hash_bands.to_signed((1 << 64) - 1) == -1
    with pytest.raises(ValueError):
        hash_bands.to_signed(1 << 64)
    with pytest.raises(ValueError):
        hash_bands.to_unsigned(1 << 63)


def test_a_deleted_row_keeps_its_hashes_but_names_no_previews(any_db_cs):
    from datetime import datetime

    s = SqlStore(any_db_cs)
    s.upsert(record("d.jpg", ImagePreview(previews=PREVIEWS, perceptual_hash=9, content_md5=MD5)))
    assert s.mark_deleted("images-input", "d.jpg", deleted_at=datetime(2026, 3, 1))
    row = stored(any_db_cs, "d.jpg")
    assert row["Status"] == "deleted" and row["Previews"] is None
    assert (row["PerceptualHash"], row["ContentMD5"]) == (9, MD5)
