"""Error types that carry the one fact the orchestrator needs: retry or not.

Activities never let these escape as exceptions (the Durable host would turn
them into a bare ``Exception`` and lose the type); they report the class as
data instead: ``shared.models.ActivityOutcome``, built by ``shared.activities``.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base class: ``transient`` says whether trying again can help."""

    transient: bool = False


class ConfigurationError(PipelineError):
    """A setting is missing or malformed: fix the app settings, then retry."""


class DriverNotInstalledError(ConfigurationError):
    """The ODBC driver named in the connection string is not installed."""


class StorageUnavailableError(PipelineError):
    """Blob storage could not be reached (Azurite down, network, throttling)."""

    transient = True


class DatabaseUnavailableError(PipelineError):
    """The database is paused, failing over, locked or unreachable."""

    transient = True


class RejectedInput(PipelineError):
    """The blob is not an image we accept; retrying would give the same answer."""
