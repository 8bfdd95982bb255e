"""IPTC-IIM datasets people search by, through Pillow's IPTC reader.

IPTC text is UTF-8 when record 1:90 (CodedCharacterSet) says ``ESC % G``; otherwise
exiftool reads it as Latin (Windows-1252), and so do we.
"""

from __future__ import annotations

import hashlib
from typing import Any

from PIL import Image, IptcImagePlugin

UTF8_MARKER = b"\x1b%G"
DATASETS: dict[tuple[int, int], str] = {
    (2, 5): "object_name",
    (2, 25): "keywords",
    (2, 55): "date_created",
    (2, 60): "time_created",
    (2, 80): "by_line",
    (2, 116): "copyright_notice",
    (2, 120): "caption",
}
REPEATABLE = {"keywords", "by_line"}
IPTC_NAA, IPTC_DIGEST = 0x0404, 0x0425  # Photoshop image resource ids


def iptc_newer_than_xmp(im: Image.Image) -> bool:
    """True when Photoshop's IPTCDigest exists and differs from the MD5 of the IPTC block: a
    program that does not know XMP edited the IPTC last, so the Metadata Working Group says
    IPTC wins over XMP (exiftool's MWG module reads it the same way)."""
    resources = im.info.get("photoshop")
    if not isinstance(resources, dict):
        return False
    block, digest = resources.get(IPTC_NAA), resources.get(IPTC_DIGEST)
    if not isinstance(block, bytes) or not isinstance(digest, bytes):
        return False
    return hashlib.md5(block, usedforsecurity=False).digest() != digest[:16]


def _decode(raw: bytes, utf8: bool) -> str:
    if utf8:
        return raw.decode("utf-8", "replace")
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_iptc(im: Image.Image) -> dict[str, Any]:
    """Decoded IPTC values by our key (lists for repeatable datasets); empty when there is none."""
    info = IptcImagePlugin.getiptcinfo(im)  # type: ignore[arg-type]
    if not info:
        return {}
    charset = info.get((1, 90))
    utf8 = isinstance(charset, bytes) and charset.startswith(UTF8_MARKER)
    found: dict[str, Any] = {}
    for dataset, key in DATASETS.items():
        raw = info.get(dataset)
        if raw is None:
            continue
        values = raw if isinstance(raw, list) else [raw]
        texts = [_decode(v, utf8) for v in values if isinstance(v, bytes)]
        if texts:
            found[key] = texts if key in REPEATABLE else texts[0]
    return found
