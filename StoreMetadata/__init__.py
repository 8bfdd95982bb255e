"""Activity: upsert the blob version's row into ImageMetadata (see shared.activities)."""

from typing import Any

from shared.activities import store_metadata
from shared.log_context import fields_from_payload, log_context


def main(payload: dict) -> dict[str, Any]:
    with log_context(**fields_from_payload(payload)):
        return store_metadata(payload)
