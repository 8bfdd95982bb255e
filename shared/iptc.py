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


def _datasets(data: bytes) -> dict[tuple[int, int], Any]:
    """IPTC-IIM datasets (0x1C, record, dataset, 16-bit length) of a block, or of the
    Photoshop IPTC-NAA resource (0x0404) when the block is Photoshop's 8BIM resources."""
    if data.startswith(b"Photoshop 3.0\x00"):
        data = data[14:]
    if data.startswith(b"8BIM"):
        pos, block = 0, b""
        while pos + 12 <= len(data) and data[pos:pos + 4] == b"8BIM":
            rid = int.from_bytes(data[pos + 4:pos + 6], "big")
            name_len = data[pos + 6]
            pos += 6 + ((name_len + 2) & ~1)
            size = int.from_bytes(data[pos:pos + 4], "big")
            if rid == IPTC_NAA:
                block = data[pos + 4:pos + 4 + size]
                break
            pos += 4 + size + (size & 1)
        data = block
    found: dict[tuple[int, int], Any] = {}
    pos = 0
    while pos + 5 <= len(data) and data[pos] == 0x1C:
        key, size = (data[pos + 1], data[pos + 2]), int.from_bytes(data[pos + 3:pos + 5], "big")
        if size & 0x8000:  # extended length: not used by the datasets read here
            break
        value = data[pos + 5:pos + 5 + size]
        pos += 5 + size
        if key in found:
            found[key] = [*(found[key] if isinstance(found[key], list) else [found[key]]), value]
        else:
            found[key] = value
    return found


def read_iptc_data(data: bytes) -> dict[str, Any]:
    """Decoded IPTC values from a bare IIM block or Photoshop resources (PNG text profiles)."""
    return _decoded(_datasets(data))


def read_iptc(im: Image.Image) -> dict[str, Any]:
    """Decoded IPTC values by our key (lists for repeatable datasets); empty when there is none."""
    return _decoded(IptcImagePlugin.getiptcinfo(im) or {})  # type: ignore[arg-type]


def _decoded(info: dict[tuple[int, int], Any]) -> dict[str, Any]:
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
