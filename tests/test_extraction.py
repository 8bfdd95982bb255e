"""Extraction on generated images in every allowed format, and on hostile input."""

from __future__ import annotations

import io
import tracemalloc

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
