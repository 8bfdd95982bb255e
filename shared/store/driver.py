"""Opening a connection: which driver the connection string asks for, and the usual failures
turned into the fix to apply.

Two DB-API drivers: Microsoft's ``mssql-python`` (its wheel bundles the SQL Server driver, so it
works on any Linux image, Flex Consumption included) when the string names a ``Server`` and no
``Driver``; pyodbc with the ODBC driver it names otherwise (SQLite, PostgreSQL, or SQL Server
through ODBC Driver 18). The dialect comes from the live connection (``SQL_DBMS_NAME``).
"""

from __future__ import annotations

import re
from typing import Any

try:
    import pyodbc
except ImportError:  # the azd hook's environment has mssql-python only
    pyodbc = None

from shared.errors import ConfigurationError, DatabaseUnavailableError, DriverNotInstalledError
from shared.settings import check_sql_connection_string
from shared.store.classify import LOGIN, diagnose, error_types, is_transient
from shared.store.dialects import DIALECTS, Dialect, TSqlDialect

PYODBC = "pyodbc"
MSSQL_PYTHON = "mssql-python"

# Keywords the ODBC driver manager or pyodbc understand but mssql-python refuses
# (its parser allows only ODBC Driver 18's own keywords, and sets Driver itself).
_MSSQL_PYTHON_TIMEOUT_KEYS = ("connection timeout", "connect timeout", "timeout", "login timeout")

_MSSQL_PYTHON_HELP = (
    "For Azure SQL without an ODBC driver in the OS image (Flex Consumption), leave Driver out: "
    "'Server=tcp:<server>.database.windows.net,1433;Database=<db>;Encrypt=yes;"
    "Authentication=ActiveDirectoryMSI;UID=<identity client id>;' uses mssql-python, whose wheel "
    "bundles Microsoft's driver."
)

# How mssql-python reports a driver it cannot load (ddbc_bindings: the native library or one of its
# OS dependencies missing); retrying cannot help, so it must not look like a lost connection.
_DRIVER_LOAD_FAILURES = ("failed to load the driver", "odbc driver binaries are missing")
_DRIVER_LOAD_HELP = (
    "mssql-python could not load its bundled SQL Server driver ({exc}). Reinstall it "
    "('pip install --force-reinstall mssql-python mssql-python-odbc'); on Debian/Ubuntu it also needs "
    "'apt-get install libltdl7 libkrb5-3 libgssapi-krb5-2'. Or name an installed ODBC driver with Driver={{...}}."
)
_TOKEN_HELP = (
    "could not get an Entra ID token for the database: {exc}. Check that the function app has the "
    "user-assigned managed identity and that UID in SqlConnectionString is its client id."
)
_LOGIN_HELP = (
    "the database refused the login ({exc}). Check UID/PWD (or, with a managed identity, that "
    "`azd provision` created its database user: scripts/azd_hooks.py grant-sql), then retry."
)
# At connect time the driver's message holds no row values, so its TLS wording may be read: a
# certificate the client does not trust never clears up by waiting.
_TLS_SIGNS = ("certificate verify failed", "ssl provider", "certificate chain", "ssl error", "tls")
_TLS_HELP = (
    "the TLS handshake with the database failed ({exc}). For Azure SQL keep Encrypt=yes and "
    "TrustServerCertificate=no and check the server name; for a local server with a self-signed "
    "certificate, trust it (or set sslmode for PostgreSQL), then retry."
)


def _redact(connection_string: str) -> str:
    return re.sub(r"(?i)(pwd|password|accountkey)\s*=\s*[^;]*", r"\1=***", connection_string)


def driver_for(connection_string: str) -> str:
    """pyodbc when the string names an ODBC Driver or DSN; mssql-python when it names only a Server."""
    pairs = check_sql_connection_string(connection_string)
    if "driver" in pairs or "dsn" in pairs:
        return PYODBC
    return MSSQL_PYTHON


