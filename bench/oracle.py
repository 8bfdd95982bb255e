"""Field-by-field agreement with exiftool (the oracle) on the generated corpora.

    .venv/bin/python -m bench.oracle     (writes bench/results/oracle.json)

exiftool reports each source's value (``-a -G1 -n -json``) and the Metadata Working
Group's reconciliation of them (``-use MWG``); the expected value of each of our fields is
derived from those with the precedence stated in shared/extraction.py. Two documented
differences are applied to exiftool's side: text holding control characters (or empty)
is garbage and expected as NULL, and EXIF bytes that are not UTF-8 are expected as
Latin-1 (exiftool's ``-charset exif=Latin`` pass) where exiftool's default shows '?'.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from devhost import samples
from shared.extraction import extract_from_bytes
from shared.models import ImageMetadata

RESULTS = Path(__file__).resolve().parent / "results"
FORMAT_NAMES = {"Extended WEBP": "WEBP", "HEIC": "HEIF", "MPO": "JPEG", "BTF": "TIFF", "APNG": "PNG"}
MIME_NAMES = {"image/heic": "image/heif", "image/x-tiff-big": "image/tiff", "image/apng": "image/png"}
RAW_TYPES = {"DNG", "CR2", "NEF", "NRW", "ARW", "ORF", "RW2", "PEF", "SRW", "IIQ", "3FR", "RAF", "CR3", "MRW",
             "CRW", "X3F"}
# CRW and X3F record their values in their own groups (exiftool's CanonRaw and SigmaRaw tables);
# their Rotation (degrees clockwise) is an EXIF orientation as dcraw maps it.
OWN_GROUPS = {"CRW": "CanonRaw", "X3F": "SigmaRaw"}
RAW_ROTATION_TO_ORIENTATION = {0: 1, 90: 6, 180: 3, 270: 8}
SKIP = object()  # exiftool's values cannot judge this field for this file
AVIF_ROTATION_TO_ORIENTATION = {0: 1, 90: 8, 180: 3, 270: 6}
MISSING = object()


def _exiftool(folder: Path, *options: str) -> dict[str, dict[str, Any]]:
    out = subprocess.run(["exiftool", "-json", "-n", *options, str(folder)], check=True,
                         capture_output=True, text=True).stdout
    return {Path(d["SourceFile"]).name: d for d in json.loads(out)}


def run_exiftool(corpus: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    """Per file: every tag by group, the MWG composites (prefixed 'MWG:'), and a Latin-1 EXIF pass."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, data in corpus.items():
            (folder / name).write_bytes(data)
        groups = _exiftool(folder, "-a", "-G1")
        mwg = _exiftool(folder, "-use", "MWG", "-MWG:all")
        latin = _exiftool(folder, "-a", "-G1", "-charset", "exif=Latin", "-EXIF:all")
        # exiftool's priority values (no -a): the full-size image's, for raws
        priority = _exiftool(folder, "-ImageSize", "-BitsPerSample", "-DefaultCropSize")
    for name, tags in groups.items():
        tags.update({f"Pri:{k}": v for k, v in priority[name].items() if k != "SourceFile"})
        tags.update({f"MWG:{k}": v for k, v in mwg[name].items() if k != "SourceFile"})
        tags.update({f"Latin:{k}": v for k, v in latin[name].items() if k != "SourceFile"})
    return groups


def _text(tags: dict[str, Any], key: str, multiline: bool = False) -> Any:
    """exiftool's text with our documented differences applied."""
    value = tags.get(key)
    if value is None:
        return None
    value = str(value)
    latin = tags.get(f"Latin:{key}")
    if "?" in value and isinstance(latin, str) and latin != value:
        value = latin
    value = value.strip()
    if not value or not (value.isprintable() or (multiline and _multiline_ok(value))):
        return None
    return value


def _multiline_ok(value: str) -> bool:
    return all(c.isprintable() or c in "\t\n\r" for c in value)


