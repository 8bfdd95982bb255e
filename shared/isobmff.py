"""ISO base media file format boxes (ISO/IEC 14496-12, 4.2): HEIF, AVIF and Canon's CR3 are built
of them. A box is a 32-bit size (1: a 64-bit size follows; 0: to the end), a four-letter type,
then its payload."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import IO

MAX_TOP_BOXES = 32


def boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each box in data[start:end]; a box running past
    the end stops the walk."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                return
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield kind, pos + header, pos + size
        pos += size


def top_boxes(fp: IO[bytes], start: int, size: int, kinds: set[bytes]) -> dict[bytes, tuple[int, int]]:
    """(offset, size) of the first box of each wanted type at the top level of a file of `size`
    bytes, from box headers alone: the payloads between are skipped, never read."""
    found: dict[bytes, tuple[int, int]] = {}
    pos = start
    for _ in range(MAX_TOP_BOXES):
        if pos + 8 > size or kinds <= found.keys():
            break
        fp.seek(pos)
        header = fp.read(16)
        if len(header) < 8:
            break
        length, kind = struct.unpack_from(">I4s", header)
        if length == 1 and len(header) == 16:
            length = struct.unpack_from(">Q", header, 8)[0]
        elif length == 0:
            length = size - pos
        if length < 8:
            break
        if kind in kinds:
            found.setdefault(kind, (pos, length))
        pos += length
    return found
