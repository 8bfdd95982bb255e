"""The ranged reader returns exactly what slicing the bytes would, with few requests."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.ranged_reader import RangedFile, ReadBudgetExceeded

DATA = bytes(range(256)) * 40  # 10,240 bytes


def reader(chunk: int = 1000, budget: int = 1 << 20, first: bool = False) -> tuple[RangedFile, list]:
    calls: list[tuple[int, int]] = []

    def fetch(offset: int, length: int) -> bytes:
        calls.append((offset, length))
        return DATA[offset : offset + length]

    return RangedFile(len(DATA), fetch, chunk_size=chunk, max_bytes=budget,
                      first_chunk=DATA[:chunk] if first else None), calls


@settings(max_examples=300)
@given(st.lists(st.tuples(st.sampled_from([io.SEEK_SET, io.SEEK_CUR, io.SEEK_END]),
                          st.integers(-12_000, 12_000), st.integers(-1, 5000)), max_size=20),
       st.integers(1, 4096))
def test_reads_match_slicing(ops, chunk):
    f, _ = reader(chunk)
    pos = 0
    for whence, offset, size in ops:
        target = {io.SEEK_SET: offset, io.SEEK_CUR: pos + offset, io.SEEK_END: len(DATA) + offset}[whence]
        if target < 0:
            with pytest.raises(OSError):
                f.seek(offset, whence)
            continue
        pos = f.seek(offset, whence)
        expected = DATA[pos:] if size < 0 else DATA[pos : pos + size]
        assert f.read(size) == expected
        pos += len(expected)
        assert f.tell() == pos


def test_missing_runs_are_fetched_in_one_request_and_cached():
    f, calls = reader(chunk=1000, first=True)
    f.seek(500)
    assert f.read(3000) == DATA[500:3500]
    assert calls == [(1000, 3000)]
    f.seek(0)
    f.read(3500)
    assert len(calls) == 1
    assert (f.requests, f.bytes_read) == (2, 4000)


def test_budget_is_enforced_before_fetching():
    f, calls = reader(chunk=1000, budget=2000, first=True)
    f.read(1500)
    with pytest.raises(ReadBudgetExceeded, match="MaxBytesRead"):
        f.read(5000)
    assert calls == [(1000, 1000)]
