"""Unit conversions, in one place. SI at every interface; the unit is in every name."""

from __future__ import annotations

J_PER_KWH = 3.6e6
J_PER_WH = 3600.0


def j_to_kwh(energy_j: float) -> float:
    return energy_j / J_PER_KWH


def kwh_to_j(energy_kwh: float) -> float:
    return energy_kwh * J_PER_KWH


def j_to_wh(energy_j: float) -> float:
    return energy_j / J_PER_WH


def emissions_kg(energy_kwh: float, carbon_intensity_g_per_kwh: float, pue: float = 1.0) -> float:
    """Operational emissions in kg CO2e: IT energy x PUE x grid intensity."""
    return energy_kwh * pue * carbon_intensity_g_per_kwh / 1000.0
