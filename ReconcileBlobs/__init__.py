"""Timer: start every blob version without its final row, mark rows whose blob is gone."""

import logging
import os

import azure.durable_functions as df
import azure.functions as func

from shared.log_context import log_context
from shared.reconcile import reconcile
from shared.settings import (
    INPUT_CONTAINER,
    parse_retry_delays,
    sql_connection_string,
    storage_connection_string,
)


async def main(timer: func.TimerRequest, starter: str) -> None:
    # A pass covers many blobs: each start names its own version (bound by the starter).
    with log_context():
        if timer.past_due:
            logging.info("ReconcileBlobs is running late (past due)")
        report = await reconcile(
            df.DurableOrchestrationClient(starter), container=INPUT_CONTAINER,
            storage_connection=storage_connection_string(), sql_connection=sql_connection_string(),
            retry_delays=parse_retry_delays(os.environ.get("RetryDelaysSeconds")),
        )
        logging.info("ReconcileBlobs: %s", report.to_dict())
