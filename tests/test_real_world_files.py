"""Raw photos, HEIF orientation, animation, DPI, bit depth, XMP and profiles, odd but valid
images, rejection reasons, text and dates: each as the specification and exiftool read it,
each check shown to catch the old behaviour (negative controls)."""

from __future__ import annotations

import io
import struct
import warnings

import pytest
from PIL import Image, ImageOps, PngImagePlugin

from bench.spec_files import Ifd, _image_tags, camera_exif, corrupt_corpus, odd_corpus, raw_corpus, tiff_bytes
from devhost import samples
from shared import header_facts, heif_boxes, image_open
from shared.errors import RejectedInput
from shared.extraction import ALLOWED_FORMATS, extract_from_bytes, extract_from_ranges
from shared.models import ImageMetadata
from shared.ranged_reader import ReadBudgetExceeded
from shared.settings import Limits
from shared.xmp import XmpError, parse_xmp

ODD = odd_corpus()
RAW = raw_corpus()

# ---- 1. Raw photos -----------------------------------------------------------------------------

RAW_EXPECTED = {  # format, content type, full-size width x height, as exiftool reports them
    "DNG": ("image/x-adobe-dng", 600, 400), "NEF": ("image/x-nikon-nef", 608, 404),
    "NRW": ("image/x-nikon-nrw", 616, 408), "ARW": ("image/x-sony-arw", 624, 412),
    "CR2": ("image/x-canon-cr2", 632, 416), "ORF": ("image/x-olympus-orf", 640, 420),
    "RW2": ("image/x-panasonic-rw2", 648, 424), "PEF": ("image/x-pentax-pef", 656, 428),
    "SRW": ("image/x-samsung-srw", 664, 432), "3FR": ("image/x-hasselblad-3fr", 672, 436),
    "IIQ": ("image/x-raw", 680, 440),
}


@pytest.mark.parametrize("fmt", list(RAW_EXPECTED))
def test_raw_photo_is_named_sized_and_described_from_its_raw_exif(fmt):
    assert fmt in ALLOWED_FORMATS
    data = RAW[f"camera-{fmt.lower()}.{fmt.lower()}"]  # RAF has its own test below
    meta = extract_from_bytes(data)
    content_type, width, height = RAW_EXPECTED[fmt]
    assert (meta.format, meta.content_type, meta.width, meta.height) == (fmt, content_type, width, height)
    assert meta.camera_make and meta.camera_model and meta.captured_at and meta.captured_at_offset == "+02:00"
    assert (meta.exposure_time, meta.f_number, meta.iso, meta.focal_length) == (0.004, 5.6, 400, 35.0)
    assert meta.orientation in (1, 3, 6, 8)
    assert meta.read_requests == 1 and meta.bytes_read <= 64 * 1024  # the directories, not the pixels


def test_raf_is_sized_by_its_raf_directory_with_exif_from_its_preview():
    assert "RAF" in ALLOWED_FORMATS
    meta = extract_from_bytes(RAW["camera-raf.raf"])
    assert (meta.format, meta.content_type, meta.width, meta.height) == ("RAF", "image/x-fujifilm-raf", 6240, 4160)
    assert (meta.orientation, meta.display_width, meta.display_height) == (8, 4160, 6240)
    assert (meta.camera_make, meta.camera_model, meta.captured_at_offset) == ("FUJIFILM", "X-T5", "+09:00")
    assert (meta.exposure_time, meta.iso, meta.country) == (0.004, 400, "Japan")
    # the header and preview's EXIF in the first request, the directory after the preview in a second
    assert meta.read_requests == 2 and meta.bytes_read < len(RAW["camera-raf.raf"])


def test_cr3_is_sized_and_described_from_canons_uuid_box():
    assert "CR3" in ALLOWED_FORMATS
    meta = extract_from_bytes(RAW["camera-cr3.cr3"])
    assert (meta.format, meta.content_type, meta.width, meta.height) == ("CR3", "image/x-canon-cr3", 6000, 4000)
    assert (meta.orientation, meta.display_width, meta.display_height) == (6, 4000, 6000)
    assert (meta.camera_model, meta.captured_at, meta.captured_at_offset) == (
        "Canon EOS R6", "2022-11-12T13:14:15", "-05:00")
    assert (meta.exposure_time, meta.iso, meta.gps_altitude) == (0.004, 400, 10.5)
    assert meta.read_requests == 1


