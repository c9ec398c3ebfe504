"""What-if: a finished run's energy in other regions (same IT energy, same PUE)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from footprint.carbon.regions import canonical_region, carbon_intensity, list_regions

if TYPE_CHECKING:
    from footprint.record import RunRecord

#: Kinds of intensity that come from footprint's tables (the others: user, hourly, imported).
TABLE_KINDS = ("country", "subregion", "zone", "cloud")


def used_table_value(record: RunRecord, g_per_kwh: float) -> bool:
    """True when the run's emissions used this table figure for its own region (not a
    user-given value, an intensity file, another tool's figure, or an older table's value)."""
    carbon = record.carbon
    applied = record.carbon_intensity_g_per_kwh
    return (
        carbon is not None
        and carbon.kind in TABLE_KINDS
        and not carbon.hourly
        and applied is not None
        and math.isclose(float(applied), g_per_kwh, rel_tol=1e-9)
    )


def whatif(
    record: RunRecord | Mapping[str, Any],
    regions: Sequence[str] | None = None,
    *,
    kinds: Sequence[str] | None = None,
) -> list[dict]:
    """Rows sorted by emissions: the run's emissions had it run in each region.

    ``regions``: codes or names (an unknown one raises RegionError); default: every region
    with data (optionally only ``kinds``, e.g. ``("country",)``). Each row: region, name, kind,
    g_per_kwh, emissions_kg, source, year, basis, gas, own_region (the run's own region),
    this_run (the run's own region *and* its emissions used this very table figure: not when
    it used a user-given value, an intensity file or an imported tool's figure).
    Uses the tables' annual figures, even if the run itself used an hourly file; the PUE is the
    run's (an imported run's included).
    """
    from footprint.record import as_record

    record = as_record(record)
    energy_kwh = record.energy_kwh
    pue = record.effective_pue
    own = (record.carbon.region if record.carbon else None) or record.region
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
                "own_region": code == own,
                "this_run": code == own and used_table_value(record, i.g_per_kwh),
            }
        )
    rows.sort(key=lambda r: (r["emissions_kg"], r["region"]))
    return rows
