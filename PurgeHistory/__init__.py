"""Timer (hourly): purge finished orchestration history older than HistoryRetentionDays."""

import logging

import azure.durable_functions as df
import azure.functions as func
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus

from shared.retention import PURGED_STATUSES, BlobCursorStore, load_retention_settings, purge_history
from shared.settings import storage_connection_string


async def main(timer: func.TimerRequest, starter: str) -> None:
    report = await purge_history(df.DurableOrchestrationClient(starter),
                                 BlobCursorStore(storage_connection_string()),
                                 [OrchestrationRuntimeStatus(s) for s in PURGED_STATUSES],
                                 settings=load_retention_settings())
    logging.info("PurgeHistory: %s", report.to_dict())
