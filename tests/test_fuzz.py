"""Hostile input: mutated real images end as a result or a rejection, never anything else."""

from __future__ import annotations

import resource

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devhost import samples
from shared.errors import RejectedInput
from shared.extraction import extract_from_bytes
from shared.settings import Limits

SEEDS = list(samples.oracle_corpus().values()) + list(samples.demo_images().values())
LIMITS = Limits(max_bytes_read=8 * 1024 * 1024)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "int"]))
        if not data:
            break
        pos = draw(st.integers(0, min(len(data) - 1, 4096)))  # headers live near the start
        if kind == "flip":
            data[pos] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[draw(st.integers(0, len(data))):]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[pos:pos + draw(st.integers(1, 64))]
        else:  # a large or negative number where a size or count might sit
            data[pos:pos + 4] = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff",
                                                      b"\x00\x00\x00\x00", b"\x00\x01\x00\x00"]))
    return bytes(data)


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@settings(max_examples=3000, deadline=2000, suppress_health_check=[HealthCheck.too_slow],
          derandomize=True)
@given(mutated())
def test_mutated_images_give_a_result_or_a_rejection(data):
    try:
        meta = extract_from_bytes(data, LIMITS)
    except RejectedInput as exc:
        assert str(exc)
    else:
        assert meta.width and meta.height and meta.width * meta.height <= LIMITS.max_pixels


def test_fuzzing_kept_memory_bounded():
    """Runs after the fuzz test in the same process: the peak stayed far below a decode's cost."""
    assert _max_rss_mb() < 1024
