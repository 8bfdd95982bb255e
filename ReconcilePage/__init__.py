"""Activity: one page of a reconciliation or re-index pass (see shared.reconcile_pages).

It starts ImageOrchestrator instances itself, through its durableClient input binding."""

import os
from typing import Any

import azure.durable_functions as df

from shared.log_context import log_context
from shared.reconcile_pages import Connections, run_step
from shared.settings import (
    INPUT_CONTAINER,
    host_storage_connection_string,
    parse_retry_delays,
    sql_connection_string,
    storage_connection_string,
)


async def main(step: dict, starter: str) -> dict[str, Any]:
    with log_context():
        conn = Connections(images=storage_connection_string(), host=host_storage_connection_string(),
                           sql=sql_connection_string(), container=INPUT_CONTAINER,
                           retry_delays=parse_retry_delays(os.environ.get("RetryDelaysSeconds")))
        return await run_step(df.DurableOrchestrationClient(starter), step, conn)
