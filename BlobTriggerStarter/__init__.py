"""Blob trigger: start one ImageOrchestrator run per blob version (never reads the body)."""

import logging
import os

import azure.durable_functions as df
import azure.functions as func

from shared.settings import parse_retry_delays
from shared.starter import blob_ref_from_trigger, start_for_blob


async def main(myblob: func.InputStream, starter: str) -> None:
    blob = blob_ref_from_trigger(myblob.name or "", myblob.uri, myblob.length, myblob.blob_properties)
    client = df.DurableOrchestrationClient(starter)
    result = await start_for_blob(client, blob, parse_retry_delays(os.environ.get("RetryDelaysSeconds")))
    logging.info("BlobTriggerStarter %s: instance %s started=%s", blob.name, result.instance_id, result.started)