def test_cr3_falls_back_to_its_craw_track_and_rejects_a_cr3_without_a_size():
    from bench.spec_containers import cr3_bytes

    data = cr3_bytes(4000, 3000)
    ifd_sized = data.replace(b"\x00\x01\x04\x00\x01\x00\x00\x00\xa0\x0f", b"\x00\x01\x04\x00\x01\x00\x00\x00\x00\x00")
    assert ifd_sized != data  # CMT1's ImageWidth zeroed: the CRAW entry decides
    assert (extract_from_bytes(ifd_sized).width, extract_from_bytes(ifd_sized).height) == (4000, 3000)
    no_track = ifd_sized.replace(b"CRAW", b"XXXX")
    with pytest.raises(RejectedInput, match="corrupt CR3: CR3 gives no image size"):
        extract_from_bytes(no_track)


def test_mrw_is_sized_by_its_prd_segment_with_exif_from_ttw():
    meta = extract_from_bytes(RAW["camera-mrw.mrw"])
    assert (meta.format, meta.content_type, meta.width, meta.height, meta.bit_depth) == (
        "MRW", "image/x-minolta-mrw", 3016, 2008, 12)
    assert (meta.camera_model, meta.captured_at, meta.exposure_time) == ("DYNAX 7D", "2005-06-07T08:09:10", 0.004)
    broken = RAW["camera-mrw.mrw"].replace(b"\x00PRD", b"\x00XXX")
    with pytest.raises(RejectedInput, match="corrupt MRW: MRW without a PRD"):
        extract_from_bytes(broken)


def test_raf_without_a_size_is_rejected_with_the_reason():
    from bench.spec_containers import raf_bytes

    data = bytearray(raf_bytes())
    struct.pack_into(">I", data, 0x5C, len(data) + 100)  # the directory offset past the end
    with pytest.raises(RejectedInput, match="corrupt RAF: RAF directory"):
        extract_from_bytes(bytes(data))


def test_crw_is_sized_by_its_image_info_with_camera_time_and_exposure_from_its_heaps():
    """CIFF: the root directory at the end of the heap, ImageInfo/TimeStamp/MakeModel/ExposureInfo
    in the heaps inside it; Rotation 90 is EXIF orientation 6 (dcraw's mapping)."""
    assert "CRW" in ALLOWED_FORMATS
    meta = extract_from_bytes(RAW["camera-crw.crw"])
    assert (meta.format, meta.content_type, meta.width, meta.height, meta.bit_depth) == (
        "CRW", "image/x-canon-crw", 3072, 2048, 12)
    assert (meta.orientation, meta.display_width, meta.display_height) == (6, 2048, 3072)
    assert (meta.camera_make, meta.camera_model) == ("Canon", "Canon EOS 10D")
    assert (meta.captured_at, meta.captured_at_offset) == ("2003-11-22T10:20:30", "+01:00")
    assert meta.exposure_time == pytest.approx(1 / 250, rel=1e-6) and meta.f_number == pytest.approx(5.657, abs=1e-3)
    assert meta.focal_length == 50.0
    big_endian = extract_from_bytes(RAW["camera-crw-mm.crw"])
    assert (big_endian.width, big_endian.orientation, big_endian.captured_at_offset) == (2048, 3, "-05:00")


def test_crw_without_image_info_or_with_a_broken_heap_is_rejected_with_the_reason():
    from bench.spec_containers import crw_bytes

    data = crw_bytes()
    no_info = data.replace(struct.pack("<H", 0x1810), struct.pack("<H", 0x1811))
    assert no_info != data
    with pytest.raises(RejectedInput, match=r"corrupt CRW: CRW without an ImageInfo record"):
        extract_from_bytes(no_info)
    broken = data[:-4] + struct.pack("<I", len(data) * 2)  # the root directory's offset past the end
    with pytest.raises(RejectedInput, match="corrupt CRW: CRW heap"):
        extract_from_bytes(broken)


