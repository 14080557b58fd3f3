"""Loading, validating and reprojecting the vector layers; the analysis grid; GeoTIFF I/O."""


def _c_case_rules() -> None:
    """Give the C library ASCII case rules before GDAL loads.

    GDAL compares its option names with ``strcasecmp``, which follows
    LC_CTYPE. Under a Turkish or Azerbaijani locale 'I' and 'i' are not one
    letter's cases, so GDAL finds its own sorted option table unsorted and
    prints 57 error lines on load. Python sets LC_CTYPE from the environment
    at start-up; switching it to C.UTF-8 keeps UTF-8 (text, file names and
    the already opened stdout are unchanged) and only where the case rules
    are broken.
    """
    import ctypes
    import ctypes.util
    import locale

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        broken = libc.strcasecmp(b"I", b"i") != 0
    except (OSError, AttributeError, TypeError):  # no C library to ask (not a POSIX system)
        return
    if broken and locale.getencoding().lower().replace("-", "") == "utf8":
        locale.setlocale(locale.LC_CTYPE, "C.UTF-8")


_c_case_rules()

from .errors import InputError, escape  # noqa: E402 (after the locale fix, before anything loads GDAL)
from .grid import METRIC_CRS, Grid  # noqa: E402
from .stack import GIS_DATA, LayerStack, load  # noqa: E402
from .vector import WGS84, read_layer  # noqa: E402

__all__ = ["GIS_DATA", "METRIC_CRS", "WGS84", "Grid", "InputError", "escape", "LayerStack", "load", "read_layer"]