def _list(value: Any) -> list[str] | None:
    if value is None:
        return None
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _split_time(text: Any) -> tuple[str | None, str | None]:
    """'YYYY:MM:DD HH:MM:SS[+hh:mm|Z]' -> (ISO local time, offset)."""
    if not isinstance(text, str) or len(text) < 19:
        return None, None
    local = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S").isoformat()
    zone = text[19:].strip() or None
    return local, "+00:00" if zone == "Z" else zone


def _dimension(tags: dict[str, Any], name: str) -> Any:
    """The image's own size tag (File, GIF, RIFF, PNG, IFD0 groups), not a thumbnail's."""
    for group in ("File", "GIF", "RIFF", "PNG", "IFD0"):
        if f"{group}:{name}" in tags:
            return tags[f"{group}:{name}"]
    return None


def expected(tags: dict[str, Any]) -> dict[str, Any]:
    """Our fields as exiftool's values say they must be."""
    iptc_first = ("Photoshop:IPTCDigest" in tags
                  and tags.get("Photoshop:IPTCDigest") != tags.get("File:CurrentIPTCDigest"))

    def ordered(xmp_key: str, iptc_key: str) -> Any:
        keys = (iptc_key, xmp_key) if iptc_first else (xmp_key, iptc_key)
        return next((tags[k] for k in keys if tags.get(k) not in (None, "")), None)

    if tags["File:FileType"] == "MP4" and tags.get("QuickTime:MajorBrand") == "avis":
        # exiftool 12.57 takes an AVIF image sequence for an MP4 video; AV1-ISOBMFF's brand says AVIF
        tags = {**tags, "File:FileType": "AVIF", "File:MIMEType": "image/avif"}
    file_type = tags["File:FileType"]
    own = OWN_GROUPS.get(file_type)
    if own:
        tags = _with_own_group(tags, own)
    exif_taken = tags.get("ExifIFD:DateTimeOriginal")
    xmp_taken = tags.get("XMP-exif:DateTimeOriginal")
    chosen = (exif_taken or xmp_taken or tags.get("Composite:DateTimeOriginal")
              or tags.get("MWG:DateTimeOriginal"))
    local, zone = _split_time(chosen)
    if chosen == exif_taken and exif_taken:
        zone = tags.get("ExifIFD:OffsetTimeOriginal")
        xmp_local, xmp_zone = _split_time(xmp_taken)
        if zone is None and xmp_local == local:
            zone = xmp_zone
    creator = tags.get("MWG:Creator")
    gps_time = tags.get("Composite:GPSDateTime")
    rotation = tags.get("QuickTime:Rotation")
    orientation = tags.get("IFD0:Orientation")
    if tags.get("File:FileType") in ("AVIF", "HEIC"):  # irot decides (HEIF), EXIF's is informational
        orientation = AVIF_ROTATION_TO_ORIENTATION.get(rotation or 0)
    keywords = tags.get("MWG:Keywords")
    width, height = _dimension(tags, "ImageWidth"), _dimension(tags, "ImageHeight")
    if file_type in RAW_TYPES and isinstance(tags.get("Pri:ImageSize"), str):
        width, height = (int(v) for v in tags["Pri:ImageSize"].split())
    if file_type == "X3F":  # the header's columns and rows: exiftool's ImageSize is an embedded JPEG's
        width, height = tags.get("SigmaRaw:ImageWidth"), tags.get("SigmaRaw:ImageHeight")
    display = (width, height)
    crop = tags.get("Pri:DefaultCropSize")
    if file_type == "DNG" and isinstance(crop, str):
        display = tuple(round(float(v)) for v in crop.split())
    if orientation in (5, 6, 7, 8):
        display = display[::-1]
    lat, lon = _gps(tags)
    return {
        "format": FORMAT_NAMES.get(file_type, file_type),
        "content_type": MIME_NAMES.get(tags["File:MIMEType"], tags["File:MIMEType"]),
        "width": width,
        "height": height,
        "orientation": orientation,
        "display_width": display[0],
        "display_height": display[1],
        "bit_depth": _bit_depth(tags),
        "animated": _animated(tags),
        "dpi_x": _dpi(tags, "X"),
        "dpi_y": _dpi(tags, "Y"),
        "camera_make": _text(tags, "IFD0:Make"),
        "camera_model": _text(tags, "IFD0:Model"),
        "software": _text(tags, "IFD0:Software"),
        "captured_at": local,
        "captured_at_offset": zone,
        "gps_date_time": _split_time(gps_time)[0],
        "gps_latitude": lat,
        "gps_longitude": lon,
        "gps_altitude": _altitude(tags) if lat is not None else None,
        "title": ordered("XMP-dc:Title", "IPTC:ObjectName"),
        "description": _text(tags, "IFD0:ImageDescription", True) or _text(tags, "MWG:Description"),
        "keywords": _list(keywords),
        "rating": tags.get("MWG:Rating"),
        "artist": _text(tags, "IFD0:Artist") or "; ".join(_list(creator) or []) or None,
        "copyright": _text(tags, "IFD0:Copyright") or _text(tags, "MWG:Copyright"),
    }


