"""The 64-bit perceptual hash as the database holds it, and its split into indexed bands.

A near-duplicate search by Hamming distance cannot use an ordinary index on the whole hash. The
hash is therefore split into ``BANDS`` bands of ``BAND_BITS`` bits, each in its own indexed
column. If two hashes differ in at most d bits, at least one band differs in at most
floor(d / BANDS) bits (pigeonhole), so probing every band with each value within Hamming radius
r of the image's own band finds every hash within ``BANDS * (r + 1) - 1`` bits: r = 0 (exact band
equality) finds d <= 3, r = 1 (17 values a band) d <= 7, r = 2 (137 values a band) d <= 11.
The exact distance then decides (popcount of the XOR). The split is written once, here, and used
by the store (the band columns), the queries (shared.duplicates) and the tests.
"""

from __future__ import annotations

from itertools import combinations

HASH_BITS = 64
BANDS = 4
BAND_BITS = HASH_BITS // BANDS
_MASK = (1 << BAND_BITS) - 1


def to_signed(value: int) -> int:
    """An unsigned 64-bit hash as the signed BIGINT every engine stores (two's complement)."""
    if not 0 <= value < 1 << HASH_BITS:
        raise ValueError(f"a {HASH_BITS}-bit hash is 0 .. 2**{HASH_BITS} - 1, not {value}")
    return value - (1 << HASH_BITS) if value >= 1 << (HASH_BITS - 1) else value


def to_unsigned(value: int) -> int:
    """The signed BIGINT back to the unsigned hash."""
    if not -(1 << (HASH_BITS - 1)) <= value < 1 << (HASH_BITS - 1):
        raise ValueError(f"a signed {HASH_BITS}-bit value is -2**63 .. 2**63 - 1, not {value}")
    return value & ((1 << HASH_BITS) - 1)


def bands(signed_hash: int | None) -> tuple[int, ...] | None:
    """The hash's bands, lowest bits first, each 0 .. 2**BAND_BITS - 1 (None for no hash)."""
    if signed_hash is None:
        return None
    value = to_unsigned(signed_hash)
    return tuple((value >> (BAND_BITS * i)) & _MASK for i in range(BANDS))


def band(signed_hash: int | None, index: int) -> int | None:
    split = bands(signed_hash)
    return None if split is None else split[index]


def hamming(a: int, b: int) -> int:
    """Bits that differ between two hashes (signed or unsigned alike)."""
    return ((a ^ b) & ((1 << HASH_BITS) - 1)).bit_count()


def within_radius(value: int, radius: int) -> list[int]:
    """Every band value within Hamming ``radius`` of ``value``, the value itself first."""
    found = [value]
    for r in range(1, radius + 1):
        for bits in combinations(range(BAND_BITS), r):
            flipped = value
            for bit in bits:
                flipped ^= 1 << bit
            found.append(flipped)
    return found


def radius_for(distance: int) -> int:
    """The smallest band radius whose probe is guaranteed to find every hash within ``distance``."""
    if distance < 0:
        raise ValueError(f"a Hamming distance is 0 or more, not {distance}")
    return distance // BANDS


def guaranteed(radius: int) -> int:
    """The largest distance a probe of every band at ``radius`` is sure to find."""
    return BANDS * (radius + 1) - 1
