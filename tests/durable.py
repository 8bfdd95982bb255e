"""The real pipeline below the starters, for shared-level tests of events and reconciliation.

Starts go over HTTP through the unchanged ``DurableOrchestrationClient`` to the local client
endpoint; the engine replays ImageOrchestrator through Microsoft's worker (the ``orchestrators``
fixture) and runs the real activity bodies (``shared.activities``) on Azurite and the test's
database.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import azure.durable_functions as df
from azure.durable_functions.models.utils import http_utils

from devhost.engine import Engine, ManualClock, python_activity
from shared.activities import extract_metadata, store_metadata
from shared.preview_activity import make_preview
from tests.test_starter import client_endpoint

DELAYS = (0.0,)


def pipeline_engine(orchestrators: dict[str, Any], extract: Any = extract_metadata,
                    store: Any = store_metadata, preview: Any = make_preview) -> Engine:
    return Engine(":memory:", orchestrators, {"ExtractMetadata": python_activity(extract),
                                              "MakePreview": python_activity(preview),
                                              "StoreMetadata": python_activity(store)}, ManualClock())


@contextlib.asynccontextmanager
async def counting_client(engine: Engine, client_type: type[CountingClient] | None = None
                          ) -> AsyncIterator[CountingClient]:
    """A client on this event loop; the SDK's module-global HTTP session is closed on the way out
    because each test scenario runs its own loop, and one left by another loop (the worker's, used
    by earlier tests) is set aside on the way in: a session works only on the loop that made it."""
    http_utils._client_session = None
    async with client_endpoint(engine) as binding:
        try:
            yield (client_type or CountingClient)(binding)
        finally:
            await http_utils._close_session()


class CountingClient(df.DurableOrchestrationClient):
    """The SDK client, counting the starts it sends per instance id (what 'started twice' means)."""

    def __init__(self, binding: str) -> None:
        super().__init__(binding)
        self.starts: Counter[str] = Counter()

    async def start_new(self, orchestration_function_name: str, instance_id: str | None = None,
                        client_input: Any = None) -> str:
        result = await super().start_new(orchestration_function_name, instance_id, client_input)
        self.starts[result] += 1
        return result


def max_starts_in_window(times: list[datetime], window: float) -> int:
    """The most starts within any ``window`` seconds (a sliding window over the recorded times)."""
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while (t - times[lo]).total_seconds() > window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best
