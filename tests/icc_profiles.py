"""ICC profiles built from the ICC.1 specification (v2 layout), so that colour tests need no
downloaded file: matrix/TRC RGB profiles from published primaries (Display P3, Adobe RGB 1998)
and a CMYK printer profile whose A2B0 table (lut16Type) says what each ink looks like.

The expected sRGB value of any input is computed here from the same numbers by plain
arithmetic, independent of LittleCMS, which the code under test uses.
"""

from __future__ import annotations

import itertools
import struct

D50 = (0.9642, 1.0, 0.8249)
# Colorant XYZ (D50, Bradford-adapted), columns of the RGB -> XYZ matrix.
DISPLAY_P3 = ((0.5151, 0.2412, -0.0011), (0.2920, 0.6922, 0.0419), (0.1571, 0.0666, 0.7841))
ADOBE_RGB = ((0.6097, 0.3111, 0.0195), (0.2053, 0.6257, 0.0609), (0.1492, 0.0632, 0.7446))
SRGB_D50 = ((0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141))
GAMMA_P3, GAMMA_ADOBE = 2.2, 563 / 256
# What the CMYK profile says each ink (and their overprints) looks like, in sRGB: real process
# cyan is far from Pillow's naive (0, 255, 255).
INKS = {"C": (0, 160, 230), "M": (230, 0, 126), "Y": (255, 236, 0), "K": (35, 31, 32)}


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + bytes(4) + _s15(x) + _s15(y) + _s15(z)


def _desc(text: str) -> bytes:
    ascii_ = text.encode() + b"\0"
    return (b"desc" + bytes(4) + struct.pack(">I", len(ascii_)) + ascii_ + bytes(8) + bytes(3) + bytes(67))


def _profile(device_class: bytes, space: bytes, pcs: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    table, body = b"", b""
    offset = 128 + 4 + 12 * len(tags)
    for sig, data in tags:
        data += bytes(-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (struct.pack(">I", size) + b"lcms" + bytes([2, 0x10, 0, 0]) + device_class + space + pcs
              + bytes(12) + b"acsp" + b"APPL" + bytes(4) + bytes(4) + bytes(4) + bytes(8)
              + struct.pack(">I", 0) + _s15(D50[0]) + _s15(D50[1]) + _s15(D50[2]) + b"test" + bytes(16) + bytes(28))
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def matrix_profile(name: str, colorants: tuple[tuple[float, float, float], ...], gamma: float) -> bytes:
    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256))
    return _profile(b"mntr", b"RGB ", b"XYZ ", [
        (b"desc", _desc(name)), (b"wtpt", _xyz(*D50)),
        (b"rXYZ", _xyz(*colorants[0])), (b"gXYZ", _xyz(*colorants[1])), (b"bXYZ", _xyz(*colorants[2])),
        (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)])


def _linear(c: float) -> float:
    c /= 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _encode(c: float) -> int:
    c = min(max(c, 0.0), 1.0)
    return round(255 * (12.92 * c if c <= 0.0031308 else 1.055 * c ** (1 / 2.4) - 0.055))


def _solve(m: tuple[tuple[float, float, float], ...], xyz: tuple[float, float, float]) -> list[float]:
    """Linear sRGB from XYZ (Cramer's rule on the 3x3 colorant matrix)."""
    cols = m
    def det(a, b, c):  # noqa: ANN001, ANN202 - columns
        return (a[0] * (b[1] * c[2] - b[2] * c[1]) - b[0] * (a[1] * c[2] - a[2] * c[1])
                + c[0] * (a[1] * b[2] - a[2] * b[1]))
    d = det(*cols)
    return [det(xyz, cols[1], cols[2]) / d, det(cols[0], xyz, cols[2]) / d, det(cols[0], cols[1], xyz) / d]


def _to_xyz(m, rgb_linear):  # noqa: ANN001, ANN202
    return tuple(sum(m[j][i] * rgb_linear[j] for j in range(3)) for i in range(3))


def expected_srgb(rgb: tuple[int, int, int], colorants, gamma: float) -> tuple[int, ...]:  # noqa: ANN001
    """sRGB of an RGB value in a matrix/TRC profile, by arithmetic."""
    linear = [(c / 255) ** gamma for c in rgb]
    return tuple(_encode(v) for v in _solve(SRGB_D50, _to_xyz(colorants, linear)))


def _ink_linear(c: float, m: float, y: float, k: float) -> list[float]:
    """Subtractive mix: each ink multiplies the paper white by its colour."""
    out = [1.0, 1.0, 1.0]
    for amount, ink in zip((c, m, y, k), "CMYK", strict=True):
        for i in range(3):
            out[i] *= 1 - amount * (1 - _linear(INKS[ink][i]))
    return out


def expected_cmyk(cmyk: tuple[int, int, int, int]) -> tuple[int, ...]:
    """sRGB of a CMYK value in ``cmyk_profile()`` (grid corners are exact)."""
    return tuple(_encode(v) for v in _ink_linear(*(v / 255 for v in cmyk)))


def cmyk_profile() -> bytes:
    """A printer profile: A2B0 as a lut16 (2 grid points per ink, XYZ PCS, 1.0 = 0x8000)."""
    grid = 2
    clut = b""
    for corner in itertools.product(range(grid), repeat=4):
        xyz = _to_xyz(SRGB_D50, _ink_linear(*corner))
        clut += struct.pack(">HHH", *(min(65535, round(v * 32768)) for v in xyz))
    identity = b"".join(_s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
    ramp = struct.pack(">HH", 0, 65535)
    lut = (b"mft2" + bytes(4) + bytes([4, 3, grid, 0]) + identity + struct.pack(">HH", 2, 2)
           + ramp * 4 + clut + ramp * 3)
    return _profile(b"prtr", b"CMYK", b"XYZ ", [(b"desc", _desc("test CMYK inks")), (b"wtpt", _xyz(*D50)),
                                               (b"A2B0", lut)])