def test_crw_heaps_pointing_at_each_other_are_walked_once():
    """A hostile heap listing itself as its sub-heap many times: each heap is read once."""
    from bench.spec_containers import _ciff_heap

    info = struct.pack("<IIfiIII", 640, 480, 1.0, 0, 12, 12, 1)
    heap = _ciff_heap([(0x1810, info)] + [(0x300A, b"")] * 500)
    length = len(heap)
    table_at = struct.unpack_from("<I", heap, length - 4)[0]
    body = bytearray(heap)
    for i in range(1, 501):  # each sub-heap record: the whole heap again (offset 0, the heap's size)
        struct.pack_into("<II", body, table_at + 2 + 10 * i + 2, length, 0)
    data = b"II" + struct.pack("<I", 26) + b"HEAPCCDR" + struct.pack("<I", 0x00010002) + bytes(8) + bytes(body)
    calls = []
    meta = extract_from_ranges(len(data), lambda o, n: calls.append(n) or data[o:o + n], Limits())
    assert (meta.format, meta.width, meta.height) == ("CRW", 640, 480) and len(calls) == 1


def test_x3f_is_sized_by_its_header_with_exif_from_its_preview_or_its_properties():
    assert "X3F" in ALLOWED_FORMATS
    dp2 = extract_from_bytes(RAW["camera-x3f.x3f"])  # the preview's EXIF, as exiftool prefers it
    assert (dp2.format, dp2.content_type, dp2.width, dp2.height) == ("X3F", "image/x-sigma-x3f", 2640, 1760)
    assert (dp2.orientation, dp2.camera_model, dp2.captured_at, dp2.captured_at_offset) == (
        8, "SIGMA DP2", "2009-12-01T09:08:07", "+01:00")
    assert dp2.gps_latitude == pytest.approx(45.5)
    quattro = extract_from_bytes(RAW["camera-x3f-v4.x3f"])  # version 4: columns and rows at 40
    assert (quattro.width, quattro.height) == (5424, 3616)
    sd10 = extract_from_bytes(RAW["camera-x3f-prop.x3f"])  # no EXIF: the PROP section's values
    assert (sd10.width, sd10.height, sd10.orientation, sd10.camera_make, sd10.camera_model) == (
        2268, 1512, 6, "SIGMA", "SIGMA SD10")
    assert (sd10.captured_at, sd10.exposure_time, sd10.f_number, sd10.iso, sd10.focal_length) == (
        "2004-11-09T11:33:20", 0.004, 5.6, 100, 30.0)


def test_x3f_without_its_directory_is_rejected_with_the_reason():
    data = RAW["camera-x3f-prop.x3f"]
    with pytest.raises(RejectedInput, match="corrupt X3F: X3F directory pointer"):
        extract_from_bytes(data[:-4] + struct.pack("<I", 8))


def test_crw_and_x3f_exposure_agree_with_exiftools_values():
    """exiftool's ShutterSpeedValue/ApertureValue (CRW, from APEX) and PROP's ExposureTime/FNumber."""
    import shutil

    if shutil.which("exiftool") is None:
        pytest.skip("exiftool missing")
    from bench.oracle import run_exiftool

    names = ["camera-crw.crw", "camera-x3f-prop.x3f"]
    tags = run_exiftool({n: RAW[n] for n in names})
    crw, x3f = (extract_from_bytes(RAW[n]) for n in names)
    assert crw.exposure_time == pytest.approx(float(tags[names[0]]["CanonRaw:ShutterSpeedValue"]), rel=1e-9)
    assert crw.f_number == pytest.approx(float(tags[names[0]]["CanonRaw:ApertureValue"]), rel=1e-9)
    assert (x3f.exposure_time, x3f.f_number, x3f.iso) == (
        tags[names[1]]["SigmaRaw:ExposureTime"], tags[names[1]]["SigmaRaw:FNumber"], tags[names[1]]["SigmaRaw:ISO"])


CAMERA_RAW_BYTES = 4 * 1024 * 1024  # raw data of a few MB, as a camera's file holds
READ_BOUND = (3 * 64 * 1024, 2)  # bytes, requests: the head, and a directory at the end or past a preview


@pytest.fixture(scope="module")
def camera_size_raws() -> dict[str, bytes]:
    return raw_corpus(CAMERA_RAW_BYTES)


def _reads(data: bytes) -> tuple[ImageMetadata, list[tuple[int, int]]]:
    calls: list[tuple[int, int]] = []

    def fetch(offset: int, length: int) -> bytes:
        calls.append((offset, length))
        return data[offset:offset + length]

    return extract_from_ranges(len(data), fetch, Limits()), calls


