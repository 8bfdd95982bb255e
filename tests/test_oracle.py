"""Extraction agrees with exiftool, the reference, on a corpus with known metadata."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from devhost import samples
from shared.extraction import extract_from_bytes

pytestmark = pytest.mark.skipif(shutil.which("exiftool") is None,
                                reason="exiftool missing: apt-get install libimage-exiftool-perl")

FORMAT_NAMES = {"Extended WEBP": "WEBP", "HEIC": "HEIF", "MPO": "JPEG"}


@pytest.fixture(scope="module")
def corpus_and_oracle(tmp_path_factory) -> tuple[dict[str, bytes], dict[str, dict]]:
    folder: Path = tmp_path_factory.mktemp("oracle")
    corpus = samples.oracle_corpus()
    for name, data in corpus.items():
        (folder / name).write_bytes(data)
    out = subprocess.run(
        ["exiftool", "-json", "-n", "-FileType", "-ImageWidth", "-ImageHeight", "-Orientation", "-Make",
         "-Model", "-DateTimeOriginal", "-OffsetTimeOriginal", "-GPSLatitude", "-GPSLongitude",
         "-GPSAltitude", "-FrameCount", str(folder)],
        check=True, capture_output=True, text=True).stdout
    oracle = {Path(d["SourceFile"]).name: d for d in json.loads(out)}
    return corpus, oracle


def test_corpus_covers_what_the_oracle_must_judge(corpus_and_oracle):
    corpus, oracle = corpus_and_oracle
    assert set(corpus) == set(oracle)
    assert {o.get("Orientation") for o in oracle.values()} >= set(range(1, 9))
    signs = {(o["GPSLatitude"] > 0, o["GPSLongitude"] > 0) for o in oracle.values() if "GPSLatitude" in o}
    assert signs == {(True, True), (True, False), (False, True), (False, False)}
    assert {FORMAT_NAMES.get(o["FileType"], o["FileType"]) for o in oracle.values()} >= {
        "JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP"}


@pytest.mark.parametrize("name", sorted(samples.oracle_corpus()))
def test_fields_agree_with_exiftool(corpus_and_oracle, name):
    corpus, oracle = corpus_and_oracle
    ours, ref = extract_from_bytes(corpus[name]), oracle[name]
    assert FORMAT_NAMES.get(ours.format, ours.format) == FORMAT_NAMES.get(ref["FileType"], ref["FileType"])
    assert (ours.width, ours.height) == (ref["ImageWidth"], ref["ImageHeight"])
    assert ours.orientation == ref.get("Orientation")
    assert ours.camera_make == ref.get("Make") and ours.camera_model == ref.get("Model")
    taken = ref.get("DateTimeOriginal")
    assert ours.captured_at == (taken.replace(":", "-", 2).replace(" ", "T") if taken else None)
    assert ours.captured_at_offset == ref.get("OffsetTimeOriginal")
    for field, key in (("gps_latitude", "GPSLatitude"), ("gps_longitude", "GPSLongitude"),
                       ("gps_altitude", "GPSAltitude")):
        if key in ref:
            assert getattr(ours, field) == pytest.approx(ref[key], abs=1e-6)
        else:
            assert getattr(ours, field) is None
    if "FrameCount" in ref:
        assert ours.frame_count == ref["FrameCount"]


def test_headers_past_the_first_read_cost_extra_reads_only_where_needed(corpus_and_oracle):
    corpus, _ = corpus_and_oracle
    small = [extract_from_bytes(corpus[n]) for n in corpus if n.startswith(("orientation", "gps", "plain"))]
    assert all(m.read_requests == 1 for m in small)
    big = extract_from_bytes(corpus["big-header.jpg"])
    assert big.read_requests > 1 and big.width == 1200
    tail = extract_from_bytes(corpus["dir-at-end.tiff"])
    assert tail.read_requests == 2 and tail.bytes_read < len(corpus["dir-at-end.tiff"])
