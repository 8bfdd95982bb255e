"""Event Grid trigger: Blob Storage events start the version or record the deletion (no blob bytes)."""

import logging
import os

import azure.durable_functions as df
import azure.functions as func

from shared.events import handle_blob_event
from shared.log_context import fields_from_event, log_context
from shared.settings import (
    INPUT_CONTAINER,
    parse_retry_delays,
    sql_connection_string,
    storage_connection_string,
)


async def main(event: func.EventGridEvent, starter: str) -> None:
    payload = {
        "id": event.id, "topic": event.topic, "subject": event.subject, "eventType": event.event_type,
        "eventTime": event.event_time.isoformat() if event.event_time else None,
        "dataVersion": event.data_version, "data": event.get_json(),
    }
    with log_context(**fields_from_event(payload)):
        outcome = await handle_blob_event(
            payload, df.DurableOrchestrationClient(starter), container=INPUT_CONTAINER,
            storage_connection=storage_connection_string(), sql_connection=sql_connection_string(),
            retry_delays=parse_retry_delays(os.environ.get("RetryDelaysSeconds")),
        )
        logging.info("EventGridStarter %s: %s %s", outcome.event_id, outcome.action, outcome.detail)