def _with_own_group(tags: dict[str, Any], group: str) -> dict[str, Any]:
    """A CRW's or X3F's own values where EXIF has none (exiftool prefers the EXIF of an embedded
    preview to them): make, model, capture time and zone, orientation from the rotation."""
    filled = dict(tags)
    for key in ("Make", "Model"):
        filled.setdefault(f"IFD0:{key}", tags.get(f"{group}:{key}"))
    if "ExifIFD:DateTimeOriginal" not in tags and f"{group}:DateTimeOriginal" in tags:
        filled["ExifIFD:DateTimeOriginal"] = tags[f"{group}:DateTimeOriginal"]
        zone = tags.get(f"{group}:TimeZoneCode")
        if tags.get(f"{group}:TimeZoneInfo") == 0x80000000 and isinstance(zone, (int, float)):
            minutes = round(abs(zone) * 60)
            filled["ExifIFD:OffsetTimeOriginal"] = f"{'-' if zone < 0 else '+'}{minutes // 60:02d}:{minutes % 60:02d}"
    if "IFD0:Orientation" not in tags and f"{group}:Rotation" in tags:
        filled["IFD0:Orientation"] = RAW_ROTATION_TO_ORIENTATION.get(tags[f"{group}:Rotation"] % 360)
    return filled


def _gps(tags: dict[str, Any]) -> tuple[Any, Any]:
    """Signed GPS position: EXIF's GPS directory, else XMP's exif:GPSLatitude/Longitude."""
    if "GPS:GPSLatitude" in tags or "GPS:GPSLongitude" in tags:
        lat, lon = tags.get("GPS:GPSLatitude"), tags.get("GPS:GPSLongitude")
        if lat is not None and tags.get("GPS:GPSLatitudeRef") == "S":
            lat = -lat
        if lon is not None and tags.get("GPS:GPSLongitudeRef") == "W":
            lon = -lon
        return lat, lon
    return tags.get("XMP-exif:GPSLatitude"), tags.get("XMP-exif:GPSLongitude")


def _altitude(tags: dict[str, Any]) -> Any:
    for group in ("GPS", "XMP-exif"):
        if f"{group}:GPSAltitude" in tags:
            value = float(tags[f"{group}:GPSAltitude"])
            return round(-value if tags.get(f"{group}:GPSAltitudeRef") == 1 else value, 2)
    return None


def _first_number(value: Any) -> Any:
    if isinstance(value, str) and value.split():
        return int(value.split()[0])
    return value