def _within_bound(meta: ImageMetadata) -> bool:
    return meta.bytes_read <= READ_BOUND[0] and meta.read_requests <= READ_BOUND[1]


@pytest.mark.parametrize("name", sorted(raw_corpus()))
def test_raws_of_camera_size_are_read_by_a_bounded_number_of_ranged_requests(camera_size_raws, name):
    data = camera_size_raws[name]
    assert len(data) > CAMERA_RAW_BYTES
    meta, calls = _reads(data)
    assert meta.format in ALLOWED_FORMATS and meta.width and meta.camera_model
    assert (len(calls), sum(n for _, n in calls)) == (meta.read_requests, meta.bytes_read)
    assert _within_bound(meta), (meta.bytes_read, meta.read_requests)


@pytest.mark.parametrize("kind", ["CR3", "CRW", "X3F", "MRW", "ORF"])
def test_the_bound_catches_a_reader_that_reads_the_whole_file(camera_size_raws, monkeypatch, kind):
    """Negative control: the same reader, made to read the file whole first, fails the bound."""
    name = next(n for n in camera_size_raws if n.endswith("." + kind.lower()))
    if kind == "ORF":  # TIFF-based: the raw reader takes the file alone
        real_raw = image_open.raw_formats.describe_raw

        def whole_tiff(fp):
            fp.seek(0)
            fp.read()
            return real_raw(fp)

        monkeypatch.setattr(image_open.raw_formats, "describe_raw", whole_tiff)
    else:
        real = image_open.CONTAINER_READERS[kind]

        def whole_file(fp, size):
            fp.seek(0)
            fp.read()
            return real(fp, size)

        monkeypatch.setitem(image_open.CONTAINER_READERS, kind, whole_file)
    meta, _ = _reads(camera_size_raws[name])
    assert meta.bytes_read == len(camera_size_raws[name]) and not _within_bound(meta)


def test_raw_gps_and_orientation_come_from_the_raw():
    dng = extract_from_bytes(RAW["camera-dng.dng"])
    assert (dng.gps_latitude, dng.gps_longitude, dng.gps_altitude) == (pytest.approx(48.85), pytest.approx(2.29), 30.0)
    nef = extract_from_bytes(RAW["camera-nef.nef"])
    assert (nef.orientation, nef.display_width, nef.display_height) == (6, 404, 608)


def test_dng_is_sized_by_its_raw_subifd_and_displays_its_default_crop():
    """IFD0 is a 256x171 preview: the old extractor's answer, now refused."""
    meta = extract_from_bytes(RAW["camera-dng.dng"])
    assert (meta.width, meta.height) != (256, 171)
    assert (meta.width, meta.height, meta.display_width, meta.display_height) == (600, 400, 584, 388)
    assert (meta.mode, meta.bit_depth) == ("CFA", 16)


def test_nikon_tiff_without_raw_data_stays_a_tiff():
    """Negative control for maker-based naming: a camera's plain RGB TIFF is no NEF."""
    tags, children = camera_exif("NIKON CORPORATION", "NIKON D850")
    ifd0 = Ifd(_image_tags(32, 16), children, data=bytes(32 * 16 * 3))
    ifd0.tags.update(tags)
    meta = extract_from_bytes(tiff_bytes([ifd0]))
    assert (meta.format, meta.width, meta.height, meta.camera_model) == ("TIFF", 32, 16, "NIKON D850")


def test_raw_reads_go_through_fetch_within_the_budget():
    data = RAW["camera-nef.nef"]
    calls = []

    def fetch(offset: int, length: int) -> bytes:
        calls.append((offset, length))
        return data[offset:offset + length]

    meta = extract_from_ranges(len(data), fetch, Limits())
    assert len(calls) == meta.read_requests and sum(n for _, n in calls) == meta.bytes_read
    with pytest.raises(ReadBudgetExceeded):
        extract_from_ranges(len(data), fetch, Limits(head_bytes=256, max_bytes_read=300))


def test_raw_with_a_directory_past_the_end_is_rejected_with_the_reason():
    data = bytearray(RAW["camera-dng.dng"])
    struct.pack_into("<I", data, 4, len(data) + 10)
    with pytest.raises(RejectedInput, match="corrupt"):
        extract_from_bytes(bytes(data))


# ---- 2. HEIF/AVIF orientation ------------------------------------------------------------------

TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
             4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
             6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}