def _connect_pyodbc(connection_string: str, driver: str | None, timeout: int) -> Any:
    if pyodbc is None:
        raise DriverNotInstalledError("pyodbc is not installed: 'pip install pyodbc' (it is in requirements.txt)")
    if driver and driver not in pyodbc.drivers():
        installed = ", ".join(pyodbc.drivers()) or "none"
        raise DriverNotInstalledError(
            f"ODBC driver {driver!r} named in SqlConnectionString is not installed (installed: "
            f"{installed}). Locally: 'sudo apt-get install unixodbc libsqliteodbc' for SQLite3, "
            "'odbc-postgresql' for PostgreSQL; for SQL Server install 'ODBC Driver 18 for SQL "
            f"Server' (msodbcsql18). {_MSSQL_PYTHON_HELP}"
        )
    try:
        return pyodbc.connect(connection_string, autocommit=False, timeout=timeout)
    except pyodbc.InterfaceError as exc:
        raise ConfigurationError(
            f"ODBC could not use SqlConnectionString ({_redact(connection_string)}): {exc}"
        ) from None


def _load_mssql_python() -> Any:
    """Import mssql-python, turning a missing package or OS library into the fix to apply."""
    try:
        import mssql_python
    except ImportError as exc:
        raise DriverNotInstalledError(
            "SqlConnectionString names no ODBC Driver, so it needs Microsoft's mssql-python "
            f"driver, which cannot be loaded ({exc}). Add 'mssql-python' to requirements.txt; on "
            "Debian/Ubuntu it also needs 'apt-get install libltdl7 libkrb5-3 libgssapi-krb5-2'. "
            "Or name an installed ODBC driver with Driver={...}."
        ) from None
    return mssql_python


def _connect_mssql_python(connection_string: str, pairs: dict[str, str], timeout: int) -> Any:
    timeout_keys = [k for k in pairs if k in _MSSQL_PYTHON_TIMEOUT_KEYS]
    if timeout_keys:
        raise ConfigurationError(
            f"SqlConnectionString sets {', '.join(timeout_keys)!s}, which mssql-python does not accept "
            "(the app sets the login timeout itself): remove it."
        )
    mssql_python = _load_mssql_python()
    try:
        return mssql_python.connect(connection_string, autocommit=False, timeout=timeout)
    except mssql_python.ConnectionStringParseError as exc:
        raise ConfigurationError(
            f"mssql-python refused SqlConnectionString ({_redact(connection_string)}): "
            f"{'; '.join(exc.errors)}. {_MSSQL_PYTHON_HELP}"
        ) from None
    except RuntimeError as exc:
        if any(sign in str(exc).lower() for sign in _DRIVER_LOAD_FAILURES):
            raise DriverNotInstalledError(_DRIVER_LOAD_HELP.format(exc=exc)) from None
        # mssql-python reports a failed Entra ID token request (no managed identity, wrong
        # client id) as RuntimeError; retrying does not help until the setting is fixed.
        raise ConfigurationError(_TOKEN_HELP.format(exc=exc)) from None


def connect(connection_string: str, timeout: int = 30) -> Any:
    """Open a connection with the driver the string asks for, explaining the usual failures."""
    pairs = check_sql_connection_string(connection_string)
    use_odbc = driver_for(connection_string) == PYODBC
    try:
        if use_odbc:
            return _connect_pyodbc(connection_string, pairs.get("driver"), timeout)
        return _connect_mssql_python(connection_string, pairs, timeout)
    except error_types() as exc:
        text = str(exc).lower()
        if any(sign in text for sign in _DRIVER_LOAD_FAILURES):
            raise DriverNotInstalledError(_DRIVER_LOAD_HELP.format(exc=exc)) from None
        if "access token" in text:
            raise ConfigurationError(_TOKEN_HELP.format(exc=exc)) from None
        found = diagnose(exc)
        if found is not None and found.kind == LOGIN:
            raise ConfigurationError(_LOGIN_HELP.format(exc=exc)) from None
        if any(sign in text for sign in _TLS_SIGNS):
            raise ConfigurationError(_TLS_HELP.format(exc=exc)) from None
        if is_transient(exc):
            raise DatabaseUnavailableError(f"database is unavailable: {exc}") from None
        raise ConfigurationError(
            f"could not open the database named by SqlConnectionString "
            f"({_redact(connection_string)}): {exc}"
        ) from None


def dialect_for(conn: Any) -> Dialect:
    if pyodbc is None or not isinstance(conn, pyodbc.Connection):
        return TSqlDialect()  # mssql-python speaks only to SQL Server and Azure SQL
    dbms = str(conn.getinfo(pyodbc.SQL_DBMS_NAME)).strip().lower()
    for prefix, cls in DIALECTS.items():
        if dbms.startswith(prefix):
            return cls()
    raise ConfigurationError(
        f"database engine {dbms!r} is not supported; use Azure SQL / SQL Server, PostgreSQL or SQLite"
    )
