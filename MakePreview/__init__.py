"""Activity: render the blob version's previews into the preview container (see shared.preview_activity)."""

from typing import Any

from shared.log_context import fields_from_payload, log_context
from shared.preview_activity import make_preview


def main(payload: dict) -> dict[str, Any]:
    with log_context(**fields_from_payload(payload)):
        return make_preview(payload)
