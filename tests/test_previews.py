"""Preview rendering on images built for each case: the picture that comes out is checked
pixel by pixel against what the input means (orientation, colour, alpha, frames), and each
check is shown to catch the broken variant it guards against."""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess

import pytest
from PIL import Image, ImageOps

import shared.image_open  # noqa: F401 - registers the HEIF opener
from bench.spec_containers import cr3_bytes, raf_bytes, x3f_bytes
from bench.spec_files import SHORT, Ifd, _heif, tiff_bytes
from devhost import samples
from shared import previews
from shared.previews import NoPreview, PreviewOptions, render_previews
from tests.icc_profiles import (
    ADOBE_RGB,
    DISPLAY_P3,
    GAMMA_ADOBE,
    GAMMA_P3,
    cmyk_profile,
    expected_cmyk,
    expected_srgb,
    matrix_profile,
)

OPTIONS = PreviewOptions(sizes=(64, 256))
RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 200, 0)


def marked(size=(400, 200)) -> Image.Image:
    """Blue with a red block in the top-left corner: every orientation puts it somewhere else."""
    im = Image.new("RGB", size, BLUE)
    im.paste(RED, (0, 0, size[0] // 4, size[1] // 4))
    return im


def decoded(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def big(rendering) -> Image.Image:
    return decoded(rendering.previews[-1].data)


def near(a, b, tolerance: int = 8) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=False))


def red_corner(im: Image.Image) -> str:
    """Which corner of the picture is red."""
    w, h = im.size
    rgb = im.convert("RGB")
    corners = {"top-left": (2, 2), "top-right": (w - 3, 2), "bottom-left": (2, h - 3),
               "bottom-right": (w - 3, h - 3)}
    [corner] = [k for k, xy in corners.items() if near(rgb.getpixel(xy), RED, 60)]
    return corner


# ---- orientation -------------------------------------------------------------------------------

@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_exif_defines_it(orientation):
    data = samples.encode(marked(), "JPEG", samples.Exif(orientation=orientation), quality=95)
    out = big(render_previews(data, OPTIONS))
    reference = ImageOps.exif_transpose(decoded(data))  # Pillow's own reading of tag 0x0112
    assert out.size == (256 * reference.width // max(reference.size), 256 * reference.height // max(reference.size))
    assert red_corner(out) == red_corner(reference)


def test_orientation_check_catches_a_renderer_that_ignores_it(monkeypatch):
    data = samples.encode(marked(), "JPEG", samples.Exif(orientation=6), quality=95)
    monkeypatch.setattr(previews, "_orientation", lambda im: 1)
    out = big(render_previews(data, OPTIONS))
    assert out.size == (256, 128) and red_corner(out) == "top-left"  # not upright: the check above fails


def test_heif_rotation_is_applied_once():
    # irot written by libheif from EXIF orientation 6 (as iPhones do, EXIF keeping 6 too).
    data = _heif(marked(), "HEIF", 6, True)
    out = big(render_previews(data, OPTIONS))
    assert out.size == (128, 256)
    assert red_corner(out) == "top-right"


def test_heif_rotation_check_catches_a_second_rotation(monkeypatch):
    data = _heif(marked(), "HEIF", 6, True)
    monkeypatch.setattr(previews, "_orientation", lambda im: 6)  # EXIF applied on top of irot
    out = big(render_previews(data, OPTIONS))
    assert out.size == (256, 128)


# ---- colour ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,colorants,gamma", [("Display P3", DISPLAY_P3, GAMMA_P3),
                                                   ("Adobe RGB (1998)", ADOBE_RGB, GAMMA_ADOBE)])
def test_wide_gamut_rgb_goes_to_srgb_through_its_profile(name, colorants, gamma):
    colour = (200, 100, 100)
    data = samples.encode(Image.new("RGB", (300, 200), colour), "PNG",
                          icc_profile=matrix_profile(name, colorants, gamma))
    got = big(render_previews(data, OPTIONS)).convert("RGB").getpixel((100, 60))
    want = expected_srgb(colour, colorants, gamma)
    assert near(got, want, 3), (got, want)
    assert not near(colour, want, 3)  # the check would catch a preview left in the wide gamut


def test_cmyk_jpeg_goes_to_srgb_through_its_profile():
    inks = [(255, 0, 0, 0), (0, 255, 0, 0), (0, 0, 255, 0), (0, 0, 0, 200)]
    im = Image.new("CMYK", (400, 100))
    for i, ink in enumerate(inks):
        im.paste(ink, (i * 100, 0, i * 100 + 100, 100))
    data = samples.encode(im, "JPEG", quality=95, icc_profile=cmyk_profile())
    out = big(render_previews(data, OPTIONS)).convert("RGB")
    for i, ink in enumerate(inks):
        got = out.getpixel((i * 64 + 32, 32))
        assert near(got, expected_cmyk(ink), 12), (ink, got, expected_cmyk(ink))
        naive = Image.new("CMYK", (1, 1), ink).convert("RGB").getpixel((0, 0))
        assert not near(naive, expected_cmyk(ink), 12)  # the check catches Pillow's naive conversion


