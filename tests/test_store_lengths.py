"""Lengths as each engine counts them: UTF-16 code units for T-SQL NVARCHAR, characters elsewhere.
Every length-limited column at, just over and far over its limit with supplementary characters;
on SQLite and PostgreSQL through the real store, on T-SQL as the values handed to the driver."""

from __future__ import annotations

import pytest

from shared.models import BlobRef, ImageMetadata, ImageRecord
from shared.store import SqlStore, TSqlDialect
from shared.store.columns import COLUMNS, UNIT_CHARS, UNIT_UTF16, ValueTooLong, cut_text, fit, text_length

EMOJI = "😀"  # U+1F600: one character, two UTF-16 code units
LIMITED = [c for c in COLUMNS if c.kind == "text"]
CUT = [c for c in LIMITED if c.cut and not c.json_list]


def values_for(limit: int, unit: str) -> dict[str, str]:
    """At the limit, one unit over, far over; each ends in supplementary characters."""
    if unit == UNIT_UTF16:
        at = "a" * (limit % 2) + EMOJI * (limit // 2)
    else:
        at = "a" * (limit - 1) + EMOJI
    return {"at": at, "just over": at + EMOJI, "far over": at + EMOJI * limit}


def no_lone_surrogate(text: str) -> bool:
    text.encode("utf-16-le")  # raises on a lone surrogate
    return True


@pytest.mark.parametrize("unit", [UNIT_UTF16, UNIT_CHARS])
@pytest.mark.parametrize("col", CUT, ids=lambda c: c.name)
def test_free_text_is_cut_to_whole_characters_that_fit(col, unit):
    limit = col.size_in(unit)
    for case, value in values_for(limit, unit).items():
        out = fit(col, value, unit)
        assert text_length(out, unit) <= limit and value.startswith(out) and no_lone_surrogate(out), case
        if case == "at":
            assert out == value
        else:
            assert text_length(out, unit) >= limit - 1  # at most the half of a pair is left unused


@pytest.mark.parametrize("col", [c for c in LIMITED if not c.cut], ids=lambda c: c.name)
def test_identifying_text_is_refused_not_cut(col):
    for unit in (UNIT_UTF16, UNIT_CHARS):
        values = values_for(col.size_in(unit), unit)
        assert fit(col, values["at"], unit) == values["at"]
        for case in ("just over", "far over"):
            with pytest.raises(ValueTooLong, match=col.name):
                fit(col, values[case], unit)


def test_a_title_of_emoji_is_cut_in_utf16_units_for_tsql_and_in_characters_elsewhere():
    """The case that failed with 2628: 512 characters pass a len() cut but are 1,024 UTF-16 units."""
    title = EMOJI * 512
    tsql = fit(next(c for c in COLUMNS if c.name == "Title"), title, UNIT_UTF16)
    assert len(tsql) == 256 and text_length(tsql, UNIT_UTF16) == 512
    assert fit(next(c for c in COLUMNS if c.name == "Title"), title, UNIT_CHARS) == title
    assert cut_text("a" + EMOJI, 2, UNIT_UTF16) == "a"  # never half a pair
    assert len(title[:512]) == 512 and text_length(title[:512], UNIT_UTF16) == 1024  # what len() allowed


@pytest.mark.parametrize("unit", [UNIT_UTF16, UNIT_CHARS])
@pytest.mark.parametrize("col", [c for c in LIMITED if c.json_list], ids=lambda c: c.name)
def test_json_lists_drop_whole_items_to_fit(col, unit):
    items = [EMOJI * 50 + str(i) for i in range(200)]
    out = fit(col, items, unit)
    assert text_length(out, unit) <= col.size_in(unit)
    import json

    kept = json.loads(out)
    assert kept == items[: len(kept)] and 0 < len(kept) < 200


def _record(over: str) -> ImageRecord:
    meta = ImageMetadata(width=1, title=over, description=over, artist=over, copyright=over, city=over,
                         region=over, country=over, camera_make=over, camera_model=over, lens_model=over,
                         software=over, format=over, mode=over, content_type=over, icc_profile=over,
                         captured_at_offset=over, captured_at_source=over, captured_at_utc_source=over,
                         time_zone=over, keywords=[over], warnings=[over])
    blob = BlobRef("images-input", EMOJI * 1024, "e1", size=1, last_modified="2026-01-01T00:00:00Z")
    return ImageRecord.for_blob(blob, "rejected", metadata=meta, error=over, instance_id="i")


@pytest.mark.parametrize("case", ["at", "just over", "far over"])
def test_every_column_fits_on_the_real_engines(any_db_cs, case):
    """PostgreSQL refuses a VARCHAR(n) value over n characters (22001): every cut column receives
    supplementary characters at, just over and far over its limit and the row is written."""
    store = SqlStore(any_db_cs)
    unit = UNIT_CHARS
    over = values_for(2000, unit)[case]  # beyond every limit but Keywords'
    assert store.upsert(_record(over)) is True
    [row] = store.rows()
    assert row["BlobName"] == EMOJI * 1024  # a 1,024-character name is never cut
    for col in CUT:
        value = row[col.name]
        assert value is not None and text_length(value, unit) <= col.size and over.startswith(value), col.name


def test_tsql_values_handed_to_the_driver_fit_in_utf16_units():
    dialect = TSqlDialect()
    store = SqlStore("Server=tcp:x.database.windows.net,1433;Database=d;")
    store._dialect, store._conn = dialect, object()
    for case, over in values_for(2000, UNIT_UTF16).items():
        values = store._record_values(_record(over))
        for col in LIMITED:
            value = values[col.name]
            if value is not None:
                assert text_length(value, UNIT_UTF16) <= col.size_in(UNIT_UTF16), (case, col.name)
        assert values["BlobName"] == EMOJI * 1024  # 2,048 units: the T-SQL column is NVARCHAR(2048)
