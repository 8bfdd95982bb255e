"""A Bloom filter of BlobKeys: which rows' blobs a listing saw, in about 3.6 MB per million blobs.

Reconciliation lists the container, then pages through the table; to tell which rows have
no blob it must remember what the listing saw without holding the names. A Bloom filter
never answers "not seen" for a key it was given (no false negatives), so a row it calls
unseen is a real candidate (checked against storage before anything is marked); a row of a
gone blob that it wrongly calls seen (probability ``error_rate``) is only left for the next
pass, which uses another random salt. Grows by chaining filters of doubling capacity
(a "scalable Bloom filter", Almeida et al. 2007), so no count is needed up front.
Hand-written (about 40 lines) because no Bloom filter package on PyPI is both well kept and
small enough to be worth a dependency for this.
"""

from __future__ import annotations

import hashlib
import math
import os


class _Bloom:
    def __init__(self, capacity: int, error_rate: float) -> None:
        self.capacity = capacity
        self.bits = _bits(capacity, error_rate)
        self.hashes = max(1, round(self.bits / capacity * math.log(2)))
        self.array = bytearray((self.bits + 7) // 8)
        self.count = 0

    def positions(self, h1: int, h2: int) -> list[int]:
        # Kirsch-Mitzenmacher double hashing: k positions from two hashes.
        return [(h1 + i * h2) % self.bits for i in range(self.hashes)]

    def add(self, h1: int, h2: int) -> None:
        for p in self.positions(h1, h2):
            self.array[p >> 3] |= 1 << (p & 7)
        self.count += 1

    def __contains__(self, hashes: tuple[int, int]) -> bool:
        return all(self.array[p >> 3] & (1 << (p & 7)) for p in self.positions(*hashes))


class KeyFilter:
    """Set-like membership for BlobKeys (hex SHA-256) with a bounded false-positive rate."""

    def __init__(self, capacity: int = 100_000, error_rate: float = 0.001, salt: bytes | None = None) -> None:
        self._salt = salt if salt is not None else os.urandom(16)
        # Each new filter gets half the error budget of the last, so the total stays under error_rate.
        self._error_rate = error_rate / 2
        self._filters = [_Bloom(capacity, self._error_rate)]

    def _hashes(self, key: str) -> tuple[int, int]:
        digest = hashlib.blake2b(key.encode(), key=self._salt, digest_size=16).digest()
        return int.from_bytes(digest[:8], "big"), int.from_bytes(digest[8:], "big") | 1

    def add(self, key: str) -> None:
        last = self._filters[-1]
        if last.count >= last.capacity:
            last = _Bloom(last.capacity * 2, self._error_rate / 2 ** len(self._filters))
            self._filters.append(last)
        last.add(*self._hashes(key))

    def __contains__(self, key: str) -> bool:
        hashes = self._hashes(key)
        return any(hashes in f for f in self._filters)

    @property
    def size_bytes(self) -> int:
        return sum(len(f.array) for f in self._filters)



def _bits(capacity: int, error_rate: float) -> int:
    return max(64, math.ceil(-capacity * math.log(error_rate) / math.log(2) ** 2))


def bytes_for(count: int, capacity: int = 100_000, error_rate: float = 0.001) -> int:
    """The memory a KeyFilter holding ``count`` keys takes (its chain of filters), without building it."""
    total, filters = 0, 0
    while True:
        total += (_bits(capacity, error_rate / 2 / 2 ** filters) + 7) // 8
        count -= capacity
        filters += 1
        if count <= 0:
            return total
        capacity *= 2