def _marked() -> Image.Image:
    im = Image.new("RGB", (64, 32), "black")
    im.paste((255, 0, 0), (0, 0, 16, 8))
    im.paste((0, 255, 0), (48, 24, 64, 32))
    im.paste((0, 0, 255), (0, 24, 16, 32))
    return im


def _displays_as(heic: bytes, stored: Image.Image, orientation: int) -> bool:
    """libheif's decode (which applies irot/imir) equals the stored picture turned by orientation."""
    shown = Image.open(io.BytesIO(heic)).convert("RGB")
    want = stored.transpose(TRANSPOSE[orientation]) if orientation != 1 else stored
    if shown.size != want.size:
        return False
    diff = sum(abs(a - b) for a, b in zip(shown.tobytes(), want.tobytes(), strict=True))
    return diff / len(want.tobytes()) < 8


@pytest.mark.parametrize("exif_orientation", range(1, 9))
def test_heif_orientation_is_what_libheif_displays(exif_orientation):
    stored = _marked()
    exif = Image.Exif()
    exif[0x0112] = exif_orientation
    out = io.BytesIO()
    stored.save(out, "HEIF", exif=exif.tobytes(), quality=95)  # libheif writes irot/imir from it
    meta = extract_from_bytes(out.getvalue())
    assert (meta.width, meta.height) == (64, 32)  # stored size, as exiftool's ispe
    assert _displays_as(out.getvalue(), stored, meta.orientation)
    others = [o for o in range(1, 9) if o != meta.orientation]
    assert not any(_displays_as(out.getvalue(), stored, o) for o in others)  # the check can fail
    swapped = meta.orientation in (5, 6, 7, 8)
    assert (meta.display_width, meta.display_height) == ((32, 64) if swapped else (64, 32))


def test_iphone_heic_irot_plus_exif_is_not_rotated_twice():
    for ext in ("heic", "avif"):
        meta = extract_from_bytes(ODD[f"irot-exif6.{ext}"])
        assert (meta.width, meta.height, meta.orientation) == (120, 80, 6)
        assert (meta.display_width, meta.display_height) == (80, 120)


def test_tiff_orientation_keeps_the_stored_size():
    """Pillow swaps a TIFF's size for orientations 5-8; the stored size is exiftool's."""
    assert Image.open(io.BytesIO(ODD["orientation-6.tiff"])).size == (80, 120)  # the control
    meta = extract_from_bytes(ODD["orientation-6.tiff"])
    assert (meta.width, meta.height, meta.orientation, meta.display_width, meta.display_height) == (
        120, 80, 6, 80, 120)


def test_heic_exif_orientation_alone_is_informational():
    meta = extract_from_bytes(ODD["exif6-only.heic"])
    assert (meta.orientation, meta.display_width, meta.display_height) == (1, 120, 80)
    assert meta.camera_model == "iPhone 15 Pro"  # the EXIF block is still read


def test_heic_without_transform_has_orientation_1_not_null():
    assert extract_from_bytes(ODD["plain.heic"]).orientation == 1


def test_imir_mirrors_and_the_2017_axis_reading_would_be_wrong():
    assert extract_from_bytes(ODD["imir-2.heic"]).orientation == 2
    assert heif_boxes.orientation_of([("imir", 1)]) == 2 and heif_boxes.orientation_of([("imir", 0)]) == 4
    assert heif_boxes.orientation_of([("irot", 3)]) == 6 and heif_boxes.orientation_of([("irot", 1)]) == 8


def test_clean_aperture_gives_the_pictures_size():
    meta = extract_from_bytes(samples.encode(samples.picture((64, 32)), "HEIF"))  # libheif pads to 64x64
    assert (meta.width, meta.height) == (64, 32)


# ---- 3. Animated only for animation --------------------------------------------------------------

def test_animated_only_for_animation_and_frame_count_counts_pictures():
    for name in ("animated.png", "animated.webp"):
        assert (extract_from_bytes(ODD[name]).animated, extract_from_bytes(ODD[name]).frame_count) == (True, 3)
    assert extract_from_bytes(samples.animated_gif(4)).animated is True
    mpo = extract_from_bytes(ODD["depth-map.mpo.jpg"])
    assert (mpo.animated, mpo.frame_count) == (False, 2)
    pages = extract_from_bytes(ODD["three-pages.tiff"])
    assert (pages.animated, pages.frame_count) == (False, 3)
    assert Image.open(io.BytesIO(ODD["three-pages.tiff"])).is_animated  # what Pillow (and we) said


