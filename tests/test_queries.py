"""The README's queries: they run on SQLite and PostgreSQL with the same results, their T-SQL
parses, and on 100,000 generated rows each one uses its index instead of scanning the table.

The T-SQL is read from README.md itself (blocks starting ``-- query: NAME``), so the document
and the test cannot drift apart. The SQLite and PostgreSQL forms below differ from it only in
spelling: ``LIMIT`` for ``TOP``, ``power(x, 2)`` for ``SQUARE``, no ``dbo.``/``N''``, and ``?``
parameters for the T-SQL variables.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pyodbc
import pytest
import sqlglot
from sqlglot import ErrorLevel, exp

from shared import duplicates
from shared.store import SqlStore
from shared.store.ddl import TSQL_KEYWORD_TRIGGER_BODY
from shared.store.ddl import tsql_query_support as _tsql_query_support
from shared.store.dialects import SQLiteDialect
from tests.test_tsql import _LINTER, tsql_problems

README = Path(__file__).resolve().parent.parent / "README.md"
ROWS = 100_000
PARIS = (48.8584, 2.2945)
RADIUS_KM = 5.0


def readme_tsql() -> dict[str, str]:
    blocks = re.findall(r"```sql\n-- query: ([\w-]+)\n(.*?)```", README.read_text(), re.S)
    return {name: sql.strip() for name, sql in blocks}


def _box() -> tuple[float, float, float, float]:
    lat, lon = PARIS
    dlat = RADIUS_KM / 111.19
    dlon = RADIUS_KM / (111.19 * math.cos(math.radians(lat)))
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon


HAVERSINE = ("2 * 6371.0088 * asin(sqrt(power(sin(radians(GpsLatitude - ?) / 2), 2) "
             "+ cos(radians(?)) * cos(radians(GpsLatitude)) * power(sin(radians(GpsLongitude - ?) / 2), 2))) <= ?")
LAST_PAGE_AT = "2020-06-01 12:00:00"

# name -> (portable SQL for SQLite and PostgreSQL, parameters, the index it must use)
QUERIES: dict[str, tuple[str, tuple[Any, ...], str]] = {
    "by-camera": (
        "SELECT Id, BlobName, CapturedAtUtc FROM ImageMetadata WHERE CameraMake = ? AND CameraModel = ? "
        "ORDER BY Id DESC LIMIT 100", ("Make7", "Model 107"), "IX_ImageMetadata_Camera"),
    "by-capture-range": (
        "SELECT Id, BlobName, CapturedAtUtc, CapturedAt, CapturedAtOffset FROM ImageMetadata "
        "WHERE CapturedAtUtc >= ? AND CapturedAtUtc < ? ORDER BY CapturedAtUtc, Id",
        (datetime(2019, 6, 1), datetime(2019, 7, 1)), "IX_ImageMetadata_CapturedAtUtc"),
    "by-keyword": (
        "SELECT m.Id, m.BlobName, m.Keywords, m.CapturedAtUtc FROM ImageKeyword AS k "
        "INNER JOIN ImageMetadata AS m ON m.Id = k.ImageId WHERE k.Keyword = lower(?) ORDER BY m.Id DESC",
        ("KW5",), "ImageKeyword"),
    "rated-4-or-more": (
        "SELECT Id, BlobName, Rating, Title FROM ImageMetadata WHERE Rating >= 4 "
        "ORDER BY Rating DESC, Id DESC LIMIT 100", (), "IX_ImageMetadata_Rating"),
    "rejected-with-reasons": (
        "SELECT BlobName, Error, ProcessedAt FROM ImageMetadata WHERE Status = 'rejected' "
        "ORDER BY ProcessedAt DESC LIMIT 100", (), "IX_ImageMetadata_Status"),
    "within-radius": (
        "SELECT Id, BlobName, GpsLatitude, GpsLongitude, City FROM ImageMetadata "
        f"WHERE GpsLatitude BETWEEN ? AND ? AND GpsLongitude BETWEEN ? AND ? AND {HAVERSINE} ORDER BY Id",
        (*_box()[:2], *_box()[2:], PARIS[0], PARIS[0], PARIS[1], RADIUS_KM), "IX_ImageMetadata_Gps"),
    "newest-first": (
        "SELECT Id, BlobName, CapturedAtUtc FROM ImageMetadata WHERE CapturedAtUtc IS NOT NULL "
        "ORDER BY CapturedAtUtc DESC, Id DESC LIMIT 50", (), "IX_ImageMetadata_CapturedAtUtc"),
    "newest-first-next-page": (
        "SELECT Id, BlobName, CapturedAtUtc FROM ImageMetadata "
        "WHERE CapturedAtUtc <= ? AND (CapturedAtUtc < ? OR Id < ?) "
        "ORDER BY CapturedAtUtc DESC, Id DESC LIMIT 50",
        (datetime.fromisoformat(LAST_PAGE_AT), datetime.fromisoformat(LAST_PAGE_AT), 50_000),
        "IX_ImageMetadata_CapturedAtUtc"),
    # Duplicates: the SQL shared.duplicates runs on SQLite and PostgreSQL (README has the T-SQL).
    "exact-duplicates-of-an-image": (duplicates.exact_of(SQLiteDialect()).sql, (1000,), "IX_ImageMetadata_ContentMD5"),
    "every-duplicate-group": (duplicates.groups(SQLiteDialect()).sql, ("", "", "", 0, 100), "IX_ImageMetadata_ContentMD5"),
    "near-duplicates-of-an-image": (duplicates.near_candidates(SQLiteDialect()).sql, (2000,),
                                    "IX_ImageMetadata_PHashBand0"),
}

# 100,000 rows made inside the engine (deterministic arithmetic on the row number, so both
# engines hold the same data): 20 makes x 250 models, 10 % without capture time, 2 % rejected,
# 4 % rated, a third without GPS, 0.5 % within a few km of Paris, two keywords of 1,000 each.
_GENERATE = {
    "sqlite": """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
