"""The public entry point: ``from twin.model import VisionValleyModel``.

The model itself lives in :mod:`twin.simulation.model`; this name is kept so
notebooks and ``mesa.batch_run`` calls written against it keep working.
"""

from .simulation.model import VisionValleyModel

__all__ = ["VisionValleyModel"]
