"""footprint: measure the energy and carbon footprint of machine-learning runs."""

from footprint._version import __version__

__all__ = ["__version__"]