def _bit_depth(tags: dict[str, Any]) -> Any:
    """Bits per sample (palette images: index bits) from exiftool's per-format tags."""
    file_type = tags["File:FileType"]
    if file_type in ("RAF", "X3F"):
        return SKIP  # exiftool's BitsPerSample there is the embedded JPEG preview's
    if file_type == "CRW":
        return tags.get("CanonRaw:ComponentBitDepth")
    if file_type == "MRW":
        return tags.get("MinoltaRaw:BitDepth")
    if file_type in RAW_TYPES:
        return _first_number(tags.get("Pri:BitsPerSample"))
    if file_type in ("PNG", "APNG"):
        return tags.get("PNG:BitDepth")
    if file_type == "GIF":
        return tags.get("GIF:BitsPerPixel")
    if file_type in ("HEIC", "AVIF"):
        return _first_number(tags.get("QuickTime:ImagePixelDepth"))
    if file_type in ("TIFF", "BTF"):
        return _first_number(tags.get("IFD0:BitsPerSample"))
    if file_type in ("JPEG", "MPO"):
        return tags.get("File:BitsPerSample")
    if file_type == "BMP":
        bits = tags.get("File:BitDepth")
        if not isinstance(bits, int):
            return SKIP
        masks = [tags.get(f"File:{c}Mask") for c in ("Red", "Green", "Blue", "Alpha")]
        if bits <= 8:
            return bits
        if any(isinstance(m, int) and m for m in masks):
            return max(bin(m).count("1") for m in masks if isinstance(m, int))
        if tags.get("File:Compression") in (3, 6):  # bit fields exiftool does not show
            return SKIP
        return {16: 5, 24: 8, 32: 8, 64: 16}.get(bits, SKIP)
    return SKIP  # WebP: no tag in exiftool (VP8/VP8L samples are 8 bits)


def _animated(tags: dict[str, Any]) -> Any:
    file_type = tags["File:FileType"]
    if file_type == "GIF":
        return (tags.get("GIF:FrameCount") or 1) > 1
    if file_type == "APNG":
        return (tags.get("PNG:AnimationFrames") or 1) > 1
    if file_type == "PNG":
        return False
    if file_type in ("WEBP", "Extended WEBP"):
        return "RIFF:AnimationLoopCount" in tags  # an ANIM chunk
    if file_type in ("AVIF", "HEIC"):  # an image sequence: a track of pictures (handler pict or vide)
        return any(k.startswith("Track") and k.endswith(":HandlerType") and v in ("pict", "vide")
                   for k, v in tags.items())
    return False  # JPEG (MPO pictures), TIFF pages, BMP, raws


def _dpi(tags: dict[str, Any], axis: str) -> Any:
    """Resolution in dots per inch, only where recorded with a physical unit."""
    file_type = tags["File:FileType"]

    def scaled(value: Any, factor: float) -> Any:
        return round(float(value) * factor, 2) if value else None

    if file_type in ("JPEG", "MPO") and tags.get("JFIF:ResolutionUnit") in (1, 2):
        return scaled(tags.get(f"JFIF:{axis}Resolution"), 1.0 if tags["JFIF:ResolutionUnit"] == 1 else 2.54)
    if file_type in ("PNG", "APNG"):
        if tags.get("PNG-pHYs:PixelUnits") == 1:
            return scaled(tags.get(f"PNG-pHYs:PixelsPerUnit{axis}"), 0.0254)
        return None
    if file_type == "BMP":
        return scaled(tags.get(f"File:PixelsPerMeter{axis}"), 0.0254)
    if file_type == "GIF":
        return None
    unit = tags.get("IFD0:ResolutionUnit", 2)
    factor = {2: 1.0, 3: 2.54}.get(unit)
    return scaled(tags.get(f"IFD0:{axis}Resolution"), factor) if factor else None


FIELDS = ("format", "content_type", "width", "height", "orientation", "display_width", "display_height",
          "bit_depth", "animated", "dpi_x", "dpi_y", "camera_make", "camera_model", "software",
          "captured_at", "captured_at_offset", "gps_date_time", "gps_latitude", "gps_longitude",
          "gps_altitude", "title", "description", "keywords", "rating", "artist", "copyright")


def actual(meta: ImageMetadata) -> dict[str, Any]:
    values = {f: getattr(meta, f) for f in FIELDS}
    values["format"] = FORMAT_NAMES.get(meta.format or "", meta.format)
    return values


