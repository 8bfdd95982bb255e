"""Duplicate search on real SQLite and PostgreSQL, on rows the store wrote: exact duplicates by
content digest, every duplicate group (paged), near duplicates by perceptual hash found through
the band indexes, checked against a brute-force scan of every row, with the negative controls
(a probe radius too small, a band split that breaks the pigeonhole) failing that check.
"""

from __future__ import annotations

import io
import random

import pyodbc
import pytest
from PIL import Image

from devhost import scenes
from shared import duplicates, hash_bands
from shared.duplicates import NEAR_DISTANCE, duplicate_groups, exact_duplicates, near_duplicates, near_groups
from shared.hash_bands import hamming, to_signed
from shared.image_hashes import ContentDigests, perceptual_hash
from shared.models import BlobRef, ImageMetadata, ImagePreview, ImageRecord
from shared.store import SqlStore, store


@pytest.fixture(autouse=True)
def fresh_process_checks():
    store.forget_schema_checks()
    yield
    store.forget_schema_checks()


def write(s: SqlStore, name: str, preview: ImagePreview, etag: str = "e1") -> int:
    blob = BlobRef("images-input", name, etag, size=1, last_modified="2026-01-01T00:00:00Z")
    assert s.upsert(ImageRecord.for_blob(blob, "processed", metadata=ImageMetadata(width=1), preview=preview))
    return next(r["Id"] for r in s.rows() if r["BlobName"] == name)


def preview_of(data: bytes) -> ImagePreview:
    """What the preview step records for these bytes (digests over chunks, pHash of the pixels)."""
    digests = ContentDigests()
    for start in range(0, len(data), 65536):
        digests.update(data[start:start + 65536])
    return ImagePreview(content_md5=digests.md5_hex, content_sha256=digests.sha256_hex,
                        perceptual_hash=perceptual_hash(Image.open(io.BytesIO(data))))


