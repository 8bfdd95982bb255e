"""JavaScript's Math.cos to the bit, so a port of a JavaScript reference computes its bits.

V8 (Node, Chrome) computes Math.cos with its port of fdlibm (src/base/ieee754.cc: __kernel_cos,
__kernel_sin, __ieee754_rem_pio2); glibc's cos, which math.cos and numpy call, differs from it in
the last bit for about 3 % of arguments, and the ThumbHash of a flat image is made of such
bits (shared.image_hashes). This is fdlibm's algorithm for |x| < 2**19 * pi/2, checked against
Node's Math.cos on the arguments in tests/data/thumbhash/vectors.json.

fdlibm: Copyright (C) 1993 by Sun Microsystems, Inc. All rights reserved. Developed at SunSoft,
a Sun Microsystems, Inc. business. Permission to use, copy, modify, and distribute this software
is freely granted, provided that this notice is preserved.
"""

from __future__ import annotations

import struct

_C = (4.16666666666666019037e-02, -1.38888888888741095749e-03, 2.48015872894767294178e-05,
      -2.75573143513906633035e-07, 2.08757232129817482790e-09, -1.13596475577881948265e-11)
_S = (-1.66666666666666324348e-01, 8.33333333332248946124e-03, -1.98412698298579493134e-04,
      2.75573137070700676789e-06, -2.50507602534068634195e-08, 1.58969099521155010221e-10)
_INVPIO2 = 6.36619772367581382433e-01
_PIO2_1, _PIO2_1T = 1.57079632673412561417e+00, 6.07710050650619224932e-11
_PIO2_2, _PIO2_2T = 6.07710050630396597660e-11, 2.02226624879595063154e-21
_PIO2_3, _PIO2_3T = 2.02226624871116645580e-21, 8.47842766036889956997e-32
# High words of n * pi/2 for n = 1 .. 32 (fdlibm's npio2_hw).
_NPIO2_HW = (
    0x3FF921FB, 0x400921FB, 0x4012D97C, 0x401921FB, 0x401F6A7A, 0x4022D97C, 0x4025FDBB, 0x402921FB,
    0x402C463A, 0x402F6A7A, 0x4031475C, 0x4032D97C, 0x40346B9C, 0x4035FDBB, 0x40378FDB, 0x403921FB,
    0x403AB41B, 0x403C463A, 0x403DD85A, 0x403F6A7A, 0x40407E4C, 0x4041475C, 0x4042106C, 0x4042D97C,
    0x4043A28C, 0x40446B9C, 0x404534AC, 0x4045FDBB, 0x4046C6CB, 0x40478FDB, 0x404858EB, 0x404921FB,
)
_MEDIUM = 0x413921FB  # |x| up to about 2**19 * pi/2


def _high(x: float) -> int:
    """The upper 32 bits of the IEEE 754 double, unsigned."""
    return (struct.unpack("<Q", struct.pack("<d", x))[0] >> 32) & 0xFFFFFFFF


def _from_high(high: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", (high & 0xFFFFFFFF) << 32))[0]


def _kernel_cos(x: float, y: float) -> float:
    ix = _high(x) & 0x7FFFFFFF
    if ix < 0x3E400000 and int(x) == 0:
        return 1.0
    z = x * x
    r = z * (_C[0] + z * (_C[1] + z * (_C[2] + z * (_C[3] + z * (_C[4] + z * _C[5])))))
    if ix < 0x3FD33333:
        return 1.0 - (0.5 * z - (z * r - x * y))
    qx = 0.28125 if ix > 0x3FE90000 else _from_high(ix - 0x00200000)
    hz = 0.5 * z - qx
    return (1.0 - qx) - (hz - (z * r - x * y))


def _kernel_sin(x: float, y: float) -> float:
    ix = _high(x) & 0x7FFFFFFF
    if ix < 0x3E400000 and int(x) == 0:
        return x
    z = x * x
    v = z * x
    r = _S[1] + z * (_S[2] + z * (_S[3] + z * (_S[4] + z * _S[5])))
    return x - ((z * (0.5 * y - v * r) - y) - v * _S[0])


def _rem_pio2(x: float) -> tuple[int, float, float]:
    """x = n * pi/2 + (y0 + y1), |y0 + y1| <= pi/4, for |x| below _MEDIUM."""
    high = _high(x)
    negative = high >= 1 << 31
    ix = high & 0x7FFFFFFF
    if ix < 0x4002D97C:  # |x| < 3pi/4: n = +-1
        sign = -1.0 if negative else 1.0
        z = x - sign * _PIO2_1
        if ix != 0x3FF921FB:
            y0 = z - sign * _PIO2_1T
            return (-1 if negative else 1), y0, (z - y0) - sign * _PIO2_1T
        z -= sign * _PIO2_2
        y0 = z - sign * _PIO2_2T
        return (-1 if negative else 1), y0, (z - y0) - sign * _PIO2_2T
    t = abs(x)
    n = int(t * _INVPIO2 + 0.5)
    fn = float(n)
    r = t - fn * _PIO2_1
    w = fn * _PIO2_1T
    y0 = r - w
    if not (n < 32 and ix != _NPIO2_HW[n - 1]):
        j = ix >> 20
        if j - ((_high(y0) >> 20) & 0x7FF) > 16:  # a second round, good to 118 bits
            t = r
            w = fn * _PIO2_2
            r = t - w
            w = fn * _PIO2_2T - ((t - r) - w)
            y0 = r - w
            if j - ((_high(y0) >> 20) & 0x7FF) > 49:  # a third, 151 bits
                t = r
                w = fn * _PIO2_3
                r = t - w
                w = fn * _PIO2_3T - ((t - r) - w)
                y0 = r - w
    y1 = (r - y0) - w
    return (-n, -y0, -y1) if negative else (n, y0, y1)


def cos(x: float) -> float:
    """Math.cos(x) as V8 computes it, for |x| < 2**19 * pi/2 (about 823,550)."""
    ix = _high(x) & 0x7FFFFFFF
    if ix <= 0x3FE921FB:
        return _kernel_cos(x, 0.0)
    if ix > _MEDIUM:
        raise ValueError(f"cos({x!r}): only |x| < 2**19 * pi/2 is implemented")
    n, y0, y1 = _rem_pio2(x)
    return (_kernel_cos(y0, y1), -_kernel_sin(y0, y1), -_kernel_cos(y0, y1), _kernel_sin(y0, y1))[n & 3]
