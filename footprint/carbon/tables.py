"""Read codecarbon's carbon-intensity tables from its files, without importing codecarbon.

codecarbon's data files are not a public API and differ from one another (units, keys, gases,
years). Each reader here returns one normalised form, :class:`TableRow`: g/kWh, basis, gas, year
and a source id from :data:`SOURCES`. A value of 0.0 or a missing value becomes ``None`` ("no
data"), never zero. Used by the index generator (:mod:`footprint.carbon.build_index`) and by the
tests that guard the files' shape; nothing here runs when a run starts.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

from footprint.errors import FootprintError

#: Pounds per MWh -> grams per kWh (1 lb = 453.59237 g; 1 MWh = 1000 kWh).
G_PER_KWH_PER_LB_PER_MWH = 0.45359237

#: The codecarbon files read, relative to its ``data/`` directory.
FILES = {
    "countries": "private_infra/global_energy_mix.json",
    "us_states": "private_infra/2023/usa_emissions.json",
    "canada_mix": "private_infra/2023/canada_energy_mix.json",
    "china": "private_infra/2023/china_provincial_emissions.json",
    "nordic": "private_infra/nordic_emissions.json",
    "per_source": "private_infra/carbon_intensity_per_source.json",
    "gcp": "cloud/impact.csv",
}

#: Every table's provenance. ``basis``: "life-cycle" (includes upstream emissions of plants and
#: fuels) or "direct" (combustion at the plant). ``gas``: "CO2e" (all greenhouse gases) or "CO2".
SOURCES: dict[str, dict] = {
    "owid": {
        "name": "Our World in Data / Ember, carbon intensity of electricity generation",
        "url": "https://ourworldindata.org/grapher/carbon-intensity-electricity",
        "basis": "life-cycle",
        "gas": "CO2e",
        "file": FILES["countries"],
    },
    "egrid": {
        "name": "US EPA eGRID2023, state annual CO2e total output emission rate (STC2ERTA)",
        "url": "https://www.epa.gov/egrid/download-data",
        "basis": "direct",
        "gas": "CO2e",
        "file": FILES["us_states"],
    },
    "canada-mix": {
        "name": "Canadian provincial generation mix (codecarbon canada_energy_mix.json) x "
        "per-source life-cycle factors (codecarbon carbon_intensity_per_source.json)",
        "url": "https://github.com/mlco2/codecarbon/tree/master/codecarbon/data/private_infra",
        "basis": "life-cycle",
        "gas": "CO2e",
        "file": FILES["canada_mix"],
    },
    "china-mee": {
        "name": "China MEE/NBS Announcement 2025 No. 47, provincial average electricity CO2 "
        "emission factors 2023",
        "url": "https://www.mee.gov.cn/xxgk2018/xxgk/xxgk01/202512/t20251231_1139517.html",
        "basis": "direct",
        "gas": "CO2",
        "file": FILES["china"],
    },
    "entsoe-nordic": {
        "name": "ENTSO-E actual generation per production type 2025, per bidding zone, x "
        "per-source life-cycle factors (codecarbon nordic_emissions.json)",
        "url": "https://transparency.entsoe.eu/",
        "basis": "life-cycle",
        "gas": "CO2e",
        "file": FILES["nordic"],
    },
    "gcp": {
        "name": "Google Cloud, carbon-free energy and grid carbon intensity per region "
        "(codecarbon impact.csv)",
        "url": "https://cloud.google.com/sustainability/region-carbon",
        "basis": "direct",
        "gas": "CO2e",
        "file": FILES["gcp"],
    },
}

# Canadian mix keys -> keys of carbon_intensity_per_source.json. Sources without a factor
# ("tidal", "other") stay in the denominator at 0, the method codecarbon's Nordic table uses.
_CANADA_SOURCE_KEYS = {
    "coal": "coal",
    "petroleum": "petroleum",
    "naturalGas": "natural_gas",
    "nuclear": "nuclear",
    "hydro": "hydroelectricity",
    "wind": "wind",
    "solar": "solar",
    "biomass": "biomass",
}

# codecarbon's impact.csv misspells this GCP region (Doha); the real id is me-central1.
GCP_REGION_FIXES = {"me-cenrtal1": "me-central1"}

# The Nordic table's "FI" row duplicates Finland with an unsourced "prior value"; the country
# table (OWID) is used for FI so all countries share one source. See docs/methodology.md.
NORDIC_SKIPPED = {"FI"}


class DataTableError(FootprintError):
    """codecarbon's data files moved or changed shape (a codecarbon upgrade?)."""