INSERT INTO ImageMetadata (BlobKey, Container, BlobName, FileName, ETag, Status, Error, ProcessedAt,
    CameraMake, CameraModel, CapturedAtUtc, Rating, GpsLatitude, GpsLongitude, Keywords, Width, Height,
    ContentMD5, PHashBand0, PHashBand1, PHashBand2, PHashBand3, PerceptualHash)
SELECT printf('%064d', i), 'images-input', 'img-' || i || '.jpg', 'img-' || i || '.jpg', 'e' || i,
    CASE WHEN i % 50 = 0 THEN 'rejected' ELSE 'processed' END,
    CASE WHEN i % 50 = 0 THEN 'not a supported image: #' || i END,
    datetime('2026-01-01', '+' || i || ' seconds') || '.000000',
    'Make' || (i % 20), 'Model ' || (i % 250),
    CASE WHEN i % 10 <> 3 THEN datetime('2015-01-01', '+' || ((i * 7919) % 315360000) || ' seconds')
        || '.000000' END,
    CASE WHEN i % 25 = 0 THEN (i / 25) % 7 - 1 END,
    CASE WHEN i % 200 = 7 THEN 48.8584 + ((i * 13) % 1000 - 500) / 10000.0
         WHEN i % 3 = 1 THEN NULL ELSE ((i * 7919) % 170000) / 1000.0 - 85 END,
    CASE WHEN i % 200 = 7 THEN 2.2945 + ((i * 17) % 1000 - 500) / 10000.0
         WHEN i % 3 = 1 THEN NULL ELSE ((i * 104729) % 360000) / 1000.0 - 180 END,
    '["kw' || (i % 997) || '","Kw' || ((i * 31) % 1000) || '"]', 100, 100,
    printf('%032d', CASE WHEN i % 500 = 1 THEN i - 1 ELSE i END), b0, b1, b2, b3,
    b0 + b1 * 65536 + b2 * 4294967296 + (b3 - CASE WHEN b3 >= 32768 THEN 65536 ELSE 0 END) * 281474976710656
FROM (SELECT i, {bands} FROM n)""",
    "postgresql": """
