"""GCJ-02 <-> WGS-84 conversion.

高德 (Amap) boundaries are published in GCJ-02, an obfuscated datum about
500 m off WGS-84 around Hangzhou. Web tiles and GPS are WGS-84, so
``gis_data/build.py`` converts once, and the tests use the forward transform to
prove the stored boundaries are not GCJ-02. The formula is the public
"eviltransform" one; the inverse is solved by fixed-point iteration, which
converges to well under a millimetre in a few rounds.
"""

from __future__ import annotations

import numpy as np
import shapely

_A = 6378245.0  # Krasovsky 1940 semi-major axis used by the GCJ-02 formula
_EE = 0.00669342162296594323  # its first eccentricity squared


def _offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the GCJ-02 shift (degrees) at WGS-84 positions."""
    x, y = lon - 105.0, lat - 35.0
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    dlat += common
    dlat += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    dlon += common
    dlon += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    radlat = np.radians(lat)
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    return dlon, dlat


def wgs84_to_gcj02(coords: np.ndarray) -> np.ndarray:
    """Shift an (N, 2) array of WGS-84 lon/lat to GCJ-02."""
    coords = np.asarray(coords, dtype=np.float64)
    dlon, dlat = _offset(coords[:, 0], coords[:, 1])
    return np.column_stack([coords[:, 0] + dlon, coords[:, 1] + dlat])


def gcj02_to_wgs84(coords: np.ndarray, rounds: int = 8) -> np.ndarray:
    """Invert :func:`wgs84_to_gcj02` on an (N, 2) array by fixed-point iteration."""
    target = np.asarray(coords, dtype=np.float64)
    guess = target.copy()
    for _ in range(rounds):
        guess = guess - (wgs84_to_gcj02(guess) - target)
    return guess


def geometry_gcj02_to_wgs84(geoms: np.ndarray) -> np.ndarray:
    """Convert shapely geometries (an array or one geometry) from GCJ-02 to WGS-84."""
    return shapely.transform(geoms, gcj02_to_wgs84)


def geometry_wgs84_to_gcj02(geoms: np.ndarray) -> np.ndarray:
    """Convert shapely geometries from WGS-84 to GCJ-02."""
    return shapely.transform(geoms, wgs84_to_gcj02)
