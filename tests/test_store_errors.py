"""Transient or not, by SQLSTATE and native error number (shared.store.classify), table-driven over
every listed code, with the drivers' real exception classes and message shapes; and on real
SQLite and PostgreSQL errors. Negative controls: a permanent error whose message quotes a value
full of trigger words and transient numbers stays permanent."""

from __future__ import annotations

import threading

import mssql_python
import pyodbc
import pytest

from shared.store import classify
from shared.store.classify import NATIVE_RULES, SQLSTATE_RULES, TRANSIENT, diagnose, is_transient

TRIGGER_WORDS = "timeout connection timed out (40613) (SQLExecDirectW) database is locked is paused 08S01 (1205)"


def sqlserver_pyodbc(state: str, number: int, text: str = "Something happened.") -> pyodbc.Error:
    """pyodbc's shape for ODBC Driver 18: [state] [driver][SQL Server]text (native) (SQLFunction)."""
    return pyodbc.Error(state, f"[{state}] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]{text} "
                               f"({number}) (SQLExecDirectW); [01000] [Microsoft][ODBC Driver 18 for SQL Server]"
                               "[SQL Server]The statement has been terminated. (3621)")


def sqlserver_mssql_python(state: str, number: int, text: str = "Something happened.") -> mssql_python.Error:
    exc = mssql_python.exceptions.sqlstate_to_exception(state, f"[Microsoft][SQL Server]{text} ({number})")
    return exc if exc is not None else mssql_python.DatabaseError(
        driver_error=f"An error occurred with SQLSTATE code: {state}", ddbc_error=f"[Microsoft]{text} ({number})")


def postgres_error(state: str) -> pyodbc.Error:
    """psqlODBC passes the server's SQLSTATE through; its message holds its own small numbers."""
    return pyodbc.Error(state, f"[{state}] ERROR: something;\nError while executing the query (1) (SQLExecDirectW)")


@pytest.mark.parametrize("rule", NATIVE_RULES, ids=lambda r: r.code)
@pytest.mark.parametrize("driver", ["pyodbc", "mssql-python"])
def test_every_sql_server_number_is_classified_by_its_rule(rule, driver):
    make = sqlserver_pyodbc if driver == "pyodbc" else sqlserver_mssql_python
    found = diagnose(make("42000", int(rule.code)))
    assert found is not None and found.native == int(rule.code) and found.kind == rule.kind


@pytest.mark.parametrize("rule", SQLSTATE_RULES, ids=lambda r: r.code)
def test_every_sqlstate_is_classified_by_its_rule(rule):
    state = rule.code.ljust(5, "0") if len(rule.code) < 5 else rule.code
    found = diagnose(postgres_error(state))
    assert found is not None and found.kind == rule.kind, found


@pytest.mark.parametrize("state", ["40P01", "40001", "57P01", "08006", "08001", "53300"])
def test_postgres_transient_states(state):
    assert is_transient(postgres_error(state))


@pytest.mark.parametrize("number", [2628, 2627, 8152, 102])
@pytest.mark.parametrize("driver", ["pyodbc", "mssql-python"])
def test_permanent_error_quoting_trigger_words_stays_permanent(number, driver):
    """SQL Server's 2628 and 2627 quote the row's values; the value here is full of trigger words."""
    make = sqlserver_pyodbc if driver == "pyodbc" else sqlserver_mssql_python
    text = (f"String or binary data would be truncated in table 'images.dbo.ImageMetadata', column 'Title'. "
            f"Truncated value: '{TRIGGER_WORDS}'.")
    exc = make("22001" if number in (2628, 8152) else "23000" if number == 2627 else "42000", number, text)
    assert not is_transient(exc)
    assert diagnose(exc).native == number


def test_the_same_value_would_have_been_retried_by_words():
    """Negative control: the old rule (words anywhere in the message) says transient for it."""
    exc = sqlserver_pyodbc("22001", 2628, f"Truncated value: '{TRIGGER_WORDS}'.")
    words = ("timeout", "connection", "database is locked")
    assert any(w in " ".join(map(str, exc.args)).lower() for w in words)


def test_tls_certificate_and_login_failures_are_not_transient():
    login = sqlserver_pyodbc("28000", 18456, "Login failed for user '<token-identified principal>'.")
    assert diagnose(login).kind == classify.LOGIN and not is_transient(login)
    assert diagnose(postgres_error("28P01")).kind == classify.LOGIN


def test_unknown_and_foreign_errors():
    assert diagnose(ValueError("timeout")) is None and not is_transient(ValueError("connection timeout"))
    assert diagnose(sqlserver_pyodbc("42000", 99999)).kind == classify.PERMANENT


def test_real_sqlite_busy_is_transient_by_its_result_code(tmp_path):
    cs = f"Driver={{SQLite3}};Database={tmp_path / 'busy.db'};Timeout=50;"
    holder = pyodbc.connect(cs, autocommit=True)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    other = pyodbc.connect(cs, autocommit=True)
    with pytest.raises(pyodbc.Error) as caught:
        other.execute("BEGIN IMMEDIATE")
    holder.execute("ROLLBACK")
    found = diagnose(caught.value)
    assert found.kind == TRANSIENT and found.native == 5, caught.value.args


def test_real_postgres_errors(postgres_cs):
    """Through psqlODBC: a terminated backend (57P01) is transient; a value too long (22001) whose
    text is full of trigger words is permanent; a serialization failure (40001) is transient."""
    admin = pyodbc.connect(postgres_cs, autocommit=True)
    admin.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(5))")
    admin.execute("INSERT INTO t VALUES (1, 'a')")
    with pytest.raises(pyodbc.Error) as too_long:
        admin.execute("INSERT INTO t VALUES (2, ?)", TRIGGER_WORDS)
    assert diagnose(too_long.value).sqlstate == "22001" and not is_transient(too_long.value)

    a = pyodbc.connect(postgres_cs, autocommit=False)
    b = pyodbc.connect(postgres_cs, autocommit=False)
    for c in (a, b):
        c.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
        c.execute("SELECT v FROM t WHERE id = 1").fetchall()
    a.execute("UPDATE t SET v = 'x' WHERE id = 1")
    done = threading.Event()
    errors: list[BaseException] = []

    def second() -> None:
        try:
            b.execute("UPDATE t SET v = 'y' WHERE id = 1")
        except pyodbc.Error as exc:
            errors.append(exc)
        done.set()

    thread = threading.Thread(target=second)
    thread.start()
    a.commit()
    thread.join(30)
    assert errors and diagnose(errors[0]).sqlstate == "40001" and is_transient(errors[0]), errors
    b.rollback()

    victim = pyodbc.connect(postgres_cs, autocommit=True)
    pid = victim.execute("SELECT pg_backend_pid()").fetchone()[0]
    admin.execute("SELECT pg_terminate_backend(?)", pid)
    with pytest.raises(pyodbc.Error) as gone:
        victim.execute("SELECT 1").fetchall()
    assert is_transient(gone.value), gone.value.args
    for c in (a, b, admin):
        c.close()