INSERT INTO ImageMetadata (BlobKey, Container, BlobName, FileName, ETag, Status, Error, ProcessedAt,
    CameraMake, CameraModel, CapturedAtUtc, Rating, GpsLatitude, GpsLongitude, Keywords, Width, Height,
    ContentMD5, PHashBand0, PHashBand1, PHashBand2, PHashBand3, PerceptualHash)
SELECT lpad(i::text, 64, '0'), 'images-input', 'img-' || i || '.jpg', 'img-' || i || '.jpg', 'e' || i,
    CASE WHEN i % 50 = 0 THEN 'rejected' ELSE 'processed' END,
    CASE WHEN i % 50 = 0 THEN 'not a supported image: #' || i END,
    timestamp '2026-01-01' + i * interval '1 second',
    'Make' || (i % 20), 'Model ' || (i % 250),
    CASE WHEN i % 10 <> 3 THEN timestamp '2015-01-01' + ((i * 7919) % 315360000) * interval '1 second' END,
    CASE WHEN i % 25 = 0 THEN (i / 25) % 7 - 1 END,
    CASE WHEN i % 200 = 7 THEN 48.8584 + ((i * 13) % 1000 - 500) / 10000.0
         WHEN i % 3 = 1 THEN NULL ELSE ((i * 7919) % 170000) / 1000.0 - 85 END,
    CASE WHEN i % 200 = 7 THEN 2.2945 + ((i * 17) % 1000 - 500) / 10000.0
         WHEN i % 3 = 1 THEN NULL ELSE ((i * 104729) % 360000) / 1000.0 - 180 END,
    '["kw' || (i % 997) || '","Kw' || ((i * 31) % 1000) || '"]', 100, 100,
    lpad((CASE WHEN i % 500 = 1 THEN i - 1 ELSE i END)::text, 32, '0'), b0, b1, b2, b3,
    b0 + b1 * 65536 + b2 * 4294967296 + (b3 - CASE WHEN b3 >= 32768 THEN 65536 ELSE 0 END) * 281474976710656
