"""Vision Valley Twin: the agent-based model of 中国视谷 on the layers of :mod:`layers`."""

__version__ = "0.1.0"
