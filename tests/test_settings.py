"""Settings: what a missing or malformed value says to the user."""

from __future__ import annotations

import pytest

from shared.errors import ConfigurationError
from shared.settings import (
    StorageIdentity,
    load_settings,
    parse_odbc_connection_string,
    parse_retry_delays,
    storage_connection_string,
)

GOOD = {"AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "SqlConnectionString": "Driver={SQLite3};Database=/tmp/x.db;"}


def test_loads_defaults_and_overrides():
    settings = load_settings({**GOOD, "MaxImagePixels": "1000", "RetryDelaysSeconds": "1, 2.5"})
    assert settings.limits.max_pixels == 1000
    assert settings.retry_delays == (1.0, 2.5)
    assert sum(load_settings(GOOD).retry_delays) > 60  # outlasts a serverless database resuming


@pytest.mark.parametrize("env, message", [
    ({"AzureWebJobsStorage": "UseDevelopmentStorage=true"}, "SqlConnectionString is missing"),
    ({**GOOD, "AzureWebJobsStorage": ""}, "AzureWebJobsStorage is empty.*Azurite"),
    ({**GOOD, "MaxImagePixels": "lots"}, "MaxImagePixels='lots' is not a whole number"),
    ({**GOOD, "RetryDelaysSeconds": "5,x"}, "comma-separated seconds"),
])
def test_bad_settings_name_the_setting_and_the_fix(env, message):
    with pytest.raises(ConfigurationError, match=message):
        load_settings(env)


def test_odbc_connection_string_parsing_handles_braces():
    pairs = parse_odbc_connection_string(
        "Driver={ODBC Driver 18 for SQL Server};Server=tcp:s.database.windows.net,1433;Pwd={a;b}}c};")
    assert pairs["driver"] == "ODBC Driver 18 for SQL Server"
    assert pairs["pwd"] == "a;b}c"


def test_retry_delays_reject_negative():
    with pytest.raises(ConfigurationError):
        parse_retry_delays("-1")


SQL = {"SqlConnectionString": "Server=tcp:s.database.windows.net,1433;Database=d;Authentication=ActiveDirectoryMSI;"}


@pytest.mark.parametrize("env, expected", [
    ({"AzureWebJobsStorage__accountName": "stimages01", "AzureWebJobsStorage__credential": "managedidentity",
      "AzureWebJobsStorage__clientId": "c1"},
     StorageIdentity("https://stimages01.blob.core.windows.net", "managedidentity", "c1")),
    ({"AzureWebJobsStorage__blobServiceUri": "https://st.blob.core.windows.net/",
      "AzureWebJobsStorage__queueServiceUri": "https://st.queue.core.windows.net/",
      "AzureWebJobsStorage__credential": "ManagedIdentity"},
     StorageIdentity("https://st.blob.core.windows.net", "managedidentity", "")),
    ({"AzureWebJobsStorage__serviceUri": "https://st.blob.core.windows.net"},
     StorageIdentity("https://st.blob.core.windows.net", "", "")),
    # A connection string wins over the __ settings, as in the host.
    ({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "AzureWebJobsStorage__accountName": "x"},
     "UseDevelopmentStorage=true"),
])
def test_identity_based_storage_settings_are_read_as_the_host_reads_them(env, expected):
    assert storage_connection_string(env) == expected
    assert load_settings({**SQL, **env}).storage_connection_string == expected


@pytest.mark.parametrize("env, message", [
    ({"AzureWebJobsStorage__accountName": "Not_An_Account"}, "not a storage account name"),
    ({"AzureWebJobsStorage__blobServiceUri": "http://st.blob.core.windows.net"}, "must be an https://"),
    ({"AzureWebJobsStorage__accountName": "stimages", "AzureWebJobsStorage__credential": "clientsecret"},
     "only value is 'managedidentity'"),
    ({"AzureWebJobsStorage__accountName": "stimages", "AzureWebJobsStorage__clientId": "c1"},
     "credential is not"),
    ({"AzureWebJobsStorage__credential": "managedidentity"}, "AzureWebJobsStorage__accountName=<account>"),
])
def test_bad_identity_settings_name_the_setting_and_the_fix(env, message):
    with pytest.raises(ConfigurationError, match=message):
        storage_connection_string(env)


@pytest.mark.parametrize("value", [
    "Server=tcp:s.database.windows.net,1433;Database=d;Authentication=ActiveDirectoryMSI;UID=c1;",
    "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=5432;Database=d;",
])
def test_sql_connection_string_for_either_driver_is_accepted(value):
    assert load_settings({**GOOD, "SqlConnectionString": value}).sql_connection_string == value
