"""Activity: upsert the blob version's row into ImageMetadata (see shared.activities)."""

from typing import Any

from shared.activities import store_metadata


def main(payload: dict) -> dict[str, Any]:
    return store_metadata(payload)
