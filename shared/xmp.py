"""The XMP properties people search by, read with defusedxml (never a hand-written parser).

An XMP packet is RDF/XML: a property may be an attribute of an ``rdf:Description``
or a child element holding text or an ``rdf:Bag``/``rdf:Seq``/``rdf:Alt`` list.
defusedxml refuses DTDs, entity declarations and external references, so an XML
bomb raises instead of expanding; the caller records that as a field-level warning.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeElementTree

RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
DC = "{http://purl.org/dc/elements/1.1/}"
XMP = "{http://ns.adobe.com/xap/1.0/}"
EXIF = "{http://ns.adobe.com/exif/1.0/}"
PHOTOSHOP = "{http://ns.adobe.com/photoshop/1.0/}"

# Property (Clark notation) -> our key. Lists stay lists; language alternatives give x-default.
WANTED: dict[str, str] = {
    f"{EXIF}DateTimeOriginal": "date_time_original",
    f"{PHOTOSHOP}DateCreated": "date_created",
    f"{XMP}Rating": "rating",
    f"{DC}subject": "subject",
    f"{DC}title": "title",
    f"{DC}description": "description",
    f"{DC}creator": "creator",
    f"{DC}rights": "rights",
    f"{EXIF}GPSLatitude": "gps_latitude",
    f"{EXIF}GPSLongitude": "gps_longitude",
    f"{EXIF}GPSAltitude": "gps_altitude",
    f"{EXIF}GPSAltitudeRef": "gps_altitude_ref",
}
END_MARKER = b"<?xpacket end="
MAX_PACKET = 4 * 1024 * 1024  # far above any real packet (JPEG caps one at 64 KiB)


class XmpError(ValueError):
    """The packet could not be read safely: too large, not XML, or forbidden constructs."""


def _items(element: Element) -> list[str] | str | None:
    """A property's value: its list items (x-default first for an Alt), or its text."""
    for container in ("Bag", "Seq", "Alt"):
        holder = element.find(f"{RDF}{container}")
        if holder is not None:
            items = [li for li in holder.findall(f"{RDF}li")]
            if container == "Alt":
                items.sort(key=lambda li: li.get(XML_LANG, "") != "x-default")
            return [li.text or "" for li in items]
    if element.get(f"{RDF}resource") is not None:
        return element.get(f"{RDF}resource")
    return element.text


def packet_body(packet: bytes) -> bytes:
    """The packet up to its end marker (``<?xpacket end="w"?>``): what follows it is padding
    or a writer's junk (GIF's magic trailer, an editor's leftovers), never XMP; a packet
    without the wrapper ends at ``</x:xmpmeta>``."""
    end = packet.find(END_MARKER)
    if end >= 0:
        close = packet.find(b"?>", end)
        if close >= 0:
            return packet[: close + 2]
    meta_end = packet.rfind(b"</x:xmpmeta>")
    if meta_end >= 0:
        return packet[: meta_end + len(b"</x:xmpmeta>")]
    return packet.rstrip(b"\x00 \r\n\t")


def gps_coordinate(value: object, negative: str, bound: float) -> float | None:
    """An XMP GPS coordinate ("DDD,MM,SSk" or "DDD,MM.mmk", k = N/S/E/W) in signed degrees."""
    if not isinstance(value, str) or len(value) < 3:
        return None
    text, ref = value.strip()[:-1], value.strip()[-1].upper()
    if ref not in "NSEW":
        return None
    try:
        parts = [float(p) for p in text.split(",")]
    except ValueError:
        return None
    if not 1 <= len(parts) <= 3 or any(p < 0 for p in parts):
        return None
    degrees = parts[0] + (parts[1] / 60 if len(parts) > 1 else 0) + (parts[2] / 3600 if len(parts) > 2 else 0)
    degrees = -degrees if ref == negative else degrees
    return round(degrees, 7) if -bound <= degrees <= bound else None


def parse_xmp(packet: bytes | str) -> dict[str, Any]:
    """The wanted properties of an XMP packet; raises XmpError when it cannot be read safely."""
    if isinstance(packet, str):
        packet = packet.encode("utf-8", "surrogatepass")
    if len(packet) > MAX_PACKET:
        raise XmpError(f"XMP packet of {len(packet)} bytes is over {MAX_PACKET}")
    try:
        root = SafeElementTree.fromstring(packet_body(packet), forbid_dtd=True)
    except Exception as exc:  # noqa: BLE001 - defusedxml and expat raise several types
        raise XmpError(f"{type(exc).__name__}: {exc}") from None
    found: dict[str, Any] = {}
    for description in root.iter(f"{RDF}Description"):
        for name, value in description.attrib.items():
            key = WANTED.get(name)
            if key and key not in found:
                found[key] = value
        for child in description:
            key = WANTED.get(child.tag)
            if key and key not in found:
                value = _items(child)
                if value is not None:
                    found[key] = value
    return found