@pytest.mark.parametrize("name,animated,frames", [
    ("sequence.avif", True, 4), ("sequence.heic", True, 5), ("sequence-no-brand.heic", True, 3),
    ("auxiliary-track.heic", False, 1), ("three-items.heic", False, 3), ("alpha-auxiliary.heic", False, 1),
    ("alpha-auxiliary.avif", False, 1), ("plain.heic", False, 1),
])
def test_heif_and_avif_are_animated_only_with_an_image_sequence_track(name, animated, frames):
    meta = extract_from_bytes(ODD[name])
    assert (meta.animated, meta.frame_count) == (animated, frames)


def test_sequence_frames_are_the_tracks_samples_not_the_items():
    """Negative controls: pillow-heif counts items (1 for a still + sequence, 3 for a burst of
    stills), and the msf1 brand is there on a file whose only track is an auxiliary one."""
    assert Image.open(io.BytesIO(ODD["sequence.heic"])).n_frames == 1
    assert Image.open(io.BytesIO(ODD["three-items.heic"])).n_frames == 3
    assert Image.open(io.BytesIO(ODD["sequence.avif"])).n_frames == 4  # libavif agrees with the track
    assert b"msf1" in ODD["auxiliary-track.heic"][:40]
    assert heif_boxes.read_heif_info(io.BytesIO(ODD["auxiliary-track.heic"])).sequence is False
    data = ODD["sequence.heic"]
    brand_only = data[:data.rindex(b"moov") - 4]  # msf1 promised, no track: libheif refuses it
    assert b"msf1" in brand_only[:40]
    with pytest.raises(RejectedInput, match="corrupt HEIF: SyntaxError: Invalid input: No 'moov' box"):
        extract_from_bytes(brand_only)  # libheif's own reason, not "does not recognise its header"
    for name in ("alpha-auxiliary.heic", "alpha-auxiliary.avif"):  # they do hold an auxiliary image
        assert b"auxC" in ODD[name] and extract_from_bytes(ODD[name]).has_alpha


# ---- 4. DPI only where recorded ----------------------------------------------------------------------

@pytest.mark.parametrize("name,want", [
    ("no-density.jpg", (None, None)), ("jfif-300.jpg", (300.0, 300.0)), ("exif-240.jpg", (240.0, 240.0)),
    ("exif-cm.webp", (299.72, 299.72)), ("exif-dpi.heic", (299.72, 299.72)), ("phys.png", (150.01, 150.01)),
    ("no-resolution.tiff", (None, None)), ("x-resolution-only.tiff", (300.0, None)),
])
def test_dpi_only_where_the_file_records_it(name, want):
    meta = extract_from_bytes(ODD[name])
    assert (meta.dpi_x, meta.dpi_y) == want


def test_pillows_invented_defaults_are_what_we_refuse():
    """Negative control: Pillow reports 72 and (1, 1) for files that record no resolution."""
    assert Image.open(io.BytesIO(ODD["no-density.jpg"])).info.get("dpi") == (72, 72)
    assert Image.open(io.BytesIO(ODD["no-resolution.tiff"])).info.get("dpi") == (1, 1)


# ---- 5. BitDepth per sample, palette index bits --------------------------------------------------

@pytest.mark.parametrize("name,bits", [
    ("palette-1bit.bmp", 1), ("palette-4bit.bmp", 4), ("palette-8bit.bmp", 8), ("core-header-8bit.bmp", 8),
    ("bitfields-565.bmp", 6), ("bitfields-555.bmp", 5), ("bitfields-4444.bmp", 4), ("bitfields-8888.bmp", 8),
    ("bitfields-101010.bmp", 10), ("rgb-16bit.bmp", 5), ("palette-4bit.gif", 4), ("float32-rgb.tiff", 32),
])
def test_bit_depth_per_sample(name, bits):
    assert extract_from_bytes(ODD[name]).bit_depth == bits


def test_gif_index_bits_follow_the_colour_table():
    gif = bytearray(ODD["palette-4bit.gif"])
    assert extract_from_bytes(bytes(gif)).bit_depth == (gif[10] & 7) + 1
    gif[10] = (gif[10] & 0xF8) | 0  # a 2-entry global table claimed: 1 bit
    assert header_facts._gif_index_bits(io.BytesIO(bytes(gif))) == 1


