"""Capture time from EXIF, XMP and IPTC, and the absolute instant (UTC) where it can be known.

Local time, in exiftool's order: EXIF DateTimeOriginal, then XMP ``exif:DateTimeOriginal``,
then IPTC DateCreated + TimeCreated, then XMP ``photoshop:DateCreated`` (the MWG order for
the last two). The instant, in the order exiftool-based tools (Immich, through
exiftool-vendored) infer a zone: the offset recorded with the time (EXIF
OffsetTimeOriginal; XMP's or IPTC's zone designator), else the GPS date/time stamp
(UTC by definition; the offset it implies is rounded to a quarter hour), else the time
zone at the GPS position. Each result says which source gave it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_OFFSET = timedelta(hours=14)
_ISO = re.compile(
    r"^(\d{4})[-:](\d{2})[-:](\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$"
)
_ZONE = re.compile(r"([+-])(\d{2}):?(\d{2})")
_EXIF_TIME = re.compile(r"(\d{4}):(\d{2}):(\d{2}) (\d{2}):(\d{2}):(\d{2})")
_EXIF_OFFSET = re.compile(r"^[+-](?:[01]\d|2[0-3]):[0-5]\d$")


@dataclass(frozen=True)
class LocalTime:
    """A wall-clock time as recorded, with the offset recorded beside it (if any)."""

    value: datetime
    offset: timedelta | None
    source: str  # exif | xmp | iptc


@lru_cache(maxsize=256)
def format_offset(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@lru_cache(maxsize=256)
def _offset(text: str | None) -> timedelta | None:
    """'Z', '+02:00', '+0200' -> timedelta; None if missing or out of range."""
    if not text:
        return None
    if text == "Z":
        return timedelta(0)
    match = _ZONE.fullmatch(text)
    if not match or int(match[3]) > 59:
        return None
    value = timedelta(hours=int(match[2]), minutes=int(match[3]))
    value = -value if match[1] == "-" else value
    return value if abs(value) <= MAX_OFFSET else None


def parse_exif(value: str | None, offset: str | None) -> LocalTime | None:
    """EXIF 'YYYY:MM:DD HH:MM:SS' plus OffsetTimeOriginal."""
    match = _EXIF_TIME.match(value) if value else None
    if not match:
        return None
    try:
        parsed = datetime(*(int(part) for part in match.groups()))
    except ValueError:
        return None
    zone = _offset(offset) if offset and _EXIF_OFFSET.match(offset) else None
    return LocalTime(parsed, zone, "exif")


def parse_xmp(value: str | None, source: str = "xmp") -> LocalTime | None:
    """An XMP date (ISO 8601, optional seconds and zone; exiftool also accepts ':' separators).
    A date without a time of day is not a capture time and is skipped."""
    if not isinstance(value, str):
        return None
    match = _ISO.match(value.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, zone = match.groups()
    try:
        parsed = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
    except ValueError:
        return None
    offset = _offset(zone)
    if zone and offset is None:
        return None
    return LocalTime(parsed, offset, source)


def parse_iptc(date: str | None, time: str | None) -> LocalTime | None:
    """IPTC 2:55 'CCYYMMDD' + 2:60 'HHMMSS±HHMM'; both are needed for a time of day."""
    if not date or not time:
        return None
    match = re.fullmatch(r"(\d{2})(\d{2})(\d{2})([+-]\d{4})?", time.strip())
    if not match:
        return None
    try:
        parsed = datetime.strptime(date.strip(), "%Y%m%d").replace(
            hour=int(match[1]), minute=int(match[2]), second=int(match[3]))
    except ValueError:
        return None
    return LocalTime(parsed, _offset(match[4]), "iptc")


def choose(*candidates: LocalTime | None) -> LocalTime | None:
    """The first known time; a later source with the same wall-clock time may lend its zone
    (Lightroom writes XMP's zoned copy of an EXIF time that has no OffsetTimeOriginal)."""
    known = [c for c in candidates if c is not None]
    if not known:
        return None
    first = known[0]
    if first.offset is None:
        for other in known[1:]:
            if other.offset is not None and other.value == first.value:
                return LocalTime(first.value, other.offset, first.source + "+" + other.source)
    return first


def gps_date_time(date_stamp: str | None, hms: tuple[float, float, float] | None) -> datetime | None:
    """GPSDateStamp 'YYYY:MM:DD' + GPSTimeStamp (h, m, s), naive UTC."""
    if not date_stamp or hms is None:
        return None
    try:
        day = datetime.strptime(date_stamp.strip()[:10], "%Y:%m:%d")
    except ValueError:
        return None
    hours, minutes, seconds = hms
    if not (0 <= hours < 24 and 0 <= minutes < 60 and 0 <= seconds < 61):
        return None
    return day + timedelta(hours=hours, minutes=minutes, seconds=int(seconds))


class ImpossibleInstant(ValueError):
    """The recorded time with its offset (or zone) falls outside the calendar (year 1-9999)."""


@dataclass(frozen=True)
class Instant:
    utc: datetime  # naive, UTC
    source: str  # exif-offset | xmp-zone | iptc-zone | gps-time | gps-position


def instant(local: LocalTime | None, gps_utc: datetime | None,
            zone_at_position: Callable[[], str | None] | None) -> Instant | None:
    """The absolute instant of a local capture time, from the best evidence available; the
    zone at the GPS position is asked for only when nothing better decides. Raises
    ImpossibleInstant when that instant cannot exist (``0001:01:01 00:00:00`` at +01:00)."""
    try:
        return _instant(local, gps_utc, zone_at_position)
    except OverflowError:
        raise ImpossibleInstant(f"{local.value if local else None} with its offset is outside "
                                "years 1-9999") from None


def _instant(local: LocalTime | None, gps_utc: datetime | None,
             zone_at_position: Callable[[], str | None] | None) -> Instant | None:
    if local is None:
        return None
    if local.offset is not None:
        source = local.source.split("+")[-1]
        kind = {"exif": "exif-offset", "xmp": "xmp-zone", "iptc": "iptc-zone"}[source]
        return Instant(local.value - local.offset, kind)
    if gps_utc is not None:
        quarter = timedelta(minutes=15)
        offset = round((local.value - gps_utc) / quarter) * quarter
        residual = abs(local.value - gps_utc - offset)
        if abs(offset) <= MAX_OFFSET and residual <= timedelta(minutes=5):
            return Instant(local.value - offset, "gps-time")
    zone_name = zone_at_position() if zone_at_position else None
    if zone_name:
        try:
            zone = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            return None
        aware = local.value.replace(tzinfo=zone)
        return Instant(aware.astimezone(UTC).replace(tzinfo=None), "gps-position")
    return None