def test_an_unusable_profile_is_a_warning_not_a_failure():
    data = samples.encode(Image.new("RGB", (100, 100), RED), "PNG", icc_profile=b"not a profile at all" * 10)
    rendering = render_previews(data, OPTIONS)
    assert rendering.warnings and "ICC profile is unusable" in rendering.warnings[0]
    assert near(big(rendering).convert("RGB").getpixel((10, 10)), RED, 8)


def test_sixteen_bit_png_keeps_its_tones():
    gradient = Image.linear_gradient("L").resize((256, 256))
    wide = Image.frombytes("I;16", (256, 256), bytes(b for v in gradient.tobytes() for b in struct.pack("<H", v * 257)))
    out = big(render_previews(samples.encode(wide, "PNG"), OPTIONS)).convert("L")
    for y in (10, 128, 245):
        assert abs(out.getpixel((128, y)) - gradient.getpixel((128, y))) <= 3
    assert Image.open(io.BytesIO(samples.encode(wide, "PNG"))).mode == "I;16"
    # a clipping conversion (I;16 -> I -> L) would turn every value above 255 white: caught above
    assert wide.convert("I").convert("L").getpixel((128, 128)) == 255


# ---- palette, alpha, frames --------------------------------------------------------------------

def test_palette_transparency_and_alpha_are_kept_in_webp():
    palette = Image.new("P", (200, 100), 0)
    palette.putpalette([*RED, *BLUE] + [0] * 762)
    palette.paste(1, (100, 0, 200, 100))
    data = samples.encode(palette, "PNG", transparency=1)
    out = big(render_previews(data, OPTIONS))
    assert out.mode == "RGBA"
    assert out.getpixel((20, 20))[3] == 255 and near(out.getpixel((20, 20))[:3], RED)
    assert out.size == (200, 100) and out.getpixel((170, 50))[3] == 0
    half = Image.new("RGBA", (200, 100), (*GREEN, 128))
    out = big(render_previews(samples.encode(half, "PNG"), OPTIONS))
    assert abs(out.getpixel((100, 50))[3] - 128) <= 2


def test_alpha_is_flattened_on_white_for_jpeg_previews():
    clear = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    out = big(render_previews(samples.encode(clear, "PNG"), PreviewOptions(sizes=(64, 256), output="jpeg")))
    assert out.format == "JPEG" and near(out.getpixel((50, 50)), (255, 255, 255))


