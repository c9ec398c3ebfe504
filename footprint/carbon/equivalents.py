"""Everyday equivalents of an emission or an energy, each with its factor's source.

These are for people reading a report; they are rough by nature (docs/methodology.md).
"""

from __future__ import annotations

#: Average US passenger car, tailpipe: 400 g CO2 per mile (EPA-420-F-23-014, 2023).
CAR_G_CO2_PER_KM = 400.0 / 1.609344
#: Energy to charge one smartphone (EPA Greenhouse Gas Equivalencies Calculator, references).
SMARTPHONE_CHARGE_KWH = 0.019

FACTORS = {
    "car_km": {
        "factor": CAR_G_CO2_PER_KM,
        "unit": "g CO2 per km",
        "source": "US EPA, 'Greenhouse Gas Emissions from a Typical Passenger Vehicle' "
        "(EPA-420-F-23-014): 400 g CO2/mile "
        "(https://www.epa.gov/greenvehicles/greenhouse-gas-emissions-typical-passenger-vehicle)",
    },
    "smartphone_charges": {
        "factor": SMARTPHONE_CHARGE_KWH,
        "unit": "kWh per charge",
        "source": "US EPA Greenhouse Gas Equivalencies Calculator, calculations and references "
        "(https://www.epa.gov/energy/greenhouse-gas-equivalencies-calculator-calculations-and-references)",
    },
}


def equivalents(emissions_kg: float | None, energy_kwh: float | None) -> dict[str, dict]:
    """{"car_km": {...}, "smartphone_charges": {...}} with value, factor, unit and source.

    Kilometres driven come from emissions; smartphone charges from energy (facility energy, so
    the same electricity). A missing input leaves that value None.
    """
    km = None if emissions_kg is None else emissions_kg * 1000.0 / CAR_G_CO2_PER_KM
    charges = None if energy_kwh is None else energy_kwh / SMARTPHONE_CHARGE_KWH
    return {
        "car_km": {"value": km, **FACTORS["car_km"]},
        "smartphone_charges": {"value": charges, **FACTORS["smartphone_charges"]},
    }