@pytest.fixture
def photos(any_db_cs):
    """Four unrelated photos; one uploaded twice under another name (and once more, deleted);
    one resized and re-encoded; one with 2 % cut from each side."""
    s = SqlStore(any_db_cs)
    originals = [scenes.scene((640, 480), seed=seed) for seed in range(4)]
    files = {f"photo-{i}.jpg": scenes.jpeg(im) for i, im in enumerate(originals)}
    files["copies/photo-0 again.jpg"] = files["photo-0.jpg"]
    files["copies/photo-0 gone.jpg"] = files["photo-0.jpg"]
    files["copies/photo-1 small.jpg"] = scenes.jpeg(originals[1].resize((320, 240), Image.Resampling.LANCZOS), 70)
    w, h = originals[2].size
    files["copies/photo-2 cropped.jpg"] = scenes.jpeg(originals[2].crop((w // 50, h // 50, w - w // 50, h - h // 50)))
    ids = {name: write(s, name, preview_of(data)) for name, data in files.items()}
    from datetime import datetime

    assert s.mark_deleted("images-input", "copies/photo-0 gone.jpg", deleted_at=datetime(2026, 2, 1))
    return s, ids


def test_exact_duplicates_of_an_image(photos):
    s, ids = photos
    found = exact_duplicates(s, ids["photo-0.jpg"])
    assert [r["BlobName"] for r in found] == ["copies/photo-0 again.jpg"]  # the deleted copy is not listed
    assert exact_duplicates(s, ids["photo-1.jpg"]) == []  # a resized copy is not the same content
    assert exact_duplicates(s, 10**9) == []


def test_every_duplicate_group_in_pages(photos):
    s, ids = photos
    expected = [[{"Id": ids["photo-0.jpg"], "BlobName": "photo-0.jpg"},
                 {"Id": ids["copies/photo-0 again.jpg"], "BlobName": "copies/photo-0 again.jpg"}]]
    assert duplicate_groups(s) == expected
    assert duplicate_groups(s, limit=1) == expected  # one row a page: the keyset paging joins them


def test_near_duplicates_are_the_copies_and_nothing_unrelated(photos):
    s, ids = photos
    assert [r["BlobName"] for r in near_duplicates(s, ids["photo-1.jpg"])] == ["copies/photo-1 small.jpg"]
    assert [r["BlobName"] for r in near_duplicates(s, ids["photo-2.jpg"])] == ["copies/photo-2 cropped.jpg"]
    assert [r["BlobName"] for r in near_duplicates(s, ids["photo-0.jpg"])] == ["copies/photo-0 again.jpg"]
    assert near_duplicates(s, ids["photo-3.jpg"]) == []
    assert all(r["Distance"] <= NEAR_DISTANCE for r in near_duplicates(s, ids["photo-2.jpg"]))


def test_near_groups_cluster_every_copy(photos):
    s, ids = photos
    clusters = {frozenset(r["BlobName"] for r in c) for c in near_groups(s)}
    assert clusters == {frozenset({"photo-0.jpg", "copies/photo-0 again.jpg"}),
                        frozenset({"photo-1.jpg", "copies/photo-1 small.jpg"}),
                        frozenset({"photo-2.jpg", "copies/photo-2 cropped.jpg"})}


# ---- Recall against a brute-force scan --------------------------------------------------------

def flip_spread(value: int, distance: int, rng: random.Random) -> int:
    """``value`` with ``distance`` bits flipped, spread over the bands as evenly as possible:
    the case the pigeonhole bound is tight for (10 bits: 3, 3, 2, 2 per band)."""
    per_band = [distance // 4 + (1 if i < distance % 4 else 0) for i in range(4)]
    rng.shuffle(per_band)
    for band, count in enumerate(per_band):
        for bit in rng.sample(range(16), count):
            value ^= 1 << (16 * band + bit)
    return value


@pytest.fixture
def hashes(any_db_cs):
    """1,500 random hashes and, for 6 targets, planted hashes at every distance 1 .. k + 4."""
    rng = random.Random(16)
    s = SqlStore(any_db_cs)
    s.ensure_schema()
    values: list[int] = [rng.getrandbits(64) for _ in range(1500)]
    for target in values[:6]:
        values += [flip_spread(target, d, rng) for d in range(1, NEAR_DISTANCE + 5)]
    conn = pyodbc.connect(any_db_cs, autocommit=False)
    cursor = conn.cursor()
    for i, value in enumerate(values):
        signed = to_signed(value)
        cursor.execute("INSERT INTO ImageMetadata (BlobKey, Container, BlobName, ETag, Status, PerceptualHash, "
                       "PHashBand0, PHashBand1, PHashBand2, PHashBand3) VALUES (?, 'images-input', ?, 'e', "
                       "'processed', ?, ?, ?, ?, ?)", f"{i:064d}", f"h-{i}", signed, *hash_bands.bands(signed))
    conn.commit()
    conn.close()
    ids = {r["BlobName"]: r["Id"] for r in s.rows()}
    return s, [(ids[f"h-{i}"], to_signed(v)) for i, v in enumerate(values)]


def brute_force(rows: list[tuple[int, int]], image_id: int, within: int) -> list[int]:
    own = dict(rows)[image_id]
    return sorted(i for i, h in rows if i != image_id and hamming(own, h) <= within)


def misses(s: SqlStore, rows: list[tuple[int, int]], within: int = NEAR_DISTANCE) -> dict[int, list[int]]:
    found = {}
    for image_id, _ in rows[:6]:
        want = brute_force(rows, image_id, within)
        got = sorted(r["Id"] for r in near_duplicates(s, image_id, within))
        if got != want:
            found[image_id] = sorted(set(want) ^ set(got))
    return found


def test_near_duplicates_find_exactly_what_a_full_scan_finds(hashes):
    s, rows = hashes
    assert misses(s, rows) == {}
    assert all(len(brute_force(rows, i, NEAR_DISTANCE)) >= NEAR_DISTANCE for i, _ in rows[:6])
    assert misses(s, rows, within=3) == {}  # radius 0: exact band equality suffices for 3 bits


def test_recall_check_catches_a_radius_too_small(hashes, monkeypatch):
    s, rows = hashes
    monkeypatch.setattr(duplicates, "radius_for", lambda distance: 1)  # guarantees only 7 bits
    assert misses(s, rows)


def test_recall_check_catches_a_band_split_that_breaks_the_pigeonhole(hashes, monkeypatch):
    """Bands that overlap (bits 0-15, 12-27, 24-39, 36-51) leave bits 52-63 in no band: hashes
    that differ there in more than the radius allows are missed."""
    s, rows = hashes
    overlapping = lambda h: None if h is None else tuple(  # noqa: E731
        (hash_bands.to_unsigned(h) >> (12 * i)) & 0xFFFF for i in range(4))
    conn = pyodbc.connect(s.connection_string, autocommit=False)
    for image_id, value in rows:
        conn.execute("UPDATE ImageMetadata SET PHashBand0 = ?, PHashBand1 = ?, PHashBand2 = ?, PHashBand3 = ? "
                     "WHERE Id = ?", *overlapping(value), image_id)
    conn.commit()
    conn.close()
    assert misses(s, rows)


# ---- T-SQL: parsed, and every parameter bound as its column's type ------------------------------

@pytest.mark.parametrize("make", [duplicates.exact_of, duplicates.groups, duplicates.near_candidates,
                                  duplicates.near_within])
def test_tsql_duplicate_queries_parse_and_bind_as_their_columns(make):
    import pyodbc as odbc

    from shared.store.dialects import TSqlDialect
    from tests.test_tsql import binding_problems, tsql_problems

    tsql = TSqlDialect()
    statement = make(tsql)
    assert tsql_problems(statement.sql) == []
    sizes = tsql.input_sizes(statement)
    if make is duplicates.near_within:  # the Id and a distance compared with BIT_COUNT's INT
        assert sizes == [(odbc.SQL_BIGINT, 0, 0), (odbc.SQL_INTEGER, 0, 0)]
    else:
        assert binding_problems(statement.sql, sizes) == []
    assert "N'deleted'" in statement.sql and "'deleted'" not in statement.sql.replace("N'deleted'", "")


def test_binding_check_catches_a_digest_bound_as_nvarchar(monkeypatch):
    """Negative control: ContentMD5 bound as the drivers' default for a str (NVARCHAR) would
    convert the CHAR(32) column; the check names it."""
    from shared.store import dialects as dialects_module
    from shared.store.dialects import TSqlDialect
    from tests.test_tsql import binding_problems

    right = TSqlDialect.bind_type
    monkeypatch.setattr(TSqlDialect, "bind_type", lambda self, col: (
        (dialects_module.SQL_WVARCHAR, 32, 0) if col.name == "ContentMD5" else right(self, col)))
    statement = duplicates.groups(TSqlDialect())
    assert any(p.startswith("ContentMD5") for p in binding_problems(statement.sql, TSqlDialect().input_sizes(statement)))


def test_sqlite_has_no_sql_distance():
    from shared.store.dialects import SQLiteDialect

    with pytest.raises(ValueError, match="no popcount"):
        duplicates.near_within(SQLiteDialect())
    with pytest.raises(ValueError, match="radius 3"):
        duplicates.masks_cte(SQLiteDialect(), 3)


@pytest.mark.parametrize("radius", [0, 1, 2])
def test_the_masks_are_every_16_bit_value_within_the_radius(sqlite_cs, radius):
    from shared.store.dialects import SQLiteDialect

    conn = pyodbc.connect(sqlite_cs, autocommit=True)
    masks = [r[0] for r in conn.execute(f"WITH {duplicates.masks_cte(SQLiteDialect(), radius)} SELECT m FROM masks")]
    conn.close()
    assert sorted(masks) == sorted(hash_bands.within_radius(0, radius))
    assert len(masks) == len(set(masks)) == [1, 17, 137][radius]
    assert all(bin(m).count("1") <= radius for m in masks)