FROM (SELECT i, {bands} FROM generate_series(1::bigint, {rows}) AS i) AS n""",
}


# Perceptual-hash bands from the row number (j: row i - 1 for every thousandth row, whose first
# band then differs in its lowest bit: a near duplicate at distance 1); every 500th row repeats
# the previous row's ContentMD5 (an exact duplicate).
_J = "(CASE WHEN i % 1000 = 1 THEN i - 1 ELSE i END)"
_B0 = f"(({_J} * 40503) % 65536)"
_BANDS = ", ".join([
    f"CASE WHEN i % 1000 = 1 THEN ({_B0} | 1) - ({_B0} & 1) ELSE {_B0} END AS b0",
    f"({_J} * 20021 + 7) % 65536 AS b1", f"({_J} * 9973 + 13) % 65536 AS b2", f"({_J} * 31337 + 17) % 65536 AS b3"])


def _populate(cs: str) -> str:
    store = SqlStore(cs)
    store.ensure_schema()  # the migration under test creates the indexes and the keyword table
    engine = store.dialect.name
    store.close()
    conn = pyodbc.connect(cs, autocommit=True)
    conn.execute(_GENERATE[engine].format(rows=ROWS, bands=_BANDS))
    conn.execute("ANALYZE")
    conn.close()
    return engine


@pytest.fixture(scope="module")
def databases(tmp_path_factory, postgres) -> Iterator[dict[str, str]]:
    sqlite_cs = f"Driver={{SQLite3}};Database={tmp_path_factory.mktemp('queries') / 'q.db'};Timeout=2000;"
    postgres_cs = postgres.create_database("queries_plans")
    dbs = {"sqlite": sqlite_cs, "postgresql": postgres_cs}
    for engine, cs in dbs.items():
        assert _populate(cs) == engine
    yield dbs


def run(cs: str, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    conn = pyodbc.connect(cs, autocommit=True)
    try:
        return [tuple(row) for row in conn.execute(sql, params).fetchall()]
    finally:
        conn.close()


def _normal(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d+", value):
        return value[:19]  # SQLite keeps datetimes as text
    if isinstance(value, float):
        return round(value, 6)
    return value


# The near-duplicate query's common table expressions (16 and 137 constant rows, the image's one
# row, its candidates) and their aliases: SQLite reports reading them as SCAN, which is no table scan.
CTE_NAMES = {"bits", "a", "b", "masks", "img", "c", "candidates"}


def sqlite_plan_problems(details: list[str], index: str) -> list[str]:
    """A table read whole: SCAN of a table, or an AUTOMATIC index (SQLite builds one for a
    single query by reading the whole table); and ``index`` unused."""
    problems = [f"full scan: {d}" for d in details if re.match(r"SCAN \w+$", d) and d.split()[1] not in CTE_NAMES]
    problems += [f"full scan to build an index: {d}" for d in details
                 if "USING AUTOMATIC" in d and d.split()[1] not in CTE_NAMES]
    if not any(index.lower() in d.lower() or
               (index == "ImageKeyword" and "PRIMARY KEY (Keyword=?)" in d) for d in details):
        problems.append(f"{index} not used: {details}")
    return problems


def plan_problems(cs: str, engine: str, sql: str, params: tuple[Any, ...], index: str) -> list[str]:
    """Why the plan is not an index seek on ``index``; empty when it is."""
    conn = pyodbc.connect(cs, autocommit=True)
    try:
        if engine == "sqlite":
            return sqlite_plan_problems(
                [str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()], index)
        plan = conn.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()[0]
    finally:
        conn.close()
    nodes: list[dict[str, Any]] = []
    stack = [json.loads(plan)[0]["Plan"]]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(node.get("Plans", []))
    problems = [f"full scan: Seq Scan on {n['Relation Name']}" for n in nodes if n["Node Type"] == "Seq Scan"]
    wanted = "imagekeyword_pkey" if index == "ImageKeyword" else index.lower()
    if not any(n.get("Index Name", "").lower() == wanted for n in nodes):
        problems.append(f"{index} not used: {[(n['Node Type'], n.get('Index Name')) for n in nodes]}")
    return problems


def test_readme_has_every_query():
    assert set(readme_tsql()) == set(QUERIES)


@pytest.mark.parametrize("name", list(QUERIES))
def test_readme_tsql_parses(name):
    assert tsql_problems(readme_tsql()[name]) == []


@pytest.mark.parametrize("name", list(QUERIES))
def test_query_gives_the_same_rows_on_sqlite_and_postgresql(databases, name):
    sql, params, _ = QUERIES[name]
    results = {engine: [tuple(_normal(v) for v in row) for row in run(cs, sql, params)]
               for engine, cs in databases.items()}
    assert results["sqlite"], f"{name} found nothing in {ROWS} rows"
    assert results["sqlite"] == results["postgresql"]


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
@pytest.mark.parametrize("name", list(QUERIES))
def test_query_uses_its_index_on_100k_rows(databases, engine, name):
    sql, params, index = QUERIES[name]
    assert plan_problems(databases[engine], engine, sql, params, index) == []


def test_keyword_and_radius_results_are_right(databases):
    """Against Python's own reading of the same rows: every keyword match and every point
    within 5 km (haversine), and nothing else."""
    cs = databases["postgresql"]
    rows = run(cs, "SELECT BlobName, Keywords, GpsLatitude, GpsLongitude FROM ImageMetadata", ())
    assert len(rows) == ROWS
    from shared.places import distance_km

    tagged = {r[0] for r in rows if "kw5" in {k.lower() for k in json.loads(r[1])}}
    near = {r[0] for r in rows if r[2] is not None and distance_km(PARIS[0], PARIS[1], r[2], r[3]) <= RADIUS_KM}
    for engine, engine_cs in databases.items():
        sql, params, _ = QUERIES["by-keyword"]
        assert {r[1] for r in run(engine_cs, sql, params)} == tagged, engine
        sql, params, _ = QUERIES["within-radius"]
        assert {r[1] for r in run(engine_cs, sql, params)} == near, engine
    assert 100 < len(tagged) < 1000 and 100 < len(near) < 1000


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_plan_check_rejects_a_full_scan(databases, engine):
    """Negative control: without its index the same query scans, and the check says so."""
    cs = databases[engine]
    sql, params, index = QUERIES["by-camera"]
    conn = pyodbc.connect(cs, autocommit=False)
    try:
        conn.execute(f"DROP INDEX {index}")
        if engine == "sqlite":
            details = [str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()]
            assert any(re.match(r"SCAN \w+$", d) for d in details), details
        else:
            plan = str(conn.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()[0])
            assert "Seq Scan" in plan
    finally:
        conn.rollback()
        conn.close()
    assert plan_problems(cs, engine, sql, params, index) == []  # the index is back
    assert plan_problems(cs, engine, sql, params, "IX_ImageMetadata_Rating")  # a wrong index is noticed


# ---- The T-SQL the migration sends for these queries ----------------------------------------

TSQL_SUPPORT = _tsql_query_support()


@pytest.mark.parametrize("index", range(len(TSQL_SUPPORT) - 1))
def test_tsql_indexes_and_keyword_table_parse(index):
    assert tsql_problems(TSQL_SUPPORT[index]) == []


def test_tsql_keyword_trigger_parses():
    """sqlglot has no CREATE TRIGGER (it falls back to an unparsed Command), so the trigger is
    parsed whole by sqlfluff and its body statement by statement by both parsers."""
    trigger = TSQL_SUPPORT[-1]
    assert trigger.startswith("CREATE OR ALTER TRIGGER")
    parsed = _LINTER.parse_string(trigger)
    assert parsed.tree is not None and not parsed.violations
    assert not any(parsed.tree.recursive_crawl("unparsable"))
    assert any(parsed.tree.recursive_crawl("create_trigger"))
    for statement in TSQL_KEYWORD_TRIGGER_BODY.split(";\n"):
        assert tsql_problems(statement.rstrip(";")) == [], statement


def problems(sql: str) -> list[str]:
    """The shared check; sqlfluff asserts (instead of reporting) on some unparsable input."""
    try:
        return tsql_problems(sql)
    except AssertionError as exc:
        return [f"sqlfluff: {exc}"]


# Known gap, kept visible: both parsers accept "ORDER BY Id DESC LIMIT 100" as T-SQL.
BROKEN_TSQL = {
    "FETCH without OFFSET": readme_tsql()["by-camera"].replace(
        "ORDER BY Id DESC;", "ORDER BY Id DESC FETCH NEXT 100 ROWS ONLY;"),
    "unbalanced TOP": readme_tsql()["by-camera"].replace("TOP (100)", "TOP (100"),
    "unbalanced type": readme_tsql()["newest-first-next-page"].replace("DATETIME2(6)", "DATETIME2(6"),
    "unbalanced parenthesis": readme_tsql()["within-radius"].replace("ASIN(SQRT(", "ASIN(SQRT(("),
    "missing comma in DECLARE": readme_tsql()["newest-first-next-page"].replace("', @lastId", "' @lastId"),
    "misspelled keyword": readme_tsql()["by-keyword"].replace("INNER JOIN", "INNER JION"),
}


@pytest.mark.parametrize("name", list(BROKEN_TSQL))
def test_check_rejects_broken_queries(name):
    assert BROKEN_TSQL[name] not in readme_tsql().values()
    assert problems(BROKEN_TSQL[name])


def test_trigger_check_rejects_a_broken_trigger():
    broken = TSQL_SUPPORT[-1].replace("AFTER INSERT, UPDATE AS", "AFTER INSERT, UPDATE")
    parsed = _LINTER.parse_string(broken)
    assert parsed.tree is None or parsed.violations or any(parsed.tree.recursive_crawl("unparsable"))
    body = TSQL_KEYWORD_TRIGGER_BODY.replace("CROSS APPLY", "CROSS APLY")
    assert any(problems(s.rstrip(";")) for s in body.split(";\n"))


def test_sqlglot_alone_cannot_parse_a_trigger():
    """Why the trigger is checked differently (kept true by this test, not by assumption)."""
    trees = sqlglot.parse(TSQL_SUPPORT[-1], read="tsql", error_level=ErrorLevel.RAISE)
    assert any(tree is not None and any(tree.find_all(exp.Command)) for tree in trees)


# ---- Duplicates ------------------------------------------------------------------------------

def _tsql_as_code(sql: str) -> str:
    """README's T-SQL with its DECLAREd variables as ? markers, as one canonical text."""
    body = re.sub(r"^DECLARE [^;]*;\s*", "", sql.strip())
    return sqlglot.parse_one(re.sub(r"@\w+", "?", body), read="tsql").sql("tsql")