# ---- 6. XMP and profiles ---------------------------------------------------------------------------

def test_xmp_packet_with_trailing_junk_is_read():
    meta = extract_from_bytes(ODD["xmp-junk.jpg"])
    assert meta.description == "kept despite the junk" and meta.keywords == ["junk after packet"]
    assert meta.captured_at == "2019-09-09T09:09:09" and meta.rating == 4 and not meta.warnings
    packet = samples.xmp_packet(rating="1") + b"\x00junk</x>"
    assert parse_xmp(packet)["rating"] == "1"
    from xml.etree.ElementTree import ParseError

    from defusedxml import ElementTree

    with pytest.raises(ParseError):  # negative control: the whole packet is not XML
        ElementTree.fromstring(packet.rstrip(b"\x00 "))
    with pytest.raises(XmpError):  # junk before the end marker still makes a broken packet
        parse_xmp(samples.xmp_packet(rating="1").replace(b"</rdf:RDF>", b"</rdf:RDF><junk"))


def test_xmp_in_gif_is_read():
    meta = extract_from_bytes(ODD["xmp.gif"])
    assert (meta.title, meta.keywords, meta.rating) == ("GIF with XMP", ["gif"], 2)
    assert extract_from_bytes(samples.encode(samples.picture((9, 9)).convert("P"), "GIF")).keywords is None


def test_gps_only_in_xmp_is_used_and_exif_gps_wins_when_both_exist():
    meta = extract_from_bytes(ODD["xmp-gps.jpg"])
    assert (meta.gps_latitude, meta.gps_longitude, meta.gps_altitude) == (
        pytest.approx(48.85837, abs=1e-5), pytest.approx(2.294482, abs=1e-5), 35.1)
    assert meta.country == "France"
    both = samples.encode(samples.picture((9, 9)), "JPEG", samples.Exif(gps=samples.HEMISPHERES["ne"]),
                          xmp=samples.xmp_packet().replace(b'rdf:about=""', b'rdf:about="" exif:GPSLatitude="1,0N" '
                                                           b'exif:GPSLongitude="1,0E"'))
    assert extract_from_bytes(both).gps_latitude == pytest.approx(35.6585805, abs=1e-5)


def test_png_text_chunk_profiles_are_decoded_without_touching_pixels(monkeypatch):
    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", lambda self: pytest.fail("decoded pixels"))
    meta = extract_from_bytes(ODD["magick-profiles.png"])
    assert (meta.camera_model, meta.captured_at, meta.captured_at_offset) == ("EOS 80D", "2020-02-02T02:02:02", "+03:00")
    assert (meta.title, meta.keywords, meta.rating) == ("Converted by ImageMagick", ["magick"], 3)
    assert (meta.artist, meta.copyright, meta.icc_profile) == ("Photographer", "IPTC copyright", "sRGB built-in")


def test_a_truncated_raw_profile_is_ignored():
    from bench.spec_files import raw_profile
    from shared.embedded_profiles import decode_raw_profile

    text = raw_profile("exif", b"Exif\x00\x00MM\x00*")
    assert decode_raw_profile(text) == b"Exif\x00\x00MM\x00*"
    assert decode_raw_profile(text[:-6]) is None and decode_raw_profile("\nexif\nabc\n00") is None


# ---- 7. Valid oddities accepted; corrupt images rejected ------------------------------------------

@pytest.mark.parametrize("name,mode,alpha", [
    ("bitfields-565.bmp", "RGB", False), ("bitfields-4444.bmp", "RGBA", True),
    ("bitfields-101010.bmp", "RGB", False), ("bitfields-8888.bmp", "RGBA", True),
])
def test_bmp_bit_field_layouts(name, mode, alpha):
    meta = extract_from_bytes(ODD[name])
    assert (meta.format, meta.width, meta.height, meta.mode, meta.has_alpha) == ("BMP", 30, 20, mode, alpha)


