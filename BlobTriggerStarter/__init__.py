"""Blob trigger: start one ImageOrchestrator run per blob version (never reads the body)."""

import logging
import os

import azure.durable_functions as df
import azure.functions as func

from shared.log_context import log_context
from shared.settings import parse_retry_delays, sql_connection_string, storage_connection_string
from shared.starter import ThreadStore, start_for_trigger


async def main(myblob: func.InputStream, starter: str) -> None:
    path = myblob.name or ""
    # BlobTrigger is "<container>/<name>"; the version (ETag, instance id) is bound once read.
    with log_context(blob_name=path.partition("/")[2] or path):
        client = df.DurableOrchestrationClient(starter)
        result = await start_for_trigger(client, storage_connection_string(), path,
                                         parse_retry_delays(os.environ.get("RetryDelaysSeconds")),
                                         store=ThreadStore(sql_connection_string()))
        if result is not None:
            logging.info("BlobTriggerStarter %s: instance %s started=%s", myblob.name, result.instance_id,
                         result.started)
