"""The Bloom filter reconciliation keeps of listed BlobKeys: no false negatives, bounded false positives."""

from __future__ import annotations

import hashlib

from shared.keyfilter import KeyFilter, bytes_for


def keys(prefix: str, n: int) -> list[str]:
    return [hashlib.sha256(f"{prefix}{i}".encode()).hexdigest() for i in range(n)]


def test_every_added_key_is_found_across_growth():
    f = KeyFilter(capacity=5_000)
    added = keys("a", 60_000)  # four chained filters
    for k in added:
        f.add(k)
    assert all(k in f for k in added)


def test_false_positive_rate_stays_under_the_budget():
    f = KeyFilter(capacity=10_000, error_rate=0.001)
    for k in keys("in", 40_000):
        f.add(k)
    others = keys("out", 100_000)
    false_positives = sum(k in f for k in others)
    assert false_positives / len(others) < 0.001
    # Negative control: a filter far too small for its load answers "seen" for most unseen keys.
    tiny = KeyFilter(capacity=10, error_rate=0.5)
    tiny._filters[0].capacity = 10**9  # forbid growth
    for k in keys("in", 5_000):
        tiny.add(k)
    assert sum(k in tiny for k in others[:1000]) > 900


def test_memory_per_million_keys():
    """Sized for a million up front: ~2 MB; grown from the default 100,000: ~3.6 MB (four filters)."""
    assert 1_700_000 < KeyFilter(capacity=1_000_000).size_bytes < 2_300_000
    assert 3_300_000 < bytes_for(1_000_000) < 3_900_000
    grown = KeyFilter(capacity=1_000)
    for k in keys("g", 7_500):  # 1,000 + 2,000 + 4,000 + 8,000
        grown.add(k)
    assert grown.size_bytes == bytes_for(7_500, capacity=1_000)


def test_another_salt_gives_other_false_positives():
    a, b = KeyFilter(capacity=1_000, salt=b"1" * 16), KeyFilter(capacity=1_000, salt=b"2" * 16)
    for k in keys("in", 1_000):
        a.add(k)
        b.add(k)
    probe = keys("out", 200_000)
    fa = {k for k in probe if k in a}
    fb = {k for k in probe if k in b}
    assert fa and fb and len(fa & fb) < len(fa) / 10
