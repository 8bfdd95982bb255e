"""Duplicate search, each query backed by an index on every engine (docs/duplicates.md).

Exact duplicates share ContentMD5 (IX_ImageMetadata_ContentMD5). Near duplicates are found by
the perceptual hash's bands (shared.hash_bands): every band of the image is probed with each
value within ``RADIUS`` bits of it (index seeks on IX_ImageMetadata_PHashBandN), which is sure to
find every hash within ``guaranteed(RADIUS)`` bits; the exact Hamming distance then keeps those
within ``NEAR_DISTANCE``. The distance is computed in SQL where the engine has a popcount
(T-SQL BIT_COUNT: SQL Server 2022, Azure SQL Database; PostgreSQL 14+ bit_count on bit(64)) and
in Python on SQLite (no popcount, and pyodbc cannot register a function) — the Python API below
filters in Python on every engine, so its answers are the same everywhere.

``NEAR_DISTANCE`` is chosen from measurements (bench/duplicates.py, docs/duplicates.md): resized
and re-encoded copies are within 2 bits, a copy with 2 % cut from each side within 10, and no two
unrelated scenes of 4,950 pairs closer than 16.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.hash_bands import BAND_BITS, BANDS, guaranteed, hamming, radius_for
from shared.models import STATUS_DELETED
from shared.store import SqlStore
from shared.store.columns import BY_NAME, Column, band_column
from shared.store.dialects import Dialect, Statement

NEAR_DISTANCE = 10
RADIUS = radius_for(NEAR_DISTANCE)
assert guaranteed(RADIUS) >= NEAR_DISTANCE
GROUP_LIMIT = 1000  # rows of duplicate groups per call

_ID = Column("Id", "bigint")  # the identity column, bound as BIGINT
_LIMIT = Column("(row limit)", "int")
_DISTANCE = Column("(distance)", "int")


@dataclass(frozen=True)
class Spelling:
    """What differs between the engines in these queries."""

    dialect: str
    table: str

    @property
    def deleted(self) -> str:
        return f"N'{STATUS_DELETED}'" if self.dialect == "tsql" else f"'{STATUS_DELETED}'"

    def xor(self, a: str, b: str) -> str:
        """Bitwise XOR of two non-negative integers: T-SQL has ^; SQLite has no XOR operator
        and PostgreSQL spells it #, so both take the portable (a | b) - (a & b)."""
        return f"({a} ^ {b})" if self.dialect == "tsql" else f"(({a} | {b}) - ({a} & {b}))"

    def values(self, rows: str, alias: str, column: str) -> str:
        """A CTE body of literal rows: T-SQL wants a SELECT; SQLite cannot alias VALUES' columns."""
        if self.dialect == "tsql":
            return f"SELECT {column} FROM (VALUES {rows}) AS {alias} ({column})"
        return f"VALUES {rows}"


def _spelling(dialect: Dialect) -> Spelling:
    return Spelling(dialect.name, dialect.table)


def masks_cte(dialect: Dialect, radius: int = RADIUS) -> str:
    """``bits(v)``: the 16 one-bit values; ``masks(m)``: every 16-bit value with at most
    ``radius`` bits set (1, 17, 137 of them for radius 0, 1, 2)."""
    if not 0 <= radius <= 2:
        raise ValueError(f"band radius {radius} is not 0, 1 or 2")
    s = _spelling(dialect)
    bits = ", ".join(f"({1 << i})" for i in range(BAND_BITS))
    parts = ["SELECT 0 AS m"]
    if radius >= 1:
        parts.append("SELECT v FROM bits")
    if radius >= 2:
        parts.append("SELECT a.v + b.v FROM bits AS a INNER JOIN bits AS b ON a.v < b.v")
    return f"bits (v) AS ({s.values(bits, 't', 'v')}),\nmasks (m) AS ({' UNION ALL '.join(parts)})"


def exact_of(dialect: Dialect) -> Statement:
    """Rows with the same content as the image with this Id (not deleted), oldest first."""
    s = _spelling(dialect)
    return Statement(
        f"SELECT d.Id, d.BlobName, d.ContentMD5 FROM {s.table} AS i "
        f"INNER JOIN {s.table} AS d ON d.ContentMD5 = i.ContentMD5 "
        f"WHERE i.Id = ? AND d.Id <> i.Id AND d.Status <> {s.deleted} ORDER BY d.Id", (_ID,))


def groups(dialect: Dialect) -> Statement:
    """Every row whose content another live row shares, by ContentMD5 then Id; a page of at most
    the limit parameter, the next one after the last (ContentMD5, Id) seen (keyset paging: the
    grouping starts at that ContentMD5 in the index, so no page reads the groups before it)."""
    s = _spelling(dialect)
    limit = "OFFSET 0 ROWS FETCH NEXT ? ROWS ONLY" if dialect.name == "tsql" else "LIMIT ?"
    return Statement(
        f"SELECT m.ContentMD5, m.Id, m.BlobName FROM {s.table} AS m WHERE m.ContentMD5 IN ("
        f"SELECT g.ContentMD5 FROM {s.table} AS g WHERE g.ContentMD5 >= ? AND g.Status <> {s.deleted} "
        "GROUP BY g.ContentMD5 HAVING COUNT(*) > 1) "
        f"AND m.Status <> {s.deleted} AND (m.ContentMD5 > ? OR (m.ContentMD5 = ? AND m.Id > ?)) "
        f"ORDER BY m.ContentMD5, m.Id {limit}",
        (BY_NAME["ContentMD5"], BY_NAME["ContentMD5"], BY_NAME["ContentMD5"], _ID, _LIMIT))


