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
FORMAT_NAMES = {"Extended WEBP": "WEBP", "HEIC": "HEIF", "MPO": "JPEG"}
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
    for name, tags in groups.items():
        tags.update({f"MWG:{k}": v for k, v in mwg[name].items() if k != "SourceFile"})
        tags.update({f"Latin:{k}": v for k, v in latin[name].items() if k != "SourceFile"})
    return groups


def _text(tags: dict[str, Any], key: str) -> Any:
    """exiftool's text with our documented differences applied."""
    value = tags.get(key)
    if value is None:
        return None
    value = str(value)
    latin = tags.get(f"Latin:{key}")
    if "?" in value and isinstance(latin, str) and latin != value:
        value = latin
    value = value.strip()
    if not value or not value.isprintable():
        return None
    return value


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
    return {
        "format": FORMAT_NAMES.get(tags["File:FileType"], tags["File:FileType"]),
        "width": _dimension(tags, "ImageWidth"),
        "height": _dimension(tags, "ImageHeight"),
        "orientation": orientation,
        "camera_make": _text(tags, "IFD0:Make"),
        "camera_model": _text(tags, "IFD0:Model"),
        "software": _text(tags, "IFD0:Software"),
        "captured_at": local,
        "captured_at_offset": zone,
        "gps_date_time": _split_time(gps_time)[0],
        "gps_latitude": tags.get("GPS:GPSLatitude") if "GPS:GPSLatitudeRef" not in tags
        else tags["GPS:GPSLatitude"] * (-1 if tags["GPS:GPSLatitudeRef"] == "S" else 1),
        "gps_longitude": tags.get("GPS:GPSLongitude") if "GPS:GPSLongitudeRef" not in tags
        else tags["GPS:GPSLongitude"] * (-1 if tags["GPS:GPSLongitudeRef"] == "W" else 1),
        "title": ordered("XMP-dc:Title", "IPTC:ObjectName"),
        "description": _text(tags, "IFD0:ImageDescription") or _text(tags, "MWG:Description"),
        "keywords": _list(keywords),
        "rating": tags.get("MWG:Rating"),
        "artist": _text(tags, "IFD0:Artist") or "; ".join(_list(creator) or []) or None,
        "copyright": _text(tags, "IFD0:Copyright") or _text(tags, "MWG:Copyright"),
    }


def actual(meta: ImageMetadata) -> dict[str, Any]:
    fields = ("format", "width", "height", "orientation", "camera_make", "camera_model", "software",
              "captured_at", "captured_at_offset", "gps_date_time", "gps_latitude", "gps_longitude",
              "title", "description", "keywords", "rating", "artist", "copyright")
    values = {f: getattr(meta, f) for f in fields}
    values["format"] = FORMAT_NAMES.get(meta.format or "", meta.format)
    return values


def _same(ours: Any, ref: Any) -> bool:
    if isinstance(ref, float) or isinstance(ours, float):
        return ours is not None and ref is not None and abs(float(ours) - float(ref)) < 1e-6
    return ours == ref


def compare(corpus: dict[str, bytes], oracle: dict[str, dict[str, Any]],
            skip: dict[str, set[str]] | None = None) -> dict[str, Any]:
    """Per field: files where exiftool has a value, files where both agree, and disagreements."""
    table: dict[str, dict[str, Any]] = {}
    for name in sorted(corpus):
        ours, ref = actual(extract_from_bytes(corpus[name])), expected(oracle[name])
        for field, want in ref.items():
            if field in (skip or {}).get(name, set()):
                continue
            row = table.setdefault(field, {"files": 0, "with_value": 0, "agree": 0, "disagree": []})
            row["files"] += 1
            row["with_value"] += want is not None
            if _same(ours[field], want):
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
DELIBERATE = {"xmp-bomb.jpg": {"rating"}}


def main() -> int:
    corpus = {**samples.oracle_corpus(), **samples.metadata_corpus()}
    oracle = run_exiftool(corpus)
    table = compare(corpus, oracle, DELIBERATE)
    summary = {field: f"{row['agree']}/{row['files']} ({row['with_value']} with a value)"
               for field, row in table.items()}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "oracle.json").write_text(json.dumps({"files": len(corpus), "fields": table}, indent=2,
                                                    default=str))
    print(json.dumps(summary, indent=2))
    return 0 if all(not row["disagree"] for row in table.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