def _same(ours: Any, ref: Any, field: str = "") -> bool:
    if isinstance(ref, float) or isinstance(ours, float):
        tolerance = 0.011 if field.startswith("dpi") else 1e-6
        return ours is not None and ref is not None and abs(float(ours) - float(ref)) < tolerance
    return ours == ref


def compare(corpus: dict[str, bytes], oracle: dict[str, dict[str, Any]],
            skip: dict[str, set[str]] | None = None) -> dict[str, Any]:
    """Per field: files where exiftool has a value, files where both agree, and disagreements."""
    table: dict[str, dict[str, Any]] = {}
    for name in sorted(corpus):
        ours, ref = actual(extract_from_bytes(corpus[name])), expected(oracle[name])
        for field, want in ref.items():
            if field in (skip or {}).get(name, set()) or want is SKIP:
                continue
            row = table.setdefault(field, {"files": 0, "with_value": 0, "agree": 0, "disagree": []})
            row["files"] += 1
            row["with_value"] += want is not None
            if _same(ours[field], want, field):
                row["agree"] += 1
            else:
                row["disagree"].append({"file": name, "ours": ours[field], "exiftool": want})
    return table


def instant_from_exiftool(tags: dict[str, Any]) -> str | None:
    """CapturedAtUtc from exiftool's values where exiftool alone can know it (a recorded
    zone, or the GPS time stamp rounded to a quarter hour): the check for our instant."""
    exp = expected(tags)
    if not exp["captured_at"]:
        return None
    local = datetime.fromisoformat(exp["captured_at"])
    if exp["captured_at_offset"]:
        sign = -1 if exp["captured_at_offset"].startswith("-") else 1
        hours, minutes = exp["captured_at_offset"][1:].split(":")
        return (local - sign * timedelta(hours=int(hours), minutes=int(minutes))).isoformat()
    if exp["gps_date_time"]:
        gps = datetime.fromisoformat(exp["gps_date_time"])
        quarter = timedelta(minutes=15)
        return (local - round((local - gps) / quarter) * quarter).isoformat()
    return None


# Deliberate differences, each tested on its own: exiftool reads XMP packets that declare a
# DTD (the entity-expansion bomb's packet still holds xmp:Rating="5"); we refuse any DTD
# (defusedxml) and record a warning instead.
# exiftool 12.57 does not read HEIF's imir (mirror) property, so it cannot judge the orientation
# of a mirrored HEIC/AVIF; tests/test_extraction.py checks those against libheif's own decode.
# IPTC in a PNG text-chunk profile: exiftool reads it (IPTC:By-line ...) but its MWG composites
# use IPTC only beside a CurrentIPTCDigest, which it computes for Photoshop blocks alone; we use
# it as IPTC anywhere (a test checks our values against exiftool's IPTC tags).
DELIBERATE = {"xmp-bomb.jpg": {"rating"}, "magick-profiles.png": {"artist", "copyright"},
              **{f"{stem}.{ext}": {"orientation", "display_width", "display_height"}
                 for stem in ("imir-2", "irot-imir-5") for ext in ("heic", "avif")}}


def full_corpus() -> dict[str, bytes]:
    """Everything the oracle judges: the size/EXIF corpus, the descriptive-metadata corpus, the
    odd-but-valid images and one raw photo per TIFF-based raw format."""
    from bench.spec_files import odd_corpus, raw_corpus

    return {**samples.oracle_corpus(), **samples.metadata_corpus(), **odd_corpus(), **raw_corpus()}


def main() -> int:
    corpus = full_corpus()
    oracle = run_exiftool(corpus)
    table = compare(corpus, oracle, DELIBERATE)
    summary = {field: f"{row['agree']}/{row['files']} ({row['with_value']} with a value)"
               for field, row in table.items()}
    for row in table.values():
        row["agreement"] = round(row["agree"] / row["files"], 4) if row["files"] else None
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "oracle.json").write_text(json.dumps({"files": len(corpus), "fields": table}, indent=2,
                                                    default=str))
    print(json.dumps(summary, indent=2))
    return 0 if all(not row["disagree"] for row in table.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
