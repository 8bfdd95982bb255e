"""Extraction on generated images in every allowed format, and on hostile input."""

from __future__ import annotations

import io
import tracemalloc
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image

from devhost import samples
from shared.errors import RejectedInput
from shared.extraction import ALLOWED_FORMATS, extract_from_bytes
from shared.settings import Limits

FORMATS = {
    "JPEG": ("RGB", {}), "PNG": ("RGBA", {}), "GIF": ("P", {}), "WEBP": ("RGB", {}),
    "TIFF": ("RGB", {}), "BMP": ("RGB", {}),
}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_allowed_format_gives_size_and_format(fmt):
    mode, options = FORMATS[fmt]
    data = samples.encode(samples.picture((123, 45), mode), fmt, **options)
    meta = extract_from_bytes(data)
    assert (meta.format, meta.width, meta.height) == (fmt, 123, 45)
    assert meta.content_type.startswith("image/")
    assert meta.animated is False and meta.frame_count == 1


def test_heif_through_the_plugin():
    pytest.importorskip("pillow_heif")
    assert "HEIF" in ALLOWED_FORMATS
    data = samples.encode(samples.picture((64, 32)), "HEIF")
    meta = extract_from_bytes(data)
    assert (meta.format, meta.width, meta.height) == ("HEIF", 64, 32)


def test_png_16_bit_depth_and_alpha():
    im = Image.new("I;16", (10, 10))
    meta = extract_from_bytes(samples.encode(im, "PNG"))
    assert meta.bit_depth == 16
    assert extract_from_bytes(samples.encode(samples.picture((8, 8), "RGBA"), "PNG")).has_alpha is True


def test_animated_gif_counts_frames():
    meta = extract_from_bytes(samples.animated_gif(5))
    assert meta.animated is True and meta.frame_count == 5


def test_exif_fields_and_orientation_swap():
    exif = samples.Exif(orientation=6, make="Canon", model="EOS R5", taken="2024:06:01 14:30:05",
                        offset="+02:00", gps=(-33.8567844, -151.2152967, -12.5))
    meta = extract_from_bytes(samples.encode(samples.picture((200, 100)), "JPEG", exif))
    assert (meta.orientation, meta.display_width, meta.display_height) == (6, 100, 200)
    assert (meta.camera_make, meta.camera_model) == ("Canon", "EOS R5")
    assert meta.captured_at == "2024-06-01T14:30:05" and meta.captured_at_offset == "+02:00"
    assert meta.gps_latitude == pytest.approx(-33.8567844, abs=1e-5)
    assert meta.gps_longitude == pytest.approx(-151.2152967, abs=1e-5)
    assert meta.gps_altitude == pytest.approx(-12.5)


def test_bad_exif_values_become_null_not_failures():
    exif = samples.Exif(orientation=9, make="\x01\x02garbage\x7f", taken="2024:13:45 99:99:99",
                        offset="+99:99")
    block = exif.block()
    block.get_ifd(0x8825).update({1: "N", 2: (0, 0, 0), 3: "E", 4: (1, 2, 3)})
    data = io.BytesIO()
    samples.picture((20, 10)).save(data, "JPEG", exif=block)
    meta = extract_from_bytes(data.getvalue())
    assert meta.width == 20
    assert meta.orientation is None and meta.camera_make is None
    assert meta.captured_at is None and meta.captured_at_offset is None


@pytest.mark.parametrize("name", list(samples.hostile_inputs()))
def test_hostile_inputs_are_rejected_with_a_reason(name):
    with pytest.raises(RejectedInput) as info:
        extract_from_bytes(samples.hostile_inputs()[name])
    assert str(info.value)


def test_reasons_say_what_is_wrong():
    inputs = samples.hostile_inputs()
    cases = {"empty.jpg": "empty blob", "notes.jpg": "not a supported image",
             "vector.jpg": "not a supported image", "bomb.png": "over the limit",
             "truncated-header.jpg": "corrupt"}
    for name, text in cases.items():
        with pytest.raises(RejectedInput, match=text):
            extract_from_bytes(inputs[name])


def test_eps_named_jpg_never_reaches_ghostscript(monkeypatch):
    import subprocess

    def refuse(*args, **kwargs):
        raise AssertionError("a subprocess was started")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    with pytest.raises(RejectedInput):
        extract_from_bytes(samples.EPS)


