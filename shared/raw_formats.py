"""Raw camera photos built on TIFF: which format, which directory is the picture, its EXIF.

Format from the content, named as exiftool names it: DNG (DNGVersion in IFD0), CR2 (``CR\\2``
after the TIFF header), ORF (magic 0x4F52/0x5352), RW2 (magic 0x55 and Panasonic's
signature), IIQ (Phase One's ``IIII``/``MMMM`` block after the header), and NEF/NRW, ARW,
PEF, SRW, 3FR by the camera maker once a directory holds raw sensor data (CFA or linear raw
samples, or a maker's raw compression) — a maker's plain TIFF stays a TIFF.

The picture's size is what exiftool reports as the image size: the first directory marked
full-resolution (NewSubfileType 0) in reading order (each IFD, then its SubIFDs), else IFD0;
for CR2 and IIQ, EXIF's ExifImageWidth/Height; for RW2, the sensor borders. A DNG's
DefaultCropSize (the displayed area) gives the display size. Camera, exposure, GPS, time and
orientation come from IFD0 and its EXIF/GPS directories, read by ranged requests.
"""

from __future__ import annotations

from typing import IO

from shared.header_image import HeaderImage, tiff_metadata_info, tiff_mode
from shared.tiff_ifd import (
    TAG_BITS,
    TAG_COMPRESSION,
    TAG_EXIF_IFD,
    TAG_HEIGHT,
    TAG_MAKE,
    TAG_OLD_SUBFILE_TYPE,
    TAG_PHOTOMETRIC,
    TAG_SUBFILE_TYPE,
    TAG_WIDTH,
    Directory,
    ExifView,
    TiffReader,
)

CONTENT_TYPES = {
    "DNG": "image/x-adobe-dng", "CR2": "image/x-canon-cr2", "NEF": "image/x-nikon-nef",
    "NRW": "image/x-nikon-nrw", "ARW": "image/x-sony-arw", "ORF": "image/x-olympus-orf",
    "RW2": "image/x-panasonic-rw2", "PEF": "image/x-pentax-pef", "SRW": "image/x-samsung-srw",
    "IIQ": "image/x-raw", "3FR": "image/x-hasselblad-3fr",
    # the makers' own containers: shared/raw_containers.py
    "RAF": "image/x-fujifilm-raf", "CR3": "image/x-canon-cr3", "MRW": "image/x-minolta-mrw",
    "CRW": "image/x-canon-crw", "X3F": "image/x-sigma-x3f",
}
RAW_FORMATS = tuple(CONTENT_TYPES)
MAKERS = (("NIKON", "NEF"), ("SONY", "ARW"), ("PENTAX", "PEF"), ("RICOH IMAGING", "PEF"),
          ("SAMSUNG", "SRW"), ("HASSELBLAD", "3FR"))
RAW_PHOTOMETRIC = {32803, 34892}  # CFA, LinearRaw
RAW_COMPRESSION = {34713: "NEF", 32767: "ARW", 65535: "PEF", 32770: "SRW"}
RW2_SIGNATURE = b"\x88\xe7\x74\xd8\xf8\x25\x1d\x4d\x94\x7a\x6e\x77\x82\x2b\x5d\x6a"
TAG_DNG_VERSION, TAG_DEFAULT_CROP_SIZE = 0xC612, 0xC620
TAG_EXIF_WIDTH, TAG_EXIF_HEIGHT, TAG_JPEG_OFFSET = 0xA002, 0xA003, 0x0201
RW2_BORDERS = (0x04, 0x05, 0x06, 0x07)  # top, left, bottom, right


def _make(ifd0: Directory) -> str:
    make = ifd0.get(TAG_MAKE)
    return make.split(b"\x00", 1)[0].decode("latin-1").strip().upper() if isinstance(make, bytes) else ""


def _is_raw_data(directory: Directory) -> bool:
    return (directory.number(TAG_PHOTOMETRIC) in RAW_PHOTOMETRIC
            or directory.number(TAG_COMPRESSION) in RAW_COMPRESSION)


def identify(reader: TiffReader, directories: list[Directory]) -> str | None:
    """The raw format's exiftool name, or None for a TIFF that is no raw photo."""
    head = reader.head
    if reader.magic in (0x4F52, 0x5352):
        return "ORF"
    if reader.magic == 0x55:
        return "RW2" if _rw2_signature(reader) else None
    if reader.magic != 0x2A or not directories:
        return None
    if head[8:12] == b"CR\x02\x00":
        return "CR2"
    if head[8:12] in (b"IIII", b"MMMM"):
        return "IIQ"
    ifd0 = directories[0]
    if TAG_DNG_VERSION in ifd0:
        return "DNG"
    if not any(_is_raw_data(d) for d in directories):
        return None
    make = _make(ifd0)
    for prefix, name in MAKERS:
        if make.startswith(prefix):
            if name == "NEF" and ifd0.number(TAG_COMPRESSION) == 6 and TAG_JPEG_OFFSET in ifd0:
                return "NRW"  # exiftool's rule: a JPEG-compressed thumbnail in IFD0
            return name
    return None


def _rw2_signature(reader: TiffReader) -> bool:
    reader.fp.seek(8)
    return reader.fp.read(16) == RW2_SIGNATURE


def _full_size(directories: list[Directory]) -> Directory:
    for directory in directories:
        if directory.number(TAG_SUBFILE_TYPE) == 0 or directory.number(TAG_OLD_SUBFILE_TYPE) == 1:
            return directory
    return directories[0]


def describe_raw(fp: IO[bytes]) -> HeaderImage | None:
    """A raw photo's description, or None when the file is a TIFF but no raw photo."""
    reader = TiffReader(fp)
    directories = list(reader.image_directories())
    fmt = identify(reader, directories)
    if fmt is None:
        return None
    ifd0 = directories[0]
    picture = ifd0 if fmt == "RW2" else _full_size(directories)
    width, height = picture.number(TAG_WIDTH), picture.number(TAG_HEIGHT)
    exif = ExifView(reader, ifd0)
    if fmt == "RW2":
        top, left, bottom, right = (ifd0.number(t) for t in RW2_BORDERS)
        if None not in (top, left, bottom, right):
            width, height = right - left, bottom - top  # type: ignore[operator]
    elif fmt in ("CR2", "IIQ"):
        sub = exif.get_ifd(TAG_EXIF_IFD)
        if isinstance(sub, Directory):
            exif_width, exif_height = sub.number(TAG_EXIF_WIDTH), sub.number(TAG_EXIF_HEIGHT)
            if exif_width and exif_height:
                width, height = exif_width, exif_height
    if not width or not height or width < 0 or height < 0:
        raise ValueError(f"{fmt} without an image size in its full-size directory")
    mode, _alpha = tiff_mode(picture)
    display = None
    if fmt == "DNG":
        crop = picture.get(TAG_DEFAULT_CROP_SIZE)
        if isinstance(crop, tuple) and len(crop) == 2:
            crop_w, crop_h = (c[0] / c[1] if isinstance(c, tuple) and c[1] else c for c in crop)
            if isinstance(crop_w, (int, float)) and isinstance(crop_h, (int, float)) and crop_w > 0 and crop_h > 0:
                display = (round(crop_w), round(crop_h))
    info = tiff_metadata_info(ifd0)
    return HeaderImage(format=fmt, size=(width, height), mode=mode or "CFA",
                       bit_depth=picture.number(TAG_BITS), info=info, exif=exif, display_size=display)