@pytest.mark.parametrize("name,mode,bits", [
    ("bigtiff-be.tiff", "RGB", 8), ("logluv.tiff", "LogLuv", 16), ("float32-rgb.tiff", "RGBF", 32),
    ("bitfields-4444.bmp", "RGBA", 4), ("bitfields-101010.bmp", "RGB", 10),
])
def test_layouts_pillow_refuses_are_described_from_their_headers(name, mode, bits):
    with pytest.raises((OSError, SyntaxError)), warnings.catch_warnings():  # negative control
        warnings.simplefilter("ignore")
        Image.open(io.BytesIO(ODD[name])).load()
    meta = extract_from_bytes(ODD[name])
    assert (meta.mode, meta.bit_depth, meta.width, meta.height) == (mode, bits, 30, 20)


def test_bigtiff_in_both_byte_orders_reads_its_resolution():
    for name in ("bigtiff-be.tiff", "bigtiff-le.tiff"):
        meta = extract_from_bytes(ODD[name])
        assert (meta.format, meta.dpi_x, meta.dpi_y) == ("TIFF", 72.0, 72.0)


def test_png_with_a_bad_ancillary_crc_is_processed_with_a_warning():
    for name, chunk in (("bad-crc-text.png", "tEXt"), ("bad-crc-srgb.png", "sRGB")):
        meta = extract_from_bytes(ODD[name])
        assert (meta.width, meta.height) == (120, 80)
        assert meta.warnings and chunk in meta.warnings[0] and meta.warnings[0].startswith("png: bad CRC")


REASONS = {
    "bad-crc-ihdr.png": "corrupt PNG: SyntaxError: broken PNG file (bad header checksum in b'IHDR')",
    "bad-crc-plte.png": "corrupt PNG: SyntaxError: broken PNG file (bad header checksum in b'PLTE')",
    "truncated-ihdr.png": "corrupt PNG: ",
    "ifd-past-end.tiff": "corrupt TIFF: ",
    "bitfields-overlap.bmp": "corrupt BMP: OSError: Unsupported BMP bitfields layout; bit-field masks",
    "truncated.gif": "corrupt GIF: ",
}


# ---- 8. Reasons that say what is wrong ---------------------------------------------------------------

@pytest.mark.parametrize("name", list(REASONS))
def test_corrupt_images_are_rejected_with_the_decoders_reason(name):
    with pytest.raises(RejectedInput) as info:
        extract_from_bytes(corrupt_corpus()[name])
    assert str(info.value).startswith(REASONS[name])
    assert "none of" not in str(info.value)


def test_the_generic_reason_is_for_unrecognised_content_only():
    with pytest.raises(RejectedInput, match="none of JPEG, PNG"):
        extract_from_bytes(b"This is a text file, not an image.\n" * 4)
    assert image_open.sniff(b"This is a text") is None


# ---- 9. Text and dates -------------------------------------------------------------------------------

def test_multi_line_description_is_kept_and_garbage_still_is_not():
    assert extract_from_bytes(ODD["multi-line.jpg"]).description == "First line\nSecond line\r\nThird\tline"
    garbage = samples.Exif(make="Canon").block()
    garbage[0x010E] = "bell\x07 in text"
    out = io.BytesIO()
    samples.picture((9, 9)).save(out, "JPEG", exif=garbage)
    assert extract_from_bytes(out.getvalue()).description is None


@pytest.mark.parametrize("name,local", [("year-1.jpg", "0001-01-01T00:00:00"),
                                         ("year-9999.jpg", "9999-12-31T23:59:59")])
def test_impossible_instant_is_null_with_a_warning_and_the_image_is_processed(name, local):
    meta = extract_from_bytes(ODD[name])
    assert meta.captured_at == local and meta.captured_at_utc is None
    assert meta.warnings and meta.warnings[0].startswith("captured_at_utc: ImpossibleInstant")
    fine = extract_from_bytes(samples.encode(samples.picture((9, 9)), "JPEG", samples.Exif(
        taken="0001:01:01 00:00:00", offset="-01:00")))  # negative control: this one exists
    assert fine.captured_at_utc == "0001-01-01T01:00:00" and not fine.warnings


def test_everything_odd_is_processed_and_every_transpose_check_is_real():
    """Every odd-but-valid file gives a row; ImageOps agrees with our transpose table."""
    for name, data in ODD.items():
        assert extract_from_bytes(data).width, name
    im = _marked()
    for orientation, method in TRANSPOSE.items():
        exif = im.getexif()
        exif[0x0112] = orientation
        im.info["exif"] = exif.tobytes()
        assert ImageOps.exif_transpose(im).tobytes() == im.transpose(method).tobytes()
