"""Activity: read the blob's head and describe the image (see shared.activities)."""

from typing import Any

from shared.activities import extract_metadata


def main(payload: dict) -> dict[str, Any]:
    return extract_metadata(payload)
