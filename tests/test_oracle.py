"""Extraction agrees with exiftool, the reference, on a corpus with known metadata."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from bench import oracle as judge
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
         "-GPSAltitude", "-FrameCount", "-Rotation", str(folder)],
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
    if ref["FileType"] in ("HEIC", "AVIF"):  # irot decides (HEIF spec); EXIF's is informational
        assert ours.orientation == judge.AVIF_ROTATION_TO_ORIENTATION[ref.get("Rotation", 0)]
    else:
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


# ---- Descriptive metadata: EXIF text, XMP, IPTC, GPS time, AVIF against exiftool ----------

from shared import extraction  # noqa: E402


@pytest.fixture(scope="module")
def metadata_oracle() -> tuple[dict[str, bytes], dict[str, dict]]:
    corpus = samples.metadata_corpus()
    return corpus, judge.run_exiftool(corpus)


def test_metadata_corpus_exercises_every_feature(metadata_oracle):
    """Each feature the issue names is present in the corpus, as exiftool itself reads it."""
    corpus, tags = metadata_oracle
    assert b"EX-Z75\x00\x00Ab" in corpus["nul-padded.jpg"]
    assert tags["nul-padded.jpg"]["IFD0:Model"] == "EX-Z75"
    assert tags["xmp-zoned.jpg"]["XMP-exif:DateTimeOriginal"].endswith("+02:00")
    assert tags["xmp-unzoned.jpg"]["XMP-exif:DateTimeOriginal"] == "2023:08:12 18:45:10"
    assert tags["iptc-utf8.jpg"]["IPTC:Keywords"] == ["sunrise", "Küste", "sea"]
    assert tags["iptc-utf8.jpg"]["IPTC:Caption-Abstract"].startswith("Sunrise over")
    assert tags["xmp-zoned.jpg"]["XMP-xmp:Rating"] == 5 and tags["xmp-rejected.jpg"]["XMP-xmp:Rating"] == -1
    assert tags["xmp-zoned.jpg"]["XMP-dc:Subject"] == ["wedding", "Beach", "family"]
    assert tags["gps-timestamp.jpg"]["Composite:GPSDateTime"] == "2021:07:14 20:29:58Z"
    assert tags["phone.avif"]["File:FileType"] == "AVIF" and tags["phone.avif"]["IFD0:Make"] == "Google"
    assert tags["iptc-edited-after-xmp.jpg"]["Photoshop:IPTCDigest"] != tags[
        "iptc-edited-after-xmp.jpg"]["File:CurrentIPTCDigest"]


def test_every_field_agrees_with_exiftool(metadata_oracle):
    corpus, tags = metadata_oracle
    table = judge.compare(corpus, tags, judge.DELIBERATE)
    disagreements = {field: row["disagree"] for field, row in table.items() if row["disagree"]}
    assert disagreements == {}
    for field in ("captured_at", "captured_at_offset", "title", "description", "keywords", "rating",
                  "artist", "copyright", "gps_date_time", "camera_model", "software"):
        assert table[field]["with_value"] >= 1, f"no file gives exiftool a {field} to judge"


def test_capture_instant_agrees_with_exiftool_where_exiftool_can_know_it(metadata_oracle, corpus_and_oracle):
    corpus = {**corpus_and_oracle[0], **metadata_oracle[0]}
    tags = {**judge.run_exiftool(corpus_and_oracle[0]), **metadata_oracle[1]}
    checked = 0
    for name, data in corpus.items():
        want = judge.instant_from_exiftool(tags[name])
        if want is not None:
            meta = extract_from_bytes(data)
            assert meta.captured_at_utc == want, name
            checked += 1
    assert checked >= 18


def test_oracle_notices_the_old_nul_joining(metadata_oracle, monkeypatch):
    """Negative control: the extractor that dropped NULs and joined the garbage is caught."""
    corpus, tags = metadata_oracle
    monkeypatch.setattr(extraction, "_exif_bytes",
                        lambda v: v.encode("latin-1").replace(b"\x00", b"") if isinstance(v, str) else None)
    table = judge.compare({"nul-padded.jpg": corpus["nul-padded.jpg"]}, tags)
    assert {d["ours"] for d in table["camera_model"]["disagree"]} == {"EX-Z75Ab"}


def test_xmp_bomb_is_a_recorded_field_failure_not_a_crash(metadata_oracle):
    corpus, _ = metadata_oracle
    meta = extract_from_bytes(corpus["xmp-bomb.jpg"])
    assert (meta.camera_model, meta.width) == ("Bomb", 96)
    assert meta.rating is None
    assert meta.warnings and meta.warnings[0].startswith("xmp: ") and "DTD" in meta.warnings[0]


# ---- Raw photos, odd but valid images, the new fields, against exiftool ---------------------------

from bench.spec_files import odd_corpus, raw_corpus  # noqa: E402
from shared import header_facts, image_open  # noqa: E402


@pytest.fixture(scope="module")
def full_oracle() -> tuple[dict[str, bytes], dict[str, dict]]:
    corpus = {**odd_corpus(), **raw_corpus()}
    return corpus, judge.run_exiftool(corpus)


def test_exiftool_sees_the_corpus_as_built(full_oracle):
    corpus, tags = full_oracle
    assert {tags[f"camera-{f}.{f}"]["File:FileType"] for f in ("dng", "nef", "cr2", "rw2", "orf")} == {
        "DNG", "NEF", "CR2", "RW2", "ORF"}
    assert tags["irot-exif6.heic"]["QuickTime:Rotation"] == 270 and tags["irot-exif6.heic"]["IFD0:Orientation"] == 6
    assert "QuickTime:Rotation" not in tags["exif6-only.heic"]
    assert tags["bigtiff-be.tiff"]["File:FileType"] == "BTF" and corpus["bigtiff-be.tiff"][:4] == b"MM\x00\x2b"
    assert tags["bitfields-4444.bmp"]["File:AlphaMask"] == 0xF000
    assert tags["magick-profiles.png"]["IPTC:By-line"] == "Photographer"
    assert tags["xmp-gps.jpg"]["XMP-exif:GPSLatitude"] == pytest.approx(48.85837, abs=1e-5)


def test_every_field_agrees_with_exiftool_on_raw_and_odd_files(full_oracle):
    corpus, tags = full_oracle
    table = judge.compare(corpus, tags, judge.DELIBERATE)
    assert {f: row["disagree"] for f, row in table.items() if row["disagree"]} == {}
    for field in ("bit_depth", "dpi_x", "animated", "display_width", "gps_altitude", "orientation"):
        assert table[field]["with_value"] >= 5, field
    ours = extract_from_bytes(corpus["magick-profiles.png"])  # the deliberate MWG difference
    assert (ours.artist, ours.copyright) == (tags["magick-profiles.png"]["IPTC:By-line"],
                                             tags["magick-profiles.png"]["IPTC:CopyrightNotice"])


def test_oracle_catches_pillows_invented_dpi(full_oracle, monkeypatch):
    """Negative control: Pillow's own dpi (72 for JPEG with EXIF, 1 for bare TIFF) disagrees."""
    corpus, tags = full_oracle
    monkeypatch.setattr(header_facts, "dpi", lambda im, exif: im.info.get("dpi", (None, None)))
    names = ["no-density.jpg", "no-resolution.tiff"]
    table = judge.compare({n: corpus[n] for n in names}, tags)
    assert {d["file"] for d in table["dpi_x"]["disagree"]} == set(names)


