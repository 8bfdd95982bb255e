"""Which write wins: the ordering rules, written once as two decision tables.

Each table is an ordered list of rows; the first row whose conditions all hold decides. Every
condition has one Python form (the model the property test runs) and one SQL form (a template
over the stored row ``{o}`` and the incoming write ``{n}``); every dialect's upsert and deletion
statements are generated from these rows (``sql_case``), so the engines and the model cannot
disagree about the rules, only about SQL semantics, which the property test checks.

Times: Last-Modified has one-second precision (RFC 1123 in the HTTP header), so two versions in
one second carry the same value. A deletion's time is stored cut to the second for the same
reason. "Equal time, another ETag" is therefore not "newer": the table says TIE, the SQL leaves
the row alone, and the caller asks storage which ETag is current (shared.store.store).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.models import STATUS_DELETED, STATUS_FAILED, STATUS_PROCESSED

APPLY = "apply"
KEEP = "keep"
TIE = "tie"

Row = dict[str, Any]


@dataclass(frozen=True)
class Cond:
    """A condition on the stored row (o) and the write (n). SQL forms never yield NULL, so that
    NOT works on them and a CASE row either matches or does not."""

    name: str
    sql: str
    test: Callable[[Row, Row], bool]
    negated: bool = False

    def __invert__(self) -> Cond:
        return Cond(f"not {self.name}", self.sql, self.test, not self.negated)

    def holds(self, o: Row, n: Row) -> bool:
        return self.test(o, n) != self.negated

    def render(self, o: str, n: str, ordinal: Callable[[str], str]) -> str:
        text = self.sql.format(o=o, n=n, seq_o=ordinal(f"{o}.Sequencer"), seq_n=ordinal(f"{n}.Sequencer"))
        return f"NOT ({text})" if self.negated else f"({text})"


def _both(a: Any, b: Any) -> bool:
    return a is not None and b is not None


def _ev(value: Any) -> int:
    return int(value) if value is not None else 0


GONE = Cond("stored row is a tombstone", f"{{o}}.Status = '{STATUS_DELETED}'",
            lambda o, n: o["Status"] == STATUS_DELETED)
SAME_VERSION = Cond("same ETag", "{o}.ETag IS NOT NULL AND {n}.ETag IS NOT NULL AND {o}.ETag = {n}.ETag",
                    lambda o, n: _both(o["ETag"], n["ETag"]) and o["ETag"] == n["ETag"])
SEQ_KNOWN = Cond("both sequencers known", "{o}.Sequencer IS NOT NULL AND {n}.Sequencer IS NOT NULL",
                 lambda o, n: _both(o["Sequencer"], n["Sequencer"]))
SEQ_NEWER = Cond("later sequencer", "{o}.Sequencer IS NOT NULL AND {n}.Sequencer IS NOT NULL AND {seq_n} > {seq_o}",
                 lambda o, n: _both(o["Sequencer"], n["Sequencer"]) and n["Sequencer"] > o["Sequencer"])
LM_NEWER = Cond("later Last-Modified",
                "{o}.BlobLastModified IS NOT NULL AND {n}.BlobLastModified IS NOT NULL "
                "AND {n}.BlobLastModified > {o}.BlobLastModified",
                lambda o, n: _both(o["BlobLastModified"], n["BlobLastModified"])
                and n["BlobLastModified"] > o["BlobLastModified"])
LM_OLDER = Cond("earlier Last-Modified",
                "{o}.BlobLastModified IS NOT NULL AND {n}.BlobLastModified IS NOT NULL "
                "AND {n}.BlobLastModified < {o}.BlobLastModified",
                lambda o, n: _both(o["BlobLastModified"], n["BlobLastModified"])
                and n["BlobLastModified"] < o["BlobLastModified"])
AFTER_DELETION = Cond("version later than the deletion",
                      "{o}.DeletedAt IS NOT NULL AND {n}.BlobLastModified IS NOT NULL "
                      "AND {n}.BlobLastModified > {o}.DeletedAt",
                      lambda o, n: _both(o["DeletedAt"], n["BlobLastModified"])
                      and n["BlobLastModified"] > o["DeletedAt"])
BEFORE_DELETION = Cond("version earlier than the deletion",
                       "{o}.DeletedAt IS NOT NULL AND {n}.BlobLastModified IS NOT NULL "
                       "AND {n}.BlobLastModified < {o}.DeletedAt",
                       lambda o, n: _both(o["DeletedAt"], n["BlobLastModified"])
                       and n["BlobLastModified"] < o["DeletedAt"])
LOWER_EXTRACTOR = Cond("lower ExtractorVersion",
                       "COALESCE({n}.ExtractorVersion, 0) < COALESCE({o}.ExtractorVersion, 0)",
                       lambda o, n: _ev(n["ExtractorVersion"]) < _ev(o["ExtractorVersion"]))
HIGHER_EXTRACTOR = Cond("higher ExtractorVersion",
                        "COALESCE({n}.ExtractorVersion, 0) > COALESCE({o}.ExtractorVersion, 0)",
                        lambda o, n: _ev(n["ExtractorVersion"]) > _ev(o["ExtractorVersion"]))
WRITE_FAILED = Cond("write is failed", f"{{n}}.Status = '{STATUS_FAILED}'",
                    lambda o, n: n["Status"] == STATUS_FAILED)
STORED_ANSWER = Cond("stored row is an answer (not failed)",
                     f"{{o}}.Status IS NOT NULL AND {{o}}.Status <> '{STATUS_FAILED}'",
                     lambda o, n: o["Status"] is not None and o["Status"] != STATUS_FAILED)
STORED_PROCESSED = Cond("stored row is processed", f"{{o}}.Status = '{STATUS_PROCESSED}'",
                        lambda o, n: o["Status"] == STATUS_PROCESSED)
WRITE_PROCESSED = Cond("write is processed", f"{{n}}.Status = '{STATUS_PROCESSED}'",
                       lambda o, n: n["Status"] == STATUS_PROCESSED)
# Deletions: n is the deletion (ETag set only when reconciliation saw that version gone).
DELETION_NAMES_VERSION = Cond("deletion names a version", "{n}.ETag IS NOT NULL", lambda o, n: n["ETag"] is not None)
VERSION_NOT_AFTER_DELETION = Cond(
    "stored version not later than the deletion",
    "{o}.BlobLastModified IS NULL OR {n}.DeletedAt IS NULL OR {o}.BlobLastModified <= {n}.DeletedAt",
    lambda o, n: o["BlobLastModified"] is None or n["DeletedAt"] is None or o["BlobLastModified"] <= n["DeletedAt"])


@dataclass(frozen=True)
class Decision:
    when: tuple[Cond, ...]
    outcome: str
    why: str


# A run's write (processed, rejected or failed) against the stored row of the same blob.
UPSERT_TABLE: tuple[Decision, ...] = (
    Decision((GONE, SEQ_NEWER), APPLY, "an upload after the deletion event"),
    Decision((GONE, SEQ_KNOWN), KEEP, "the deletion event is later than this version's"),
    Decision((GONE, SAME_VERSION), TIE, "a run of the version the tombstone names: storage says whether it "
             "is gone (a late run: kept) or there (a wrong tombstone: repaired)"),
    Decision((GONE, AFTER_DELETION), APPLY, "a version written after the deletion"),
    Decision((GONE, BEFORE_DELETION), KEEP, "a version older than the deletion"),
    Decision((GONE,), TIE, "deleted in the second this version was written (or no times): ask storage"),
    Decision((SAME_VERSION, LOWER_EXTRACTOR), KEEP, "a lower ExtractorVersion never replaces a higher one"),
    Decision((SAME_VERSION, WRITE_FAILED, STORED_ANSWER), KEEP, "failed never replaces an answer"),
    Decision((SAME_VERSION, STORED_PROCESSED, ~WRITE_PROCESSED, ~HIGHER_EXTRACTOR), KEEP,
             "processed is not downgraded by the same extractor"),
    Decision((SAME_VERSION,), APPLY, "the same version again (retry, re-index, failed then answered)"),
    Decision((SEQ_NEWER,), APPLY, "a later event for the blob"),
    Decision((SEQ_KNOWN,), KEEP, "an earlier event for the blob"),
    Decision((LM_NEWER,), APPLY, "a later version"),
    Decision((LM_OLDER,), KEEP, "an earlier version"),
    Decision((), TIE, "another version in the same second (or no times): ask storage"),
)

# A deletion (Event Grid BlobDeleted or reconciliation) against the stored row.
DELETE_TABLE: tuple[Decision, ...] = (
    Decision((DELETION_NAMES_VERSION, ~SAME_VERSION), KEEP, "reconciliation saw another version gone"),
    Decision((SEQ_NEWER,), APPLY, "a later event"),
    Decision((SEQ_KNOWN,), KEEP, "the same or an earlier event"),
    Decision((GONE,), KEEP, "already deleted"),
    Decision((VERSION_NOT_AFTER_DELETION,), APPLY, "the stored version is not newer than the deletion"),
    Decision((), KEEP, "the stored version is newer than the deletion"),
)


def decide(table: tuple[Decision, ...], o: Row, n: Row) -> Decision:
    for row in table:
        if all(c.holds(o, n) for c in row.when):
            return row
    raise AssertionError("a decision table must end with a row that always matches")


def sql_case(table: tuple[Decision, ...], o: str, n: str, ordinal: Callable[[str], str]) -> str:
    """The table as one SQL CASE (first matching row wins, as in ``decide``), true when it says APPLY."""
    whens = []
    for row in table[:-1]:
        cond = " AND ".join(c.render(o, n, ordinal) for c in row.when)
        whens.append(f"WHEN {cond} THEN {1 if row.outcome == APPLY else 0}")
    last = 1 if table[-1].outcome == APPLY else 0
    return f"(CASE {' '.join(whens)} ELSE {last} END) = 1"


# Columns the rules read, so a model or a re-read of the row needs only these.
RULE_COLUMNS = ("ETag", "Status", "Sequencer", "BlobLastModified", "DeletedAt", "ExtractorVersion")


def merged_sequencer(o: Row, n: Row) -> Any:
    """What an applied write leaves in Sequencer: its own, else the stored one (the order the next
    event needs is never erased by a write that carries none)."""
    return n["Sequencer"] if n["Sequencer"] is not None else o["Sequencer"]
