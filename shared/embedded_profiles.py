"""Metadata where writers put it outside the usual places: PNG text-chunk profiles, GIF XMP.

ImageMagick (and Photoshop through it) stores EXIF, XMP, IPTC and ICC profiles in PNG
``tEXt``/``zTXt``/``iTXt`` chunks keyed ``Raw profile type <name>``, the value being
``\\n<name>\\n<length>\\n<hex digits in lines>``; Pillow hands those chunks over as text in
``im.info`` (the ones before IDAT, which is all it reads), and they are decoded here without
touching pixels. XMP in GIF is an application extension ``XMP DataXMP`` whose data is the
packet itself followed by a 258-byte "magic trailer" (XMP specification part 3, 1.1.2), so
the packet is cut at its ``<?xpacket end=…?>`` marker.
"""

from __future__ import annotations

from typing import IO, Any

PROFILE_KEYS = {"exif": "exif", "app1": "exif", "xmp": "xmp", "iptc": "iptc", "8bim": "iptc",
                "icc": "icc", "icm": "icc"}
MAX_PROFILE = 8 * 1024 * 1024
MAX_GIF_XMP = 1024 * 1024
GIF_XMP_ID = b"XMP DataXMP"


def decode_raw_profile(text: str) -> bytes | None:
    """The bytes of an ImageMagick raw profile, or None when it is malformed or truncated."""
    parts = text.split("\n", 3)
    if len(parts) < 4:
        return None
    try:
        length = int(parts[2].strip())
    except ValueError:
        return None
    if not 0 < length <= MAX_PROFILE:
        return None
    digits = "".join(parts[3].split())
    try:
        data = bytes.fromhex(digits[: 2 * length])
    except ValueError:
        return None
    return data if len(data) == length else None


def png_text_profiles(info: dict[str, Any]) -> dict[str, bytes]:
    """Profiles found in a PNG's text chunks, by kind (exif, xmp, iptc, icc)."""
    found: dict[str, bytes] = {}
    for key, value in info.items():
        if not isinstance(key, str) or not key.startswith("Raw profile type "):
            continue
        kind = PROFILE_KEYS.get(key[len("Raw profile type "):].strip().lower())
        if kind and kind not in found and isinstance(value, str):
            data = decode_raw_profile(value)
            if data:
                found[kind] = data
    return found


def gif_xmp(fp: IO[bytes]) -> bytes | None:
    """The XMP packet of a GIF's application extension before its first image, if any."""
    fp.seek(10)
    flags = fp.read(1)
    if not flags:
        return None
    pos = 13 + (3 << ((flags[0] & 7) + 1) if flags[0] & 0x80 else 0)
    for _ in range(64):
        fp.seek(pos)
        marker = fp.read(2)
        if len(marker) < 2 or marker[0] != 0x21:
            return None  # an image descriptor, the trailer or garbage: no XMP before the image
        if marker[1] == 0xFF:
            ident = fp.read(12)
            if ident[:1] == b"\x0b" and ident[1:12] == GIF_XMP_ID:
                data = b""
                while len(data) < MAX_GIF_XMP:
                    more = fp.read(16 * 1024)
                    data += more
                    end = data.find(b"<?xpacket end=")
                    close = data.find(b"?>", end) if end >= 0 else -1
                    if close >= 0:
                        return data[: close + 2]
                    if not more:
                        return None
                return None
        next_block = skip_sub_blocks(fp, pos + 2)
        if next_block is None:
            return None
        pos = next_block
    return None


def skip_sub_blocks(fp: IO[bytes], pos: int) -> int | None:
    """The offset after a GIF extension's data sub-blocks starting at pos (each a length byte
    and that many bytes, ended by a zero length), or None when the file ends first."""
    while True:
        fp.seek(pos)
        length = fp.read(1)
        if not length:
            return None
        pos += 1 + length[0]
        if length[0] == 0:
            return pos
