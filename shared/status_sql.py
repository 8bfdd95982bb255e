"""The status report's SQL, one set per dialect (SQLite, PostgreSQL, T-SQL for Azure SQL).

Every query reads the ImageMetadata table only, through the index on (Status, ProcessedAt)
where it can: counts by status are an index-only scan, the latency of the last hour a seek per
final status. Status values are the constants of shared.models written as literals (they are
not data); times and limits are parameters of the column's own type (the store's datetime
format on SQLite, datetime objects elsewhere), so no column is converted.

Latency is upload to row: ``ProcessedAt - BlobLastModified`` for final rows of blobs uploaded in
the last hour (a re-indexed old blob would otherwise count its age). PostgreSQL and T-SQL
compute the percentiles themselves (``percentile_cont``; T-SQL has it only as a window
function, ``PERCENTILE_CONT ... OVER ()``); SQLite has none built in, so its query returns the
latencies and :func:`percentile_cont` applies the same definition (linear interpolation between
the two nearest ranks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.models import STATUS_DELETED, STATUS_FAILED, STATUS_PROCESSED, STATUS_REJECTED

TABLE = "ImageMetadata"
REASON_LENGTH = 120
FINAL = (STATUS_PROCESSED, STATUS_REJECTED)


@dataclass(frozen=True)
class StatusSql:
    """The report's statements for one dialect; ``?`` parameters, in the order documented."""

    name: str
    counts_by_status: str           # -> (Status, N)
    top_reasons: dict[str, str]     # status -> statement(limit) -> (Reason, N)
    latency: str                    # (since, since) -> (N, p50, p95), or latencies (SQLite)
    by_extractor_version: str       # -> (ExtractorVersion, N)
    computes_percentiles: bool = True

    def time_param(self, value: datetime) -> object:
        return value.strftime("%Y-%m-%d %H:%M:%S.%f") if self.name == "sqlite" else value


def _final_in() -> str:
    return ", ".join(f"'{s}'" for s in FINAL)


def _reasons(status: str, cut: str, limit_first: bool) -> str:
    reason = cut.format(col="Error", n=REASON_LENGTH)
    where = f"FROM {TABLE} WHERE Status = '{status}' GROUP BY {reason}"
    if limit_first:
        return f"SELECT TOP (?) {reason} AS Reason, COUNT_BIG(*) AS N {where} ORDER BY N DESC, Reason"
    return f"SELECT {reason} AS Reason, COUNT(*) AS N {where} ORDER BY N DESC, Reason LIMIT ?"


_RECENT_FINAL = (f"FROM {TABLE} WHERE Status IN ({_final_in()}) AND ProcessedAt >= ? "
                 "AND BlobLastModified >= ?")
_COUNTS = f"SELECT Status, COUNT(*) AS N FROM {TABLE} GROUP BY Status ORDER BY Status"
_VERSIONS = (f"SELECT ExtractorVersion, COUNT(*) AS N FROM {TABLE} WHERE Status <> '{STATUS_DELETED}' "
             "GROUP BY ExtractorVersion ORDER BY ExtractorVersion")

SQLITE = StatusSql(
    name="sqlite",
    counts_by_status=_COUNTS,
    top_reasons={s: _reasons(s, "substr({col}, 1, {n})", False) for s in (STATUS_FAILED, STATUS_REJECTED)},
    latency=f"SELECT (julianday(ProcessedAt) - julianday(BlobLastModified)) * 86400.0 AS Seconds {_RECENT_FINAL}",
    by_extractor_version=_VERSIONS,
    computes_percentiles=False,
)

POSTGRESQL = StatusSql(
    name="postgresql",
    counts_by_status=_COUNTS,
    top_reasons={s: _reasons(s, "substr({col}, 1, {n})", False) for s in (STATUS_FAILED, STATUS_REJECTED)},
    latency=("SELECT COUNT(*) AS N, percentile_cont(0.5) WITHIN GROUP (ORDER BY Seconds) AS P50, "
             "percentile_cont(0.95) WITHIN GROUP (ORDER BY Seconds) AS P95 FROM (SELECT "
             f"EXTRACT(EPOCH FROM (ProcessedAt - BlobLastModified)) AS Seconds {_RECENT_FINAL}) AS recent"),
    by_extractor_version=_VERSIONS,
)

TSQL = StatusSql(
    name="tsql",
    counts_by_status=f"SELECT Status, COUNT_BIG(*) AS N FROM {TABLE} GROUP BY Status ORDER BY Status",
    top_reasons={s: _reasons(s, "LEFT({col}, {n})", True) for s in (STATUS_FAILED, STATUS_REJECTED)},
    latency=("SELECT TOP (1) COUNT_BIG(*) OVER () AS N, "
             "PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY Seconds) OVER () AS P50, "
             "PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY Seconds) OVER () AS P95 FROM (SELECT "
             f"DATEDIFF_BIG(MILLISECOND, BlobLastModified, ProcessedAt) / 1000.0 AS Seconds {_RECENT_FINAL}) "
             "AS recent"),
    by_extractor_version=(f"SELECT ExtractorVersion, COUNT_BIG(*) AS N FROM {TABLE} "
                          f"WHERE Status <> '{STATUS_DELETED}' GROUP BY ExtractorVersion ORDER BY ExtractorVersion"),
)

STATUS_SQL = {d.name: d for d in (SQLITE, POSTGRESQL, TSQL)}


def percentile_cont(values: Sequence[float], fraction: float) -> float | None:
    """SQL's PERCENTILE_CONT: the value at rank ``fraction * (n - 1)``, interpolated linearly."""
    if not values:
        return None
    ordered = sorted(values)
    rank = fraction * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def tsql_script(top: int = 5) -> str:
    """The T-SQL statements as one batch to paste into the Azure portal's query editor (or
    sqlcmd): the parameters become variables, the last hour counted from the server's UTC clock."""
    def bind(statement: str, *names: str) -> str:
        for name in names:
            statement = statement.replace("?", name, 1)
        return statement + ";"

    return "\n".join([
        "DECLARE @since DATETIME2(6) = DATEADD(HOUR, -1, SYSUTCDATETIME());",
        f"DECLARE @top INT = {int(top)};",
        bind(TSQL.counts_by_status),
        *(bind(s, "@top") for s in TSQL.top_reasons.values()),
        bind(TSQL.latency, "@since", "@since"),
        bind(TSQL.by_extractor_version),
    ])
