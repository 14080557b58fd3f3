"""Loading, validating and reprojecting the vector layers; the analysis grid; GeoTIFF I/O."""

from .errors import InputError, escape
from .grid import METRIC_CRS, Grid
from .stack import GIS_DATA, LayerStack, load
from .vector import WGS84, read_layer

__all__ = ["GIS_DATA", "METRIC_CRS", "WGS84", "Grid", "InputError", "escape", "LayerStack", "load", "read_layer"]
