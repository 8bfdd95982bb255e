"""Which database errors clear up by themselves: decided by SQLSTATE and native error number only.

Message text is never read for the decision, because SQL Server's truncation (2628) and
duplicate-key (2627) messages quote the row's values: a title holding "timeout" must not turn a
permanent error into minutes of retries. The one exception is SQLite, which reports every error
as SQLSTATE HY000 with no number: its busy text ("database is locked", SQLITE_BUSY's fixed
message, sqlite.org/rescode.html#busy) is the only way to see a lock wait.

Sources for every code: docs/azure-sql.md.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

try:
    import pyodbc
except ImportError:  # the azd hook's environment migrates through mssql-python alone
    pyodbc = None

TRANSIENT = "transient"
PERMANENT = "permanent"
DENIED = "permission"  # permanent, and the schema cannot be changed by this identity
LOGIN = "login"  # permanent: the identity, its password or token, or TLS trust is wrong


@dataclass(frozen=True)
class Rule:
    code: str  # a SQLSTATE (or class prefix, e.g. "08") or, for SQL Server, a native error number
    kind: str
    meaning: str


# SQLSTATEs, longest prefix first wins (both drivers report them; PostgreSQL's own codes pass
# through psqlODBC unchanged).
SQLSTATE_RULES: tuple[Rule, ...] = (
    Rule("08", TRANSIENT, "connection exception (lost, refused, reset)"),
    Rule("HYT00", TRANSIENT, "timeout expired"),
    Rule("HYT01", TRANSIENT, "connection timeout expired"),
    Rule("40001", TRANSIENT, "serialization failure (SQL Server: deadlock victim 1205)"),
    Rule("40P01", TRANSIENT, "PostgreSQL deadlock detected"),
    Rule("57P01", TRANSIENT, "PostgreSQL admin shutdown (server restart, failover)"),
    Rule("57P02", TRANSIENT, "PostgreSQL crash shutdown"),
    Rule("57P03", TRANSIENT, "PostgreSQL cannot connect now (starting up)"),
    Rule("53300", TRANSIENT, "PostgreSQL too many connections"),
    Rule("55P03", TRANSIENT, "PostgreSQL lock not available"),
    Rule("28", LOGIN, "invalid authorization specification (login failed)"),
    Rule("42501", DENIED, "PostgreSQL insufficient privilege"),
    Rule("22001", PERMANENT, "string data, right truncation"),
    Rule("23", PERMANENT, "integrity constraint violation"),
    Rule("42", PERMANENT, "syntax error or access rule violation"),
)

# SQL Server / Azure SQL native error numbers (only read from Microsoft's drivers' messages).
NATIVE_RULES: tuple[Rule, ...] = (
    Rule("1205", TRANSIENT, "deadlock victim"),
    Rule("1222", TRANSIENT, "lock request time out period exceeded"),
    Rule("40613", TRANSIENT, "database not currently available (serverless resume, failover)"),
    Rule("40197", TRANSIENT, "service error processing the request (failover, upgrade)"),
    Rule("40501", TRANSIENT, "service is currently busy"),
    Rule("49918", TRANSIENT, "not enough resources to process the request"),
    Rule("49919", TRANSIENT, "too many create or update operations in progress"),
    Rule("49920", TRANSIENT, "too many operations in progress"),
    Rule("10928", TRANSIENT, "resource limit reached (workers or sessions)"),
    Rule("10929", TRANSIENT, "resource limit: minimum guarantee not available"),
    Rule("10936", TRANSIENT, "elastic pool request limit reached"),
    Rule("4060", TRANSIENT, "cannot open database requested by the login (resuming, moving)"),
    Rule("4221", TRANSIENT, "login to read-secondary failed during replica change"),
    Rule("615", TRANSIENT, "could not find database id (moving)"),
    Rule("926", TRANSIENT, "database cannot be opened (marked suspect during recovery)"),
    Rule("40540", TRANSIENT, "service has encountered an error processing your request"),
    Rule("40143", TRANSIENT, "service has encountered an error processing your request"),
    Rule("10053", TRANSIENT, "transport-level error: connection aborted"),
    Rule("10054", TRANSIENT, "transport-level error: connection reset by peer"),
    Rule("10060", TRANSIENT, "network error: connection timed out"),
    Rule("233", TRANSIENT, "no process is on the other end of the pipe"),
    Rule("64", TRANSIENT, "the specified network name is no longer available"),
    Rule("20", TRANSIENT, "the instance is not accepting connections"),
    Rule("121", TRANSIENT, "semaphore timeout period has expired"),
    Rule("18456", LOGIN, "login failed for the user (identity not a database user, wrong UID)"),
    Rule("18452", LOGIN, "login from an untrusted domain"),
    Rule("262", DENIED, "permission denied in database (CREATE TABLE, ...)"),
    Rule("229", DENIED, "permission denied on object"),
    Rule("230", DENIED, "permission denied on column"),
    Rule("300", DENIED, "permission denied (VIEW DEFINITION, ...)"),
    Rule("1088", DENIED, "object not found or no permission"),
    Rule("15247", DENIED, "user does not have permission to perform this action"),
    Rule("2628", PERMANENT, "string or binary data would be truncated"),
    Rule("8152", PERMANENT, "string or binary data would be truncated (older form)"),
    Rule("2627", PERMANENT, "unique constraint violation"),
    Rule("2601", PERMANENT, "duplicate key in unique index"),
)
_NATIVE = {r.code: r for r in NATIVE_RULES}
# SQLite's result codes, which its ODBC driver reports as the native number (sqlite.org/rescode.html).
SQLITE_RULES: tuple[Rule, ...] = (
    Rule("5", TRANSIENT, "SQLITE_BUSY: the database file is locked by another connection"),
    Rule("6", TRANSIENT, "SQLITE_LOCKED: a table is locked within this connection"),
)
_SQLITE = {r.code: r for r in SQLITE_RULES}
SQLITE_BUSY_TEXT = ("database is locked", "database is busy")

# pyodbc: "[SQLSTATE] ... message (native) (SQLFunction)"; later diagnostic records follow as
# "; [SQLSTATE] ... (native)". The first record's number is the one before the function name; the
# last such match is taken so that a value quoted in the message cannot stand in for it.
_PYODBC_NATIVE = re.compile(r"\((-?\d+)\) \(SQL[A-Za-z]+\)")
_TRAILING_NATIVE = re.compile(r"\((-?\d+)\)\s*$")


@dataclass(frozen=True)
class Diagnosis:
    sqlstate: str
    native: int | None
    kind: str
    rule: str


@functools.cache
def error_types() -> tuple[type[BaseException], ...]:
    """The DB-API error base classes of the drivers that are importable here."""
    types: list[type[BaseException]] = [pyodbc.Error] if pyodbc is not None else []
    try:
        import mssql_python
    except ImportError:
        return tuple(types)
    types.append(mssql_python.Error)
    return tuple(types)


@functools.cache
def _mssql_python_states() -> dict[str, str]:
    """mssql-python names the SQLSTATE only through its exception's ``driver_error`` text, taken
    from its own table (mssql_python/exceptions.py, sqlstate_to_exception): read that table back."""
    try:
        from mssql_python.exceptions import sqlstate_to_exception
    except ImportError:
        return {}
    states = {}
    for state in ("08001", "08002", "08003", "08004", "08007", "08S01", "HYT00", "HYT01", "40001",
                  "40002", "40003", "28000", "22001", "23000", "42000", "42S02", "42S22", "HY000"):
        exc = sqlstate_to_exception(state, "")
        if exc is not None:
            states.setdefault(exc.driver_error, state)
    return states


def _codes(exc: BaseException) -> tuple[str, int | None, str]:
    """(SQLSTATE, native number or None, which engine's driver wrote the message)."""
    try:
        import mssql_python
    except ImportError:
        mssql_python = None
    if mssql_python is not None and isinstance(exc, mssql_python.Error):
        state = _mssql_python_states().get(getattr(exc, "driver_error", ""), "")
        found = _TRAILING_NATIVE.search(str(getattr(exc, "ddbc_error", "") or ""))
        return state, int(found.group(1)) if found else None, "tsql"
    state = str(exc.args[0]) if exc.args else ""
    message = str(exc.args[1]) if len(exc.args) > 1 else ""
    # The driver's own prefix opens the message, before any text the engine quotes.
    head = message[:60]
    engine = "tsql" if "[Microsoft]" in head else "sqlite" if "[SQLite]" in head else "other"
    natives = _PYODBC_NATIVE.findall(message) if engine != "other" else []
    return state, int(natives[-1]) if natives else None, engine


def diagnose(exc: BaseException) -> Diagnosis | None:
    """The rule that classifies a driver error, or None for anything that is not one."""
    if not isinstance(exc, error_types()):
        return None
    state, native, engine = _codes(exc)
    natives = _NATIVE if engine == "tsql" else _SQLITE if engine == "sqlite" else {}
    if native is not None and str(native) in natives:
        rule = natives[str(native)]
        return Diagnosis(state, native, rule.kind, f"native {rule.code}: {rule.meaning}")
    for rule in sorted(SQLSTATE_RULES, key=lambda r: -len(r.code)):
        if state.upper().startswith(rule.code):
            return Diagnosis(state, native, rule.kind, f"SQLSTATE {rule.code}: {rule.meaning}")
    if engine != "tsql" and state == "HY000" and _sqlite_busy(exc):
        return Diagnosis(state, native, TRANSIENT, "SQLite busy (no code: its fixed message)")
    return Diagnosis(state, native, PERMANENT, "no rule: permanent")


def _sqlite_busy(exc: BaseException) -> bool:
    message = str(exc.args[1]) if len(exc.args) > 1 else ""
    # The SQLite ODBC driver's form: "[SQLITE_BUSY] database is locked (5)" / "database is locked (5)".
    head = message.split("(", 1)[0].strip().lower()
    return head.endswith(SQLITE_BUSY_TEXT) or "[sqlite_busy]" in message.lower()


def is_transient(exc: BaseException) -> bool:
    """Whether a driver error (pyodbc or mssql-python) clears up if we wait and try again."""
    found = diagnose(exc)
    return found is not None and found.kind == TRANSIENT


def is_permission_denied(exc: BaseException) -> bool:
    found = diagnose(exc)
    return found is not None and found.kind == DENIED


def is_login_failure(exc: BaseException) -> bool:
    found = diagnose(exc)
    return found is not None and found.kind == LOGIN


def describe(exc: Any) -> str:
    found = diagnose(exc)
    return found.rule if found else type(exc).__name__
