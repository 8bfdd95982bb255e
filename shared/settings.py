"""App settings, read from the environment (local.settings.json Values locally)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.errors import ConfigurationError

INPUT_CONTAINER = "images-input"
ORCHESTRATOR_NAME = "ImageOrchestrator"
EXTRACT_ACTIVITY = "ExtractMetadata"
STORE_ACTIVITY = "StoreMetadata"
# The reconciliation / re-index singleton's instance id. The status report reads its custom status
# (progress) by this id; the orchestration that starts it must use this same constant.
RECONCILE_INSTANCE_ID = "reconcile-images-input"
RECONCILE_ORCHESTRATOR = "ReconcileOrchestrator"
RECONCILE_ACTIVITY = "ReconcilePage"

# Delays (seconds) between attempts of a transient failure. They add up to over
# three minutes, long enough for a paused serverless Azure SQL database to resume
# (about a minute) with room to spare.
DEFAULT_RETRY_DELAYS = (5.0, 10.0, 20.0, 40.0, 60.0, 60.0)

_SQL_HELP = (
    "Set the app setting SqlConnectionString, e.g. locally "
    "'Driver={SQLite3};Database=/abs/path/images.db;Timeout=2000;' (pyodbc) or on Azure "
    "'Server=tcp:<server>.database.windows.net,1433;Database=<db>;Encrypt=yes;"
    "Authentication=ActiveDirectoryMSI;UID=<identity client id>;' (mssql-python, no Driver)."
)


@dataclass(frozen=True)
class Limits:
    """Safety limits for extraction; exceeding one rejects the blob with its reason."""

    max_pixels: int = 200_000_000
    max_bytes_read: int = 64 * 1024 * 1024
    head_bytes: int = 64 * 1024


@dataclass(frozen=True)
class Settings:
    sql_connection_string: str
    storage_connection_string: StorageTarget
    limits: Limits = field(default_factory=Limits)
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS


def _int_setting(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"App setting {name}={raw!r} is not a whole number.") from None
    if value <= 0:
        raise ConfigurationError(f"App setting {name} must be positive, got {value}.")
    return value


def int_setting(env: Mapping[str, str] | None, name: str, default: int) -> int:
    """A positive whole-number app setting (the environment when ``env`` is None)."""
    return _int_setting(os.environ if env is None else env, name, default)


def parse_retry_delays(raw: str | None) -> tuple[float, ...]:
    """Parse ``RetryDelaysSeconds`` ('5,10,20'); empty means the default schedule."""
    if raw is None or raw.strip() == "":
        return DEFAULT_RETRY_DELAYS
    try:
        delays = tuple(float(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise ConfigurationError(
            f"App setting RetryDelaysSeconds={raw!r} must be comma-separated seconds, e.g. '5,10,20'."
        ) from None
    if any(d < 0 for d in delays):
        raise ConfigurationError("App setting RetryDelaysSeconds must not contain negative delays.")
    return delays


def load_limits(env: Mapping[str, str] | None = None) -> Limits:
    env = os.environ if env is None else env
    return Limits(
        max_pixels=_int_setting(env, "MaxImagePixels", Limits.max_pixels),
        max_bytes_read=_int_setting(env, "MaxBytesRead", Limits.max_bytes_read),
        head_bytes=_int_setting(env, "HeadBytes", Limits.head_bytes),
    )


def sql_connection_string(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    value = env.get("SqlConnectionString", "")
    check_sql_connection_string(value)
    return value


@dataclass(frozen=True)
class StorageIdentity:
    """An identity-based storage connection: the blob endpoint and how to get a token for it.

    Read the way the Functions host reads ``AzureWebJobsStorage__*`` (Microsoft docs, "Azure
    Functions developer guide", Connecting to host storage with an identity, and "Common properties
    for identity-based connections"): ``__blobServiceUri`` (or ``__serviceUri``) or ``__accountName``
    (then ``https://<name>.blob.core.windows.net``); ``__credential=managedidentity`` with an optional
    ``__clientId`` for a user-assigned identity; without ``__credential``, the developer's own
    identity (DefaultAzureCredential), as the host does outside Azure.
    """

    blob_service_uri: str
    credential: str = ""
    client_id: str = ""

    @property
    def managed_identity(self) -> bool:
        return self.credential == "managedidentity"


# Either a storage connection string or an identity-based connection.
StorageTarget = str | StorageIdentity

_STORAGE_HELP = (
    "Locally set AzureWebJobsStorage to 'UseDevelopmentStorage=true' and start Azurite ('make azurite'); "
    "on Azure set AzureWebJobsStorage__accountName=<account> with AzureWebJobsStorage__credential="
    "managedidentity and AzureWebJobsStorage__clientId=<identity client id> (no secret), or "
    "AzureWebJobsStorage to the account's connection string."
)


def storage_connection_string(env: Mapping[str, str] | None = None) -> StorageTarget:
    """The storage holding the images: ``ImagesStorage`` (a connection string, or the identity-based
    ``ImagesStorage__*`` settings) when set, as on Azure where the images have an account of their
    own; otherwise ``AzureWebJobsStorage``, the host's storage (locally, Azurite holds both)."""
    env = os.environ if env is None else env
    if env.get("ImagesStorage", "").strip() or any(k.startswith("ImagesStorage__") for k in env):
        return _storage_target(env, "ImagesStorage")
    return _storage_target(env, "AzureWebJobsStorage")


def host_storage_connection_string(env: Mapping[str, str] | None = None) -> StorageTarget:
    """The Functions host's own storage (``AzureWebJobsStorage``): Event Grid's dead letters live there."""
    return _storage_target(os.environ if env is None else env, "AzureWebJobsStorage")


def _storage_target(env: Mapping[str, str], name: str) -> StorageTarget:
    """A connection string when ``name`` holds a value (it wins, as in the host), else the
    identity-based ``<name>__*`` settings."""
    value = env.get(name, "").strip()
    if value:
        return value
    prefix = name + "__"
    uri = (env.get(prefix + "blobServiceUri") or env.get(prefix + "serviceUri") or "").strip()
    account = env.get(prefix + "accountName", "").strip()
    credential = env.get(prefix + "credential", "").strip().lower()
    client_id = env.get(prefix + "clientId", "").strip()
    if not uri and not account:
        raise ConfigurationError(f"App setting {name} is empty. {_STORAGE_HELP}")
    if account and not re.fullmatch(r"[a-z0-9]{3,24}", account):
        raise ConfigurationError(
            f"App setting {prefix}accountName={account!r} is not a storage account name "
            "(3-24 lower-case letters and digits)."
        )
    if uri and not uri.lower().startswith("https://"):
        raise ConfigurationError(
            f"App setting {prefix}blobServiceUri={uri!r} must be an https:// URL: tokens are "
            "never sent over plain HTTP."
        )
    if credential not in ("", "managedidentity"):
        raise ConfigurationError(
            f"App setting {prefix}credential={credential!r} is not supported; the only value is "
            "'managedidentity' (leave it out to use your own identity locally)."
        )
    if client_id and not credential:
        raise ConfigurationError(
            f"App setting {prefix}clientId is set but {prefix}credential is not: the host uses the "
            f"client id only with {prefix}credential=managedidentity. Add it."
        )
    return StorageIdentity(uri.rstrip("/") or f"https://{account}.blob.core.windows.net",
                           credential, client_id)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    return Settings(
        sql_connection_string=sql_connection_string(env),
        storage_connection_string=storage_connection_string(env),
        limits=load_limits(env),
        retry_delays=parse_retry_delays(env.get("RetryDelaysSeconds")),
    )


_PAIR = re.compile(r"\s*([^=;{}]+?)\s*=\s*(\{(?:[^}]|\}\})*\}|[^;{][^;]*|)\s*(?:;|$)")


def parse_odbc_connection_string(value: str) -> dict[str, str]:
    """Split an ODBC connection string into lower-cased keys and raw values."""
    pairs: dict[str, str] = {}
    pos = 0
    text = value.strip()
    while pos < len(text):
        match = _PAIR.match(text, pos)
        if not match or match.end() == pos:
            raise ConfigurationError(
                f"SqlConnectionString is malformed near {text[pos:pos + 30]!r}. {_SQL_HELP}"
            )
        key, raw = match.group(1), match.group(2).strip()
        if raw.startswith("{") and raw.endswith("}"):
            raw = raw[1:-1].replace("}}", "}")
        pairs[key.lower()] = raw
        pos = match.end()
    return pairs


def check_sql_connection_string(value: str) -> dict[str, str]:
    """Validate the shape (not the reachability) of the connection string."""
    if not value or not value.strip():
        raise ConfigurationError(f"App setting SqlConnectionString is missing or empty. {_SQL_HELP}")
    pairs = parse_odbc_connection_string(value)
    if not {"driver", "dsn", "server", "address", "addr"} & pairs.keys():
        raise ConfigurationError(
            "SqlConnectionString names neither an ODBC Driver (or DSN) for pyodbc nor a Server for "
            f"mssql-python. {_SQL_HELP}"
        )
    return pairs