def _near(dialect: Dialect, radius: int, within: bool) -> Statement:
    s = _spelling(dialect)
    probes = "\n  UNION ".join(
        f"SELECT d.Id FROM img CROSS JOIN masks INNER JOIN {s.table} AS d "
        f"ON d.{band_column(i)} = {s.xor(f'img.b{i}', 'masks.m')} WHERE d.Id <> img.Id" for i in range(BANDS))
    bands = ", ".join(f"{band_column(i)} AS b{i}" for i in range(BANDS))
    head = (f"WITH {masks_cte(dialect, radius)},\n"
            f"img AS (SELECT Id, PerceptualHash, {bands} FROM {s.table} WHERE Id = ? AND PerceptualHash IS NOT NULL),\n"
            f"candidates (Id) AS (\n  {probes})\n")
    live = f"d.Id IN (SELECT c.Id FROM candidates AS c) AND d.Status <> {s.deleted}"
    if not within:
        return Statement(f"{head}SELECT d.Id, d.BlobName, d.PerceptualHash FROM {s.table} AS d "
                         f"WHERE {live} ORDER BY d.Id", (_ID,))
    if dialect.name == "sqlite":
        raise ValueError("SQLite has no popcount: filter near_candidates' rows by hash_bands.hamming")
    # BIT_COUNT (SQL Server 2022, Azure SQL Database) counts a BIGINT's 64 bits; PostgreSQL 14+
    # counts a bit string's, and bigint::bit(64) is its two's complement.
    distance = ("BIT_COUNT(d.PerceptualHash ^ img.PerceptualHash)" if dialect.name == "tsql"
                else "bit_count((d.PerceptualHash # img.PerceptualHash)::bit(64))")
    return Statement(f"{head}SELECT d.Id, d.BlobName, {distance} AS Distance FROM {s.table} AS d CROSS JOIN img "
                     f"WHERE {live} AND {distance} <= ? ORDER BY Distance, d.Id", (_ID, _DISTANCE))


def near_candidates(dialect: Dialect, radius: int = RADIUS) -> Statement:
    """Rows (Id, BlobName, PerceptualHash) whose hash shares a band within ``radius`` bits with
    the image with this Id: every hash within ``guaranteed(radius)`` bits, and some farther.
    Each step is a seek: the image by Id, each probe by its band index, each candidate by Id
    (an IN list, which SQLite too reads key by key rather than joining by a table scan)."""
    return _near(dialect, radius, within=False)


def near_within(dialect: Dialect, radius: int = RADIUS) -> Statement:
    """The same probe with the exact distance in SQL (T-SQL, PostgreSQL): (Id, BlobName,
    Distance) within the second parameter, nearest first."""
    return _near(dialect, radius, within=True)


def exact_duplicates(store: SqlStore, image_id: int) -> list[dict[str, Any]]:
    rows = store.fetch(exact_of(store.dialect), [image_id])
    return [{"Id": r[0], "BlobName": r[1], "ContentMD5": r[2].strip()} for r in rows]


def duplicate_groups(store: SqlStore, limit: int = GROUP_LIMIT) -> list[list[dict[str, Any]]]:
    """Groups of live rows with the same content, every page read (``limit`` rows a query)."""
    statement = groups(store.dialect)
    found: dict[str, list[dict[str, Any]]] = {}
    after_md5, after_id = "", 0
    while True:
        rows = store.fetch(statement, [after_md5, after_md5, after_md5, after_id, limit])
        for md5, image_id, name in rows:
            found.setdefault(md5.strip(), []).append({"Id": image_id, "BlobName": name})
        if len(rows) < limit:
            return list(found.values())
        after_md5, after_id = rows[-1][0].strip(), rows[-1][1]


def near_duplicates(store: SqlStore, image_id: int, within: int = NEAR_DISTANCE) -> list[dict[str, Any]]:
    """Live rows whose perceptual hash is within ``within`` bits of the image's, nearest first."""
    radius = radius_for(within)
    image = store.fetch(Statement(f"SELECT PerceptualHash FROM {store.dialect.table} WHERE Id = ?", (_ID,)),
                 [image_id])
    if not image or image[0][0] is None:
        return []
    own = int(image[0][0])
    rows = store.fetch(near_candidates(store.dialect, radius), [image_id])
    near = [{"Id": r[0], "BlobName": r[1], "Distance": hamming(own, int(r[2]))} for r in rows]
    return sorted((r for r in near if r["Distance"] <= within), key=lambda r: (r["Distance"], r["Id"]))


def near_groups(store: SqlStore, within: int = NEAR_DISTANCE) -> list[list[dict[str, Any]]]:
    """Clusters of live rows linked by near-duplicate pairs (one band probe per image: for
    ``make show`` on a local table, not for a million rows at once)."""
    s = _spelling(store.dialect)
    names = dict(store.fetch(Statement(
        f"SELECT Id, BlobName FROM {s.table} WHERE PerceptualHash IS NOT NULL AND Status <> {s.deleted} ORDER BY Id",
        ()), []))
    parent: dict[int, int] = {}

    def root(i: int) -> int:
        while parent.setdefault(i, i) != i:
            i = parent[i]
        return i

    for image_id in names:
        for near in near_duplicates(store, image_id, within):
            parent[root(near["Id"])] = root(image_id)
    clusters: dict[int, list[dict[str, Any]]] = {}
    for image_id in sorted(parent):
        clusters.setdefault(root(image_id), []).append({"Id": image_id, "BlobName": names[image_id]})
    return [c for c in clusters.values() if len(c) > 1]