def test_oracle_catches_raws_taken_for_tiffs(full_oracle, monkeypatch):
    """Negative control: without raw detection a NEF is a 160x106 TIFF, and exiftool says so."""
    corpus, tags = full_oracle
    monkeypatch.setattr(image_open.raw_formats, "describe_raw", lambda fp: None)
    table = judge.compare({"camera-nef.nef": corpus["camera-nef.nef"]}, tags)
    assert table["format"]["disagree"] and table["width"]["disagree"][0]["ours"] == 160
    assert table["height"]["disagree"][0]["ours"] == 106


def test_oracle_catches_exif_orientation_applied_to_heic(full_oracle, monkeypatch):
    """Negative control: taking EXIF's orientation in a HEIC without irot disagrees."""
    corpus, tags = full_oracle
    from shared import extraction as ex

    real = ex._apply_heif

    def exif_wins(im, fp, meta):
        depth, sequence = real(im, fp, meta)
        meta.orientation = 6
        return depth, sequence

    monkeypatch.setattr(ex, "_apply_heif", exif_wins)
    table = judge.compare({"exif6-only.heic": corpus["exif6-only.heic"]}, tags)
    assert table["orientation"]["disagree"] and table["display_width"]["disagree"]


def test_oracle_catches_a_crw_or_x3f_rotation_ignored(full_oracle, monkeypatch):
    """Negative control: without the Rotation -> orientation rule, exiftool's Rotation disagrees."""
    from shared import raw_containers

    corpus, tags = full_oracle
    monkeypatch.setattr(raw_containers, "ROTATION_ORIENTATION", {})
    names = ["camera-crw.crw", "camera-x3f-prop.x3f"]
    table = judge.compare({n: corpus[n] for n in names}, tags)
    assert {d["file"] for d in table["orientation"]["disagree"]} == set(names)


def test_oracle_catches_an_auxiliary_track_taken_for_a_sequence(full_oracle, monkeypatch):
    """Negative control: counting the alpha/depth track (auxv) as pictures makes a still animated."""
    from shared import heif_boxes

    corpus, tags = full_oracle
    monkeypatch.setattr(heif_boxes, "SEQUENCE_HANDLERS", {b"pict", b"vide", b"auxv"})
    table = judge.compare({"auxiliary-track.heic": corpus["auxiliary-track.heic"]}, tags)
    assert table["animated"]["disagree"] == [
        {"file": "auxiliary-track.heic", "ours": True, "exiftool": False}]
