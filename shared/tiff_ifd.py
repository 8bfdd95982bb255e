"""TIFF and BigTIFF directories (IFDs), either byte order, read lazily through a seekable file.

Raw photos are TIFF files whose first directory is a preview; the full-size image sits in a
later directory or a SubIFD, and its EXIF beside a MakerNote of tens of kilobytes. Pillow's
``ImageFileDirectory_v2`` reads every tag's value eagerly (MakerNotes, strip tables) and does
not walk SubIFDs; tifffile needs numpy at run time and parses every page. This reader, from
the TIFF 6.0 and BigTIFF specifications, reads a directory's entry table and fetches an
out-of-line value only when a caller asks for that tag, so describing a raw costs its
directories and the few values wanted.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import IO, Any

TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4,
              16: 8, 17: 8, 18: 8}
_FORMATS = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 11: "f", 12: "d", 13: "I", 16: "Q",
            17: "q", 18: "Q"}
MAX_ENTRIES = 4096  # far above any real directory; more is a hostile count
MAX_VALUE = 1024 * 1024  # a wanted value larger than this is not read (MakerNotes are not wanted)
MAX_DIRECTORIES = 64

TAG_SUBFILE_TYPE, TAG_OLD_SUBFILE_TYPE = 0x00FE, 0x00FF
TAG_WIDTH, TAG_HEIGHT, TAG_BITS, TAG_COMPRESSION, TAG_PHOTOMETRIC = 0x0100, 0x0101, 0x0102, 0x0103, 0x0106
TAG_SAMPLES, TAG_X_RES, TAG_Y_RES, TAG_RES_UNIT = 0x0115, 0x011A, 0x011B, 0x0128
TAG_SUB_IFDS, TAG_EXTRA_SAMPLES, TAG_SAMPLE_FORMAT, TAG_XMP = 0x014A, 0x0152, 0x0153, 0x02BC
TAG_ICC, TAG_EXIF_IFD, TAG_GPS_IFD, TAG_MAKE = 0x8773, 0x8769, 0x8825, 0x010F


class NotTiff(ValueError):
    """The bytes do not start with a TIFF or BigTIFF header."""


class Directory:
    """One IFD: its entries, read at once; each value read when asked for."""

    def __init__(self, reader: TiffReader, offset: int) -> None:
        self.reader, self.offset = reader, offset
        self.entries: dict[int, tuple[int, int, bytes]] = {}
        self.next_offset = 0
        big, order = reader.bigtiff, reader.order
        fp = reader.fp
        fp.seek(offset)
        head = fp.read(8 if big else 2)
        if len(head) < (8 if big else 2):
            raise NotTiff(f"directory at {offset} is past the end of the file")
        count = struct.unpack(order + ("Q" if big else "H"), head)[0]
        if count > MAX_ENTRIES:
            raise NotTiff(f"directory at {offset} claims {count} entries")
        size = 20 if big else 12
        table = fp.read(count * size + (8 if big else 4))
        if len(table) < count * size:
            raise NotTiff(f"directory at {offset} is cut short")
        entry = struct.Struct(order + ("HHQ8s" if big else "HHI4s"))
        for i in range(count):
            tag, kind, n, value = entry.unpack_from(table, i * size)
            if kind in TYPE_SIZES and tag not in self.entries:
                self.entries[tag] = (kind, n, value)
        tail = table[count * size:]
        if len(tail) == (8 if big else 4):
            self.next_offset = struct.unpack(order + ("Q" if big else "I"), tail)[0]

    def __contains__(self, tag: int) -> bool:
        return tag in self.entries

    def raw(self, tag: int) -> bytes | None:
        """A value's bytes (inline or fetched), or None if absent, too large or past the end."""
        found = self.entries.get(tag)
        if found is None:
            return None
        kind, count, inline = found
        length = TYPE_SIZES[kind] * count
        if length <= len(inline):
            return inline[:length]
        if length > MAX_VALUE:
            return None
        offset = struct.unpack(self.reader.order + ("Q" if self.reader.bigtiff else "I"), inline)[0]
        fp = self.reader.fp
        fp.seek(offset)
        data = fp.read(length)
        return data if len(data) == length else None

    def get(self, tag: int, default: Any = None) -> Any:
        """The value as Pillow gives EXIF values: a number (or (num, den) for a rational),
        a tuple when there are several, bytes for ASCII and UNDEFINED."""
        data = self.raw(tag)
        if data is None:
            return default
        kind = self.entries[tag][0]
        order = self.reader.order
        if kind in (2, 7):
            return data
        if kind in (5, 10):
            pairs = struct.unpack(order + ("I" if kind == 5 else "i") * (len(data) // 4), data)
            values = tuple(zip(pairs[0::2], pairs[1::2], strict=True))
        else:
            fmt = _FORMATS[kind]
            values = struct.unpack(order + fmt * (len(data) // struct.calcsize(fmt)), data)
        if not values:
            return default
        return values[0] if len(values) == 1 else values

    def number(self, tag: int) -> int | None:
        value = self.get(tag)
        if isinstance(value, tuple) and value and isinstance(value[0], int):
            value = value[0]
        return value if isinstance(value, int) else None

    def offsets(self, tag: int) -> list[int]:
        value = self.get(tag)
        if isinstance(value, int):
            return [value]
        return [v for v in value if isinstance(v, int)] if isinstance(value, tuple) else []


class TiffReader:
    """The header and directories of a TIFF-structured file (TIFF, BigTIFF, TIFF-based raws)."""

    def __init__(self, fp: IO[bytes]) -> None:
        self.fp = fp
        fp.seek(0)
        head = fp.read(16)
        if len(head) < 8 or head[:2] not in (b"II", b"MM"):
            raise NotTiff("no TIFF byte-order mark")
        self.order = "<" if head[:2] == b"II" else ">"
        self.magic = struct.unpack_from(self.order + "H", head, 2)[0]
        self.bigtiff = self.magic == 0x2B
        if self.bigtiff:
            if len(head) < 16 or struct.unpack_from(self.order + "HH", head, 4) != (8, 0):
                raise NotTiff("BigTIFF header with a bad offset size")
            self.first = struct.unpack_from(self.order + "Q", head, 8)[0]
        else:
            self.first = struct.unpack_from(self.order + "I", head, 4)[0]
        self.head = head
        self._seen: dict[int, Directory] = {}

    def directory(self, offset: int) -> Directory | None:
        """The directory at offset, once (a loop of offsets ends the walk), or None."""
        if offset < 8 or offset in self._seen or len(self._seen) >= MAX_DIRECTORIES:
            return self._seen.get(offset)
        directory = Directory(self, offset)
        self._seen[offset] = directory
        return directory

    def chain(self) -> list[Directory]:
        """IFD0, IFD1, ... by their next-directory offsets."""
        found, offset, seen = [], self.first, set()
        while offset and offset not in seen and len(found) < MAX_DIRECTORIES:
            seen.add(offset)
            directory = self.directory(offset)
            if directory is None:
                break
            found.append(directory)
            offset = directory.next_offset
        return found

    def sub_directories(self, directory: Directory, tag: int = TAG_SUB_IFDS) -> list[Directory]:
        found = []
        for offset in directory.offsets(tag):
            try:
                sub = self.directory(offset)
            except NotTiff:
                continue
            if sub is not None and sub is not directory:
                found.append(sub)
        return found

    def image_directories(self) -> Iterator[Directory]:
        """Every image directory in exiftool's reading order: each IFD, then its SubIFDs."""
        def walk(directory: Directory, depth: int) -> Iterator[Directory]:
            yield directory
            if depth < 3:
                for sub in self.sub_directories(directory):
                    yield from walk(sub, depth + 1)

        for directory in self.chain():
            yield from walk(directory, 0)


class ExifView:
    """IFD0 and its EXIF/GPS directories behind the two calls extraction makes on Pillow's
    ``Image.Exif`` (``get`` and ``get_ifd``), reading only the values asked for."""

    def __init__(self, reader: TiffReader, ifd0: Directory) -> None:
        self.reader, self.ifd0 = reader, ifd0

    def get(self, tag: int, default: Any = None) -> Any:
        return self.ifd0.get(tag, default)

    def get_ifd(self, tag: int) -> Directory | dict:
        subs = self.reader.sub_directories(self.ifd0, tag)
        return subs[0] if subs else {}