def test_readme_duplicate_queries_are_the_ones_the_code_runs():
    from shared.store.dialects import TSqlDialect

    tsql = TSqlDialect()
    readme = readme_tsql()
    assert _tsql_as_code(readme["exact-duplicates-of-an-image"]) == _tsql_as_code(duplicates.exact_of(tsql).sql)
    assert _tsql_as_code(readme["near-duplicates-of-an-image"]) == _tsql_as_code(duplicates.near_within(tsql).sql)
    assert f"@k INT = {duplicates.NEAR_DISTANCE}" in readme["near-duplicates-of-an-image"]
    # negative control: a probe of the wrong band is a different query
    broken = readme["near-duplicates-of-an-image"].replace("d.PHashBand3 = (img.b3", "d.PHashBand3 = (img.b2")
    assert _tsql_as_code(broken) != _tsql_as_code(duplicates.near_within(tsql).sql)


def _all_hashes(cs: str) -> list[tuple[int, int]]:
    return [(int(i), int(h)) for i, h in run(cs, "SELECT Id, PerceptualHash FROM ImageMetadata "
                                                 "WHERE PerceptualHash IS NOT NULL AND Status <> 'deleted'", ())]


def test_near_duplicates_on_100k_rows_are_what_a_full_scan_finds(databases):
    """For a few images: the band probe filtered by the distance (in SQL on PostgreSQL, in
    Python on SQLite) gives exactly the rows a scan of all 100,000 hashes gives."""
    from shared.hash_bands import hamming
    from shared.store.dialects import PostgresDialect

    k = duplicates.NEAR_DISTANCE
    everything = _all_hashes(databases["postgresql"])
    assert len(everything) == ROWS
    own = dict(everything)
    for image_id in (2000, 31001, 77777):
        want = sorted((hamming(own[image_id], h), i) for i, h in everything if i != image_id
                      and hamming(own[image_id], h) <= k)
        assert want, image_id
        in_sql = [(int(r[2]), int(r[0])) for r in run(databases["postgresql"],
                                                      duplicates.near_within(PostgresDialect()).sql, (image_id, k))]
        assert in_sql == want
        for cs in databases.values():
            candidates = run(cs, duplicates.near_candidates(SQLiteDialect()).sql, (image_id,))
            assert sorted((hamming(own[image_id], int(h)), int(i)) for i, _, h in candidates
                          if hamming(own[image_id], int(h)) <= k) == want


def test_near_duplicates_in_sql_use_the_band_indexes(databases):
    from shared.store.dialects import PostgresDialect

    sql = duplicates.near_within(PostgresDialect()).sql
    for band in range(4):
        assert plan_problems(databases["postgresql"], "postgresql", sql, (2000, 10),
                             f"IX_ImageMetadata_PHashBand{band}") == []


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_plan_check_catches_a_dropped_band_index(databases, engine):
    """Negative control: without one band's index that band's probe scans the table."""
    cs = databases[engine]
    sql, params, index = QUERIES["near-duplicates-of-an-image"]
    conn = pyodbc.connect(cs, autocommit=False)
    try:
        conn.execute(f"DROP INDEX {index}")
        if engine == "sqlite":
            details = [str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()]
            assert any("full scan" in p for p in sqlite_plan_problems(details, index)), details
        else:
            plan = str(conn.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()[0])
            assert "Seq Scan" in plan
    finally:
        conn.rollback()
        conn.close()