def test_pixel_limit_and_read_budget_are_settings():
    data = samples.encode(samples.picture((100, 100)), "PNG")
    with pytest.raises(RejectedInput, match="MaxImagePixels"):
        extract_from_bytes(data, Limits(max_pixels=5000))
    webp = samples.encode(samples.picture((300, 300)), "WEBP")
    with pytest.raises(RejectedInput, match="MaxBytesRead"):
        extract_from_bytes(webp, Limits(max_bytes_read=len(webp) // 2, head_bytes=1024))


def test_large_jpeg_header_costs_one_small_read_and_no_decode():
    data = samples.encode(samples.picture((4000, 3000)), "JPEG", quality=50)
    tracemalloc.start()
    meta = extract_from_bytes(data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert (meta.width, meta.height) == (4000, 3000)
    assert meta.read_requests == 1 and meta.bytes_read <= 64 * 1024
    assert peak < 4 * 1024 * 1024  # a decode would need 36 MB


# ---- Issue 10: EXIF text, XMP, IPTC, capture instant, places, AVIF --------------------------

import subprocess  # noqa: E402
import sys  # noqa: E402

from shared import capture_time, places  # noqa: E402
from shared.models import EXTRACTOR_VERSION  # noqa: E402
from shared.xmp import XmpError, parse_xmp  # noqa: E402

META = samples.metadata_corpus()


def test_exif_text_ends_at_the_first_nul_and_keeps_utf8_and_latin1():
    meta = extract_from_bytes(META["nul-padded.jpg"])
    assert (meta.camera_make, meta.camera_model) == ("CASIO COMPUTER CO.,LTD.", "EX-Z75")
    assert meta.software == "Ver 1.00"  # garbage after the NUL is not text
    assert meta.description == "Harbour at dusk"
    assert meta.artist == "Zoë Łukasz 東京"  # UTF-8
    assert meta.copyright == "(c) José Muñoz"  # Latin-1 bytes


def test_garbage_exif_text_is_null():
    meta = extract_from_bytes(META["garbage-strings.jpg"])
    assert meta.camera_make == "Nikon"
    assert meta.camera_model is None and meta.artist is None


def test_capture_time_from_xmp_with_and_without_zone():
    zoned = extract_from_bytes(META["xmp-zoned.jpg"])
    assert (zoned.captured_at, zoned.captured_at_offset, zoned.captured_at_source) == (
        "2023-08-12T18:45:10", "+02:00", "xmp")
    assert (zoned.captured_at_utc, zoned.captured_at_utc_source) == ("2023-08-12T16:45:10", "xmp-zone")
    unzoned = extract_from_bytes(META["xmp-unzoned.jpg"])
    assert unzoned.captured_at == "2023-08-12T18:45:10" and unzoned.captured_at_offset is None
    assert unzoned.captured_at_utc is None  # no zone, no GPS: the instant cannot be known
    utc = extract_from_bytes(META["xmp-utc.jpg"])
    assert (utc.captured_at_offset, utc.captured_at_utc) == ("+00:00", "2022-12-31T23:59:59")


def test_exif_time_borrows_the_zone_of_xmps_identical_time():
    meta = extract_from_bytes(META["exif-and-xmp.jpg"])
    assert meta.captured_at_source == "exif+xmp" and meta.captured_at_offset == "+02:00"
    assert meta.captured_at_utc_source == "xmp-zone"
    assert (meta.artist, meta.description, meta.rating) == ("EXIF Artist", "EXIF description", 2)


def test_descriptive_fields_from_xmp():
    meta = extract_from_bytes(META["xmp-zoned.jpg"])
    assert meta.title == "First dance" and meta.description == "Anna & Ben — first dance"
    assert meta.keywords == ["wedding", "Beach", "family"] and meta.rating == 5
    assert (meta.artist, meta.copyright) == ("Jane Doe", "© 2023 Jane Doe")
    assert extract_from_bytes(META["xmp-rejected.jpg"]).rating == -1
    png = extract_from_bytes(META["xmp.png"])
    assert png.keywords == ["scan", "grandma"] and png.captured_at_offset == "-07:00"


def test_descriptive_fields_and_capture_time_from_iptc():
    meta = extract_from_bytes(META["iptc-utf8.jpg"])
    assert meta.keywords == ["sunrise", "Küste", "sea"]
    assert meta.description == "Sunrise over the Baltic — day 1" and meta.title == "Sunrise"
    assert (meta.artist, meta.copyright) == ("Jürgen", "Agency Ltd")
    assert (meta.captured_at, meta.captured_at_offset, meta.captured_at_source) == (
        "2018-07-04T05:30:00", "+02:00", "iptc")
    assert meta.captured_at_utc == "2018-07-04T03:30:00"
    latin = extract_from_bytes(META["iptc-latin1.jpg"])
    assert latin.keywords == ["café"] and latin.description == "Crème brûlée"


def test_iptc_edited_after_xmp_wins_over_xmp():
    assert extract_from_bytes(META["iptc-edited-after-xmp.jpg"]).keywords == ["fresh"]
    assert extract_from_bytes(META["iptc-and-xmp.jpg"]).keywords == ["sea", "holiday"]


def test_instant_from_gps_time_stamp_then_from_gps_position():
    stamped = extract_from_bytes(META["gps-timestamp.jpg"])
    assert stamped.gps_date_time == "2021-07-14T20:29:58"
    assert (stamped.captured_at_utc, stamped.captured_at_utc_source) == ("2021-07-14T20:30:00", "gps-time")
    positioned = extract_from_bytes(META["gps-position.jpg"])
    assert positioned.time_zone == "Europe/Paris"
    assert (positioned.captured_at_utc, positioned.captured_at_utc_source) == (
        "2022-01-15T08:00:00", "gps-position")  # CET in January


def test_time_zone_is_looked_up_only_when_it_decides_the_instant():
    stamped = extract_from_bytes(META["gps-timestamp.jpg"])  # the GPS time decides
    assert stamped.gps_latitude is not None and stamped.time_zone is None
    assert stamped.country == "France"  # places are always looked up
    zoned = extract_from_bytes(samples.encode(samples.picture((8, 8)), "JPEG", samples.Exif(
        taken="2024:01:01 10:00:00", offset="+01:00", gps=samples.PARIS)))
    assert zoned.time_zone is None and zoned.captured_at_utc_source == "exif-offset"


def test_places_from_gps_within_25_km_only():
    paris = extract_from_bytes(META["gps-position.jpg"])
    assert paris.country == "France" and paris.region == "Île-de-France" and paris.city
    sea = extract_from_bytes(META["gps-at-sea.jpg"])
    assert (sea.country, sea.region, sea.city) == (None, None, None)
    assert sea.time_zone and sea.time_zone.startswith("Etc/GMT")


def test_place_distance_rule():
    near = places.place_at(35.6585805, 139.7454329)  # Tokyo Tower
    assert near is not None and near.country == "Japan" and near.distance_km <= 25
    assert places.place_at(0.0, -30.0) is None  # mid-Atlantic


def test_xml_bomb_and_broken_xmp_are_field_failures():
    with pytest.raises(XmpError, match="DTD"):
        parse_xmp(samples.BILLION_LAUGHS.encode() + samples.xmp_packet(rating="5"))
    with pytest.raises(XmpError):
        parse_xmp(b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><unclosed>")
    with pytest.raises(XmpError, match="DTD"):
        parse_xmp(b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>')
    meta = extract_from_bytes(META["xmp-bomb.jpg"])
    assert meta.camera_model == "Bomb" and meta.warnings and "xmp" in meta.warnings[0]


def test_every_row_knows_its_extractor_version():
    assert extract_from_bytes(META["xmp-zoned.jpg"]).extractor_version == EXTRACTOR_VERSION


def test_avif_is_allowed_with_size_mode_exif_and_orientation():
    assert "AVIF" in ALLOWED_FORMATS
    phone = extract_from_bytes(META["phone.avif"])
    assert (phone.format, phone.content_type, phone.width, phone.height) == ("AVIF", "image/avif", 120, 80)
    assert (phone.orientation, phone.display_width, phone.display_height) == (6, 80, 120)
    assert (phone.camera_make, phone.captured_at_offset, phone.keywords) == ("Google", "+01:00", ["avif"])
    plain = extract_from_bytes(META["plain.avif"])
    assert (plain.mode, plain.has_alpha, plain.orientation) == ("RGBA", True, 1)  # no irot/imir: as stored


def test_capture_time_parsing_rules():
    assert capture_time.parse_xmp("2023-08-12") is None  # a date alone is no time of day
    assert capture_time.parse_xmp("2023-08-12T18:45").value.minute == 45
    assert capture_time.parse_xmp("2023-08-12T18:45:10+25:00") is None
    assert capture_time.parse_xmp("2023-02-30T18:45:10") is None
    assert capture_time.parse_iptc("20230812", None) is None
    assert capture_time.parse_iptc("20230812", "184510-0330").offset.total_seconds() == -3.5 * 3600
    summer = capture_time.LocalTime(datetime_(2024, 7, 1, 12, 0), None, "exif")
    berlin = lambda: "Europe/Berlin"  # noqa: E731
    assert capture_time.instant(summer, None, berlin).utc == datetime_(2024, 7, 1, 10, 0)
    # A wall time lost in the spring-forward gap reads with the offset before it (PEP 495, fold=0).
    local = capture_time.LocalTime(datetime_(2024, 3, 31, 2, 30), None, "exif")
    assert capture_time.instant(local, None, berlin).utc == datetime_(2024, 3, 31, 1, 30)
    stale = capture_time.gps_date_time("2024:03:31", (0.0, 7.0, 30.0))
    assert capture_time.instant(local, stale, None) is None  # 2h22m30s apart: no quarter-hour offset


def datetime_(*args: int) -> datetime:
    return datetime(*args)


def test_lookups_stay_out_of_the_cold_path():
    """Importing the extractor and describing an image without GPS loads neither look-up."""
    code = ("import sys; from shared.extraction import extract_from_bytes; from devhost import samples; "
            "extract_from_bytes(samples.metadata_corpus()['xmp-zoned.jpg']); "
            "print(sorted(m for m in ('tzfpy', 'reverse_geocode', 'scipy', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(Path(__file__).resolve().parent.parent))
    assert out.stdout.strip() == "[]"


def test_bounded_place_search_finds_what_the_library_finds():
    """The bounded k-d tree search gives reverse_geocode's own answer wherever that answer is
    within 25 km, across latitudes (equator to Svalbard) and both sides of the meridian."""
    import reverse_geocode

    points = [(48.85, 2.29), (35.65, 139.74), (40.7, -74.0), (-33.86, 151.2), (64.1, -21.9),
              (78.2, 15.6), (0.3, 32.6), (-54.8, -68.3), (60.17, 24.94), (19.43, -99.13)]
    for lat, lon in points:
        ours = places.place_at.__wrapped__(lat, lon)
        theirs = reverse_geocode.get((lat, lon))
        assert ours is not None and ours.city == theirs["city"] and ours.country == theirs["country"]


def test_grid_prefilter_never_hides_a_place_within_25_km():
    """The grid that answers 'nothing near' for sea and empty land is exact: points 20-25 km
    from 3,000 random GeoNames places (all latitudes) are never skipped, and random points
    get the same answer with and without it."""
    import math
    import random

    places.place_at(0.0, 0.0)
    rng = random.Random(7)
    for place in rng.sample(places._geocoder._locations, 3000):
        angle, km = rng.uniform(0, 2 * math.pi), rng.uniform(20, 25)
        lat = place["latitude"] + km / 111.19 * math.sin(angle)
        lon = place["longitude"] + km / (111.19 * math.cos(math.radians(place["latitude"]))) * math.cos(angle)
        lon = (lon + 180) % 360 - 180
        if abs(lat) < 89 and places.distance_km(lat, lon, place["latitude"], place["longitude"]) <= 25:
            assert not places._no_place_near(lat, lon), (lat, lon, place["city"])
    skipped = 0
    for _ in range(3000):
        lat, lon = rng.uniform(-89.9, 89.9), rng.uniform(-180, 180)
        if places._no_place_near(lat, lon):
            skipped += 1
            found = places._nearest(places._geocoder, lat, lon)
            assert found is None or places.distance_km(lat, lon, found["latitude"], found["longitude"]) > 25
    assert skipped > 1500  # most of the planet is far from any place: the grid earns its keep


def test_small_search_gives_the_trees_answer():
    """Where few places are near, a loop replaces the k-d tree query; it must pick exactly the
    place the tree picks (nearest in the tree's degree space, within the same reach)."""
    import math
    import random

    places.place_at(0.0, 0.0)
    geocoder = places._geocoder
    rng = random.Random(3)
    points = [(rng.uniform(-60, 60), rng.uniform(-180, 180)) for _ in range(4000)]
    points += [(p["latitude"] + rng.uniform(-0.2, 0.2), p["longitude"] + rng.uniform(-0.2, 0.2))
               for p in rng.sample(geocoder._locations, 4000)]
    used = 0
    for lat, lon in points:
        reach = places._search_bound(lat)
        small = places._nearest_small(lat, lon, reach)
        if small == -1:
            continue
        used += 1
        distance, index = geocoder._tree.query((lat, lon), k=1, distance_upper_bound=reach)
        tree = None if math.isinf(distance) else int(index)
        if small != tree:  # only a tie may differ
            spot = geocoder._locations
            assert tree is not None and small is not None
            assert (spot[small]["latitude"] - lat) ** 2 + (spot[small]["longitude"] - lon) ** 2 == distance ** 2
    assert used > 4000
