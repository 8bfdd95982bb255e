"""Activity: read the blob's head and describe the image (see shared.activities)."""

from typing import Any

from shared.activities import extract_metadata
from shared.log_context import fields_from_payload, log_context


def main(payload: dict) -> dict[str, Any]:
    with log_context(**fields_from_payload(payload)):
        return extract_metadata(payload)
