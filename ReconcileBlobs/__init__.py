"""Timer: start the singleton reconciliation pass (refused, with a log line, while one runs)."""

import logging

import azure.durable_functions as df
import azure.functions as func

from shared.log_context import log_context
from shared.reconcile_flow import pass_settings, reconcile_input, start_pass
from shared.settings import RECONCILE_INSTANCE_ID


async def main(timer: func.TimerRequest, starter: str) -> None:
    with log_context(instance_id=RECONCILE_INSTANCE_ID):
        if timer.past_due:
            logging.info("ReconcileBlobs is running late (past due)")
        await start_pass(df.DurableOrchestrationClient(starter), reconcile_input(pass_settings()))
