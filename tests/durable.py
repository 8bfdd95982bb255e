"""The real pipeline below the starters, for shared-level tests of events and reconciliation.

Starts go over HTTP through the unchanged ``DurableOrchestrationClient`` to the local client
endpoint; the engine replays the real orchestration (``shared.orchestration``) and runs the
real activity bodies (``shared.activities``) on Azurite and the test's database. Nothing of
a function folder is called.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import azure.durable_functions as df

from devhost.engine import Engine, ManualClock
from shared.activities import extract_metadata, store_metadata
from shared.orchestration import orchestrate

DELAYS = (0.0,)


def pipeline_engine(extract: Any = extract_metadata) -> Engine:
    orchestrators = {"ImageOrchestrator": df.Orchestrator.create(orchestrate)}
    return Engine(":memory:", orchestrators, {"ExtractMetadata": extract, "StoreMetadata": store_metadata},
                  ManualClock())


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
