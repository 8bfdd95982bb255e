"""Hostile input: mutated real images end as a result or a rejection, never anything else."""

from __future__ import annotations

import resource

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.spec_files import corrupt_corpus, odd_corpus, raw_corpus
from devhost import samples
from shared.errors import RejectedInput
from shared.extraction import extract_from_bytes
from shared.settings import Limits

SEEDS = (list(samples.oracle_corpus().values()) + list(samples.demo_images().values())
         + list(samples.metadata_corpus().values()) + list(odd_corpus().values())
         + list(raw_corpus().values()) + list(corrupt_corpus().values()))
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


JPEG = samples.encode(samples.picture((32, 24)), "JPEG")
# XML 1.0 allows no control characters but tab and newlines, nor U+FFFE/U+FFFF (category Cn).
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn")), max_size=80)


def _described(data: bytes):
    try:
        return extract_from_bytes(data, LIMITS)
    except RejectedInput as exc:
        assert str(exc)
        return None


@settings(max_examples=400, deadline=2000, derandomize=True)
@given(title=TEXT, subjects=st.lists(TEXT, max_size=6), rating=st.one_of(TEXT, st.integers(-9, 9).map(str)),
       taken=TEXT)
def test_xmp_fields_of_any_text_round_trip_or_become_null(title, subjects, rating, taken):
    """Whatever text an XMP field holds, the image is described and the field is either that
    text (stripped) or NULL; nothing else leaks in."""
    packet = samples.xmp_packet(title=title or None, subjects=subjects or None, rating=rating, taken=taken)
    meta = _described(samples.encode(samples.picture((16, 12)), "JPEG", xmp=packet))
    assert meta is not None and meta.width == 16
    if meta.title is not None:
        assert meta.title == title.strip()[:512] and meta.title.isprintable()
    assert meta.rating is None or -1 <= meta.rating <= 5
    assert all(k.strip() == k and k in {s.strip() for s in subjects} for k in meta.keywords or [])
    assert meta.warnings is None  # our own well-formed packets always parse


@settings(max_examples=400, deadline=2000, derandomize=True)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_as_xmp_give_a_result_or_a_warning(packet):
    meta = _described(samples.encode(samples.picture((16, 12)), "JPEG", xmp=b"<?xpacket " + packet))
    assert meta is not None and meta.width == 16


@settings(max_examples=400, deadline=2000, derandomize=True)
@given(st.lists(st.tuples(st.integers(1, 2), st.integers(0, 255), st.binary(max_size=120)), max_size=12),
       st.booleans())
def test_arbitrary_iptc_datasets_give_a_result(datasets, utf8):
    meta = _described(samples.with_app13(JPEG, samples.iptc_block(datasets, utf8=utf8)))
    assert meta is not None and meta.width == 32
    for keyword in meta.keywords or []:
        assert keyword and keyword.isprintable()


def test_fuzzing_kept_memory_bounded():
    """Runs after the fuzz test in the same process: the peak stayed far below a decode's cost."""
    assert _max_rss_mb() < 1024
