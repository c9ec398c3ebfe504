"""What-if: a finished run's energy in other regions (same IT energy, same PUE)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from footprint.carbon.regions import canonical_region, carbon_intensity, list_regions
from footprint.errors import RegionError


def whatif(
    record: Mapping,
    regions: Sequence[str] | None = None,
    *,
    kinds: Sequence[str] | None = None,
) -> list[dict]:
    """Rows sorted by emissions: the run's emissions had it run in each region.

    ``regions``: codes or names (an unknown one raises RegionError); default: every region
    with data (optionally only ``kinds``, e.g. ``("country",)``). Each row: region, name, kind,
    g_per_kwh, emissions_kg, source, year, basis, gas, this_run (the run's own region).
    Uses the tables' annual figures, even if the run itself used an hourly file.
    """
    energy_kwh = record.get("energy_kwh")
    if energy_kwh is None:
        raise RegionError("the run has no energy_kwh: nothing to compare")
    carbon = record.get("carbon") or {}
    pue = float(carbon.get("pue") or 1.0)
    own = carbon.get("region")
    if regions is None:
        codes = [row["region"] for row in list_regions(tuple(kinds) if kinds else None)]
    else:
        codes = list(dict.fromkeys(canonical_region(r) for r in regions))
    rows = []
    for code in codes:
        i = carbon_intensity(code)
        rows.append(
            {
                "region": code,
                "name": i.name,
                "kind": i.kind,
                "g_per_kwh": i.g_per_kwh,
                "emissions_kg": energy_kwh * pue * i.g_per_kwh / 1000.0,
                "source": i.source,
                "year": i.year,
                "basis": i.basis,
                "gas": i.gas,
                "this_run": code == own,
            }
        )
    rows.sort(key=lambda r: (r["emissions_kg"], r["region"]))
    return rows