def _frames(fmt: str) -> bytes:
    frames = [Image.new("RGB", (120, 80), c) for c in (RED, BLUE, GREEN)]
    out = io.BytesIO()
    frames[0].save(out, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_the_first_frame_of_an_animation(fmt):
    data = _frames(fmt)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3
    out = big(render_previews(data, OPTIONS))
    assert near(out.convert("RGB").getpixel((60, 40)), RED, 12)
    last = Image.open(io.BytesIO(data))
    last.seek(2)
    assert not near(last.convert("RGB").getpixel((60, 40)), RED, 12)  # frames differ: the check means something


def test_a_heic_thumbnail_large_enough_replaces_the_full_decode_and_is_upright():
    data = _heif(marked((2000, 1000)), "HEIF", 6, True, thumbnails=[300])
    small = render_previews(data, PreviewOptions(sizes=(128, 256)))
    assert {p.source for p in small.previews} == {"embedded-picture"}
    assert big(small).size == (128, 256) and red_corner(big(small)) == "top-right"
    large = render_previews(data, PreviewOptions(sizes=(128, 512)))  # 300 px does not cover 512
    assert {p.source for p in large.previews} == {"picture"} and red_corner(big(large)) == "top-right"


def test_heic_is_previewed():
    data = _heif(Image.new("RGB", (600, 400), GREEN), "HEIF", None, True)
    rendering = render_previews(data, OPTIONS)
    assert [(p.width, p.height) for p in rendering.previews] == [(64, 43), (256, 171)]
    assert near(big(rendering).convert("RGB").getpixel((100, 80)), GREEN, 12)


# ---- embedded pictures ------------------------------------------------------------------------

def nef_with_jpeg_preview(orientation: int) -> bytes:
    """A NEF laid out as Nikon's: IFD0 a small thumbnail, SubIFDs the JPEG preview and the raw."""
    jpeg = samples.encode(marked((1200, 800)), "JPEG", quality=90)
    preview = Ifd({0x0100: (4, 1200), 0x0101: (4, 800), 0x0103: (SHORT, 6), 0x00FE: (4, 1)}, data=jpeg)
    raw = Ifd({0x0100: (4, 6000), 0x0101: (4, 4000), 0x0103: (SHORT, 34713), 0x0106: (SHORT, 32803),
               0x0102: (SHORT, 14), 0x00FE: (4, 0)}, data=bytes(4096))
    ifd0 = Ifd({0x010F: (2, "NIKON CORPORATION"), 0x0110: (2, "NIKON Z 6"), 0x0112: (SHORT, orientation),
                0x0100: (4, 160), 0x0101: (4, 120), 0x0103: (SHORT, 1), 0x0106: (SHORT, 2),
                0x0115: (SHORT, 3), 0x0102: (SHORT, (8, 8, 8)), 0x00FE: (4, 1)},
               children={0x014A: [preview, raw]}, data=bytes(160 * 120 * 3))
    return tiff_bytes([ifd0])


def test_a_raw_photo_is_previewed_from_its_embedded_jpeg_upright():
    rendering = render_previews(nef_with_jpeg_preview(orientation=8), OPTIONS)
    assert {p.source for p in rendering.previews} == {"embedded-picture"}
    out = big(rendering)
    assert out.size == (171, 256)
    assert red_corner(out) == "bottom-left"  # orientation 8 (rotate 90 CCW) taken from the raw's IFD0
    upright = big(render_previews(nef_with_jpeg_preview(orientation=1), OPTIONS))
    assert upright.size == (256, 171) and red_corner(upright) == "top-left"  # negative control


def test_a_raf_is_previewed_from_its_jpeg_and_a_raw_without_one_is_recorded():
    out = big(render_previews(raf_bytes(), OPTIONS))
    assert out.size == (170, 256)  # the RAF's JPEG says orientation 8
    bare = nef_with_jpeg_preview(1).replace(b"\x03\x01\x03\x00\x01\x00\x00\x00\x06", b"\x03\x01\x03\x00\x01\x00\x00\x00\x05")
    with pytest.raises(NoPreview, match="raw photo"):
        render_previews(bare.replace(b"\x06\x01\x03\x00\x01\x00\x00\x00\x02", b"\x06\x01\x03\x00\x01\x00\x00\x00\x05"),
                        OPTIONS)


def test_a_cr3_is_previewed_from_its_prvw_jpeg_turned_by_its_cmt1_orientation():
    """The PRVW JPEG (640 x 426 here) turned by CMT1's Orientation 6; negative controls: the same
    file with Orientation 1 stays landscape, and one whose PRVW box is renamed has no preview."""
    data = cr3_bytes()
    out = big(render_previews(data, OPTIONS))
    assert out.size == (170, 256)
    patterns = [(b"\x12\x01\x03\x00\x01\x00\x00\x00\x06\x00", b"\x12\x01\x03\x00\x01\x00\x00\x00\x01\x00"),
                (b"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06", b"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x01")]
    upright = next(data.replace(a, b, 1) for a, b in patterns if a in data)
    assert big(render_previews(upright, OPTIONS)).size == (256, 170)
    with pytest.raises(NoPreview, match="PRVW"):
        render_previews(data.replace(b"PRVW", b"XXXX"), OPTIONS)


@pytest.mark.parametrize("version", [0x00020003, 0x00040000], ids=["x3f-2.3", "x3f-4"])
def test_an_x3f_is_previewed_from_its_jpeg_section_turned_by_the_header_rotation(version):
    """The IMA2 JPEG (640 x 426) turned by the header's rotation (270: orientation 8); negative
    controls: rotation 0 stays landscape, a file without the JPEG section has no preview."""
    jpeg = samples.encode(samples.noise((640, 426)), "JPEG", quality=85)
    assert big(render_previews(x3f_bytes(jpeg=jpeg, version=version), OPTIONS)).size == (170, 256)
    assert big(render_previews(x3f_bytes(jpeg=jpeg, rotation=0, version=version), OPTIONS)).size == (256, 170)
    with pytest.raises(NoPreview, match="X3F without a readable JPEG"):
        render_previews(x3f_bytes(version=version), OPTIONS)


def exif_with_thumbnail(thumb: bytes, orientation: int = 1) -> bytes:
    """An EXIF APP1 payload: IFD0 (Orientation) and IFD1 pointing at a JPEG thumbnail."""
    ifd0_at, ifd1_at = 8, 8 + 2 + 12 + 4
    data_at = ifd1_at + 2 + 24 + 4
    tiff = (b"II*\x00" + struct.pack("<I", ifd0_at)
            + struct.pack("<HHHIHH", 1, 0x0112, 3, 1, orientation, 0) + struct.pack("<I", ifd1_at)
            + struct.pack("<H", 2) + struct.pack("<HHII", 0x0201, 4, 1, data_at)
            + struct.pack("<HHII", 0x0202, 4, 1, len(thumb)) + struct.pack("<I", 0) + thumb)
    return b"Exif\x00\x00" + tiff


def jpeg_with_exif(im: Image.Image, exif: bytes) -> bytes:
    out = io.BytesIO()
    im.save(out, "JPEG", exif=exif)
    return out.getvalue()


def test_the_exif_thumbnail_serves_the_small_size_when_it_is_large_enough():
    thumb = samples.encode(Image.new("RGB", (96, 64), GREEN), "JPEG")
    data = jpeg_with_exif(Image.new("RGB", (3000, 2000), RED), exif_with_thumbnail(thumb))
    small, large = render_previews(data, OPTIONS).previews
    assert (small.source, large.source) == ("exif-thumbnail", "picture")
    assert near(decoded(small.data).getpixel((20, 20)), GREEN, 12)
    assert near(decoded(large.data).getpixel((20, 20)), RED, 12)
    tiny = samples.encode(Image.new("RGB", (48, 32), GREEN), "JPEG")  # smaller than 64: not used
    data = jpeg_with_exif(Image.new("RGB", (3000, 2000), RED), exif_with_thumbnail(tiny))
    assert render_previews(data, OPTIONS).previews[0].source == "picture"
    letterboxed = samples.encode(Image.new("RGB", (96, 96), GREEN), "JPEG")  # another shape: not used
    data = jpeg_with_exif(Image.new("RGB", (3000, 2000), RED), exif_with_thumbnail(letterboxed))
    assert render_previews(data, OPTIONS).previews[0].source == "picture"


# ---- hostile input ----------------------------------------------------------------------------

def test_a_decompression_bomb_is_refused_from_its_header():
    bomb = samples.png_header_only(30000, 30000)
    with pytest.raises(NoPreview, match="decompression bomb: 30000x30000"):
        render_previews(bomb, OPTIONS)
    # negative control: under a limit above its size the header passes and the decoder is reached
    with pytest.raises(NoPreview, match="pixels cannot be decoded"):
        render_previews(bomb, PreviewOptions(sizes=(64,), max_pixels=10**10))


def test_corrupt_pixels_are_a_reason_not_a_crash():
    good = samples.encode(samples.noise((800, 600)), "JPEG")
    with pytest.raises(NoPreview, match="pixels cannot be decoded"):
        render_previews(good[: len(good) // 3], OPTIONS)
    assert len(render_previews(good, OPTIONS).previews) == 2  # the whole file renders


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "TIFF"])
def test_a_picture_smaller_than_every_size_keeps_its_pixels_after_the_source_closes(fmt):
    rendering = render_previews(samples.encode(Image.new("RGB", (50, 40), GREEN), fmt), OPTIONS)
    assert [(p.width, p.height) for p in rendering.previews] == [(50, 40), (50, 40)]
    assert near(rendering.small.getpixel((25, 20)), GREEN, 12)  # raised "Operation on closed image"


def test_text_named_jpg_is_not_previewed():
    with pytest.raises(NoPreview, match="cannot be opened"):
        render_previews(b"hello, this is text", OPTIONS)


# ---- no metadata in previews ------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool is in scripts/bootstrap.sh")
@pytest.mark.parametrize("output", ["webp", "jpeg"])
def test_previews_carry_no_exif_xmp_icc_or_gps(output, tmp_path):
    xmp = samples.xmp_packet(taken="2024-01-02T03:04:05")
    data = samples.encode(samples.picture((800, 600)), "JPEG",
                          samples.Exif(orientation=6, make="Canon", model="EOS R5", gps=(48.85, 2.29, 35.0)),
                          icc_profile=matrix_profile("Display P3", DISPLAY_P3, GAMMA_P3), xmp=xmp)
    rendering = render_previews(data, PreviewOptions(sizes=(64, 256), output=output))
    source, preview = tmp_path / "source.jpg", tmp_path / f"preview.{output}"
    source.write_bytes(data)
    preview.write_bytes(rendering.previews[-1].data)

    def groups(path) -> set[str]:
        out = subprocess.run(["exiftool", "-j", "-G", "-a", str(path)], capture_output=True, check=True, text=True)
        return {key.split(":")[0] for key in json.loads(out.stdout)[0] if ":" in key}

    leaked = {"EXIF", "XMP", "ICC_Profile", "GPS", "MakerNotes", "Composite"} & groups(preview)
    assert leaked <= {"Composite"} and "GPSLatitude" not in str(subprocess.run(
        ["exiftool", "-j", "-a", str(preview)], capture_output=True, text=True).stdout)
    assert {"EXIF", "XMP", "ICC_Profile"} <= groups(source)  # the check sees them where they are
    info = decoded(rendering.previews[-1].data).info
    assert not {"exif", "xmp", "icc_profile"} & {k for k, v in info.items() if v}
