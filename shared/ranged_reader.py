"""A seekable, read-only file over ranged reads, fetching only what is asked for.

Pillow parses headers through many small ``read``/``seek`` calls; over HTTP each
would be a request. This object serves them from fixed-size chunks, fetches any
missing run of chunks in one request, and refuses to read past a byte budget so
a hostile file cannot make us download gigabytes.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from shared.errors import RejectedInput

Fetch = Callable[[int, int], bytes]


class ReadBudgetExceeded(RejectedInput):
    """Reading this image's metadata would need more bytes than allowed."""


class RangedFile(io.RawIOBase):
    def __init__(
        self,
        size: int,
        fetch: Fetch,
        *,
        chunk_size: int = 64 * 1024,
        max_bytes: int = 64 * 1024 * 1024,
        first_chunk: bytes | None = None,
    ) -> None:
        super().__init__()
        self.size = size
        self._fetch = fetch
        self._chunk = chunk_size
        self._max_bytes = max_bytes
        self._chunks: dict[int, bytes] = {}
        self._pos = 0
        self.bytes_read = 0
        self.requests = 0
        if first_chunk is not None:
            self.bytes_read = len(first_chunk)
            self.requests = 1
            for i in range(0, len(first_chunk), chunk_size):
                self._chunks[i // chunk_size] = first_chunk[i : i + chunk_size]

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self.size + offset
        else:
            raise ValueError(f"bad whence {whence}")
        if pos < 0:
            raise OSError("negative seek position")
        self._pos = pos
        return pos

    def _ensure(self, first: int, last: int) -> None:
        """Fetch chunks first..last that are not cached, one request per missing run."""
        index = first
        while index <= last:
            if index in self._chunks:
                index += 1
                continue
            run_end = index
            while run_end + 1 <= last and run_end + 1 not in self._chunks:
                run_end += 1
            start = index * self._chunk
            length = min((run_end + 1) * self._chunk, self.size) - start
            if self.bytes_read + length > self._max_bytes:
                raise ReadBudgetExceeded(
                    f"reading this image's metadata needs more than {self._max_bytes} bytes "
                    "(MaxBytesRead); raise the limit to accept it"
                )
            data = self._fetch(start, length)
            self.requests += 1
            self.bytes_read += len(data)
            for i in range(index, run_end + 1):
                off = (i - index) * self._chunk
                self._chunks[i] = data[off : off + self._chunk]
            index = run_end + 1

    def read(self, size: int = -1) -> bytes:
        pos = self._pos
        if pos >= self.size:
            return b""
        end = self.size if size is None or size < 0 else min(self.size, pos + size)
        if end <= pos:
            return b""
        first, last = pos // self._chunk, (end - 1) // self._chunk
        if first == last and first in self._chunks:  # the common case: Pillow's small header reads
            base = first * self._chunk
            data = self._chunks[first][pos - base : end - base]
            self._pos = pos + len(data)
            return data
        self._ensure(first, last)
        parts = []
        for i in range(first, last + 1):
            chunk = self._chunks[i]
            lo = max(self._pos - i * self._chunk, 0)
            hi = min(end - i * self._chunk, len(chunk))
            parts.append(chunk[lo:hi])
        data = b"".join(parts)
        self._pos += len(data)
        return data

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        return self.read(-1)