@dataclass(frozen=True)
class TableRow:
    """One region's intensity, normalised. ``key`` is the table's own key for the region."""

    key: str
    name: str
    g_per_kwh: float | None
    year: int | None
    source: str
    note: str | None = None


def data_dir() -> Path:
    """codecarbon's ``data/`` directory, found without importing codecarbon (~170 ms)."""
    spec = importlib.util.find_spec("codecarbon")
    if spec is None or not spec.submodule_search_locations:
        raise DataTableError(
            "codecarbon is not installed; footprint reads its data tables: "
            "pip install 'codecarbon>=3.3,<3.4'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not path.is_dir():
        raise DataTableError(f"codecarbon has no data directory at {path}")
    return path


def _path(name: str, root: Path | None) -> Path:
    path = (root or data_dir()) / FILES[name]
    if not path.is_file():
        raise DataTableError(
            f"codecarbon data file {FILES[name]} is missing under {path.parent}: "
            "its layout changed; update footprint/carbon/tables.py and the pin in pyproject.toml"
        )
    return path


def _load_json(name: str, root: Path | None) -> dict:
    with open(_path(name, root), encoding="utf-8") as f:
        return json.load(f)


def file_hashes(root: Path | None = None) -> dict[str, str]:
    """SHA-256 of every file read, so the shipped index can be checked against its sources."""
    return {
        rel: hashlib.sha256(_path(name, root).read_bytes()).hexdigest()
        for name, rel in FILES.items()
    }


def _intensity(value: object, where: str) -> float | None:
    """A table value in g/kWh, or None for "no data" (0.0, null, not finite)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataTableError(f"{where}: expected a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0.0:
        return None
    return value


def _shape(cond: bool, message: str) -> None:
    if not cond:
        raise DataTableError(f"codecarbon data changed shape: {message}")


def countries(root: Path | None = None) -> list[TableRow]:
    """Per-country intensity (OWID), keyed by ISO 3166 alpha-3."""
    data = _load_json("countries", root)
    rows = []
    for key, entry in sorted(data.items()):
        where = f"{FILES['countries']}[{key}]"
        _shape(isinstance(entry, dict) and "carbon_intensity" in entry, f"{where} has no intensity")
        value = _intensity(entry["carbon_intensity"], where)
        note = None if value is not None else f"{entry['carbon_intensity']!r} in the OWID table"
        rows.append(
            TableRow(key, entry.get("country_name", key), value, entry.get("year"), "owid", note)
        )
    _shape(len(rows) > 150, f"{FILES['countries']} has only {len(rows)} countries")
    return rows


def us_states(root: Path | None = None) -> list[TableRow]:
    """US states (eGRID), keyed by two-letter state code; lbs/MWh converted to g/kWh."""
    data = _load_json("us_states", root)
    _shape(data.get("_unit", {}).get("emissions") == "lbs/MWh", "US states are not in lbs/MWh")
    year = data.get("_source", {}).get("year")
    rows = []
    for name, entry in sorted(data.items()):
        if name.startswith("_") or name == "usa":  # metadata; the national row (see docs)
            continue
        where = f"{FILES['us_states']}[{name}]"
        _shape({"emissions", "regionCode"} <= set(entry), f"{where} lacks emissions/regionCode")
        lbs = _intensity(entry["emissions"], where)
        value = None if lbs is None else lbs * G_PER_KWH_PER_LB_PER_MWH
        rows.append(TableRow(entry["regionCode"], name.title(), value, year, "egrid"))
    _shape(len(rows) >= 50, f"{FILES['us_states']} has only {len(rows)} states")
    return rows


def canada_provinces(root: Path | None = None) -> list[TableRow]:
    """Canadian provinces, keyed by lowercase name: intensity derived from the generation mix."""
    mix = _load_json("canada_mix", root)
    factors = _load_json("per_source", root)
    year = int(Path(FILES["canada_mix"]).parent.name)  # the file has no year; its folder does
    rows = []
    for name, shares in sorted(mix.items()):
        where = f"{FILES['canada_mix']}[{name}]"
        _shape("total" in shares, f"{where} has no total")
        unknown = set(shares) - set(_CANADA_SOURCE_KEYS) - {"total", "tidal", "other"}
        _shape(not unknown, f"{where} has unknown sources {sorted(unknown)}")
        total = float(shares["total"])
        weighted = sum(
            float(shares.get(k, 0.0)) * float(factors[f]) for k, f in _CANADA_SOURCE_KEYS.items()
        )
        value = _intensity(weighted / total if total > 0 else None, where)
        uncovered = float(shares.get("tidal", 0.0)) + float(shares.get("other", 0.0))
        note = f"{uncovered:g}% of generation (tidal, other) has no factor" if uncovered else None
        rows.append(TableRow(name, name.title(), value, year, "canada-mix", note))
    _shape(len(rows) >= 10, f"{FILES['canada_mix']} has only {len(rows)} provinces")
    return rows


def china_provinces(root: Path | None = None) -> list[TableRow]:
    """Chinese provinces (MEE/NBS, CO2 only), keyed by ISO 3166-2 code (``CN-BJ``)."""
    data = _load_json("china", root)
    _shape("data" in data, f"{FILES['china']} has no 'data'")
    rows = []
    for code, entry in sorted(data["data"].items()):
        where = f"{FILES['china']}[{code}]"
        _shape(entry.get("unit") == "gCO2/kWh", f"{where} unit is {entry.get('unit')!r}")
        value = _intensity(entry.get("emission_factor"), where)
        rows.append(
            TableRow(code, entry.get("description", code), value, entry.get("year"), "china-mee")
        )
    return rows


def nordic_zones(root: Path | None = None) -> list[TableRow]:
    """Swedish and Norwegian bidding zones, keyed ``SE1``...``NO5`` (the FI row is skipped)."""
    data = _load_json("nordic", root)
    _shape("data" in data, f"{FILES['nordic']} has no 'data'")
    rows = []
    for key, entry in sorted(data["data"].items()):
        if key in NORDIC_SKIPPED:
            continue
        where = f"{FILES['nordic']}[{key}]"
        _shape(entry.get("unit") == "gCO2eq/kWh", f"{where} unit is {entry.get('unit')!r}")
        value = _intensity(entry.get("emission_factor"), where)
        note = entry.get("note") if key == "SE4" else None  # SE4 is documented as a lower bound
        rows.append(
            TableRow(
                key, entry.get("description", key), value, entry.get("year"), "entsoe-nordic", note
            )
        )
    return rows


def gcp_regions(root: Path | None = None) -> list[tuple[TableRow, str]]:
    """GCP regions (no year in the file) with their country's alpha-3 code."""
    text = _path("gcp", root).read_text(encoding="utf-8-sig")  # the file starts with a BOM
    reader = csv.DictReader(io.StringIO(text))
    needed = {"provider", "region", "city", "countryIsoCode", "impact"}
    _shape(needed <= set(reader.fieldnames or ()), f"{FILES['gcp']} header is {reader.fieldnames}")
    rows = []
    for line in reader:
        if line["provider"] != "gcp":
            continue
        region = GCP_REGION_FIXES.get(line["region"], line["region"])
        where = f"{FILES['gcp']}[{line['region']}]"
        value = _intensity(float(line["impact"]) if line["impact"] else None, where)
        rows.append((TableRow(region, line["city"], value, None, "gcp"), line["countryIsoCode"]))
    _shape(len(rows) >= 20, f"{FILES['gcp']} has only {len(rows)} GCP regions")
    return rows
