"""Carbon model: grid region -> g CO2e/kWh, PUE, hourly intensity, embodied emissions, what-if.

Pure functions over data tables; nothing here touches the network, imports codecarbon, or
(on the tracker's path) pycountry. See docs/methodology.md for every formula and source.
"""

from __future__ import annotations

from footprint.carbon.equivalents import equivalents
from footprint.carbon.model import CarbonSetup, emissions_for, recompute, resolve
from footprint.carbon.regions import (
    CarbonIntensity,
    canonical_region,
    carbon_intensity,
    list_regions,
    search_regions,
)
from footprint.carbon.whatif import whatif

__all__ = [
    "CarbonIntensity",
    "CarbonSetup",
    "canonical_region",
    "carbon_intensity",
    "emissions_for",
    "equivalents",
    "list_regions",
    "recompute",
    "resolve",
    "search_regions",
    "whatif",
]
