"""Settings: what a missing or malformed value says to the user."""

from __future__ import annotations

import pytest

from shared.errors import ConfigurationError
from shared.settings import load_settings, parse_odbc_connection_string, parse_retry_delays

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
