"""Region -> grid carbon intensity, from the precomputed index ``footprint/data/regions.json``.

Resolution on the run's start path is a JSON load (once per process, ~1 ms) and a dict lookup.
pycountry and rapidfuzz are imported only to explain a failure (closest matches, a valid ISO
3166-2 code without data). There is no default region: no region means no intensity.

Precedence (the most specific region wins): a region id names exactly one entry. A cloud region
uses its provider's own figure where one exists (GCP), otherwise the grid region our table maps it
to (AWS, Azure); a sub-region (``US-CA``) or zone (``SE-SE3``) uses its own table, never the
country's; a country uses the per-country table. See docs/methodology.md.
"""

from __future__ import annotations

import json
import math
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path

from footprint.errors import RegionError

INDEX_PATH = Path(__file__).resolve().parent.parent / "data" / "regions.json"
CLOUD_PROVIDERS = ("aws", "azure", "gcp")


@dataclass(frozen=True)
class CarbonIntensity:
    """A grid carbon intensity and where it came from.

    ``basis`` is ``"life-cycle"`` (plant construction and fuel supply included) or ``"direct"``
    (combustion only); ``gas`` is ``"CO2e"`` or ``"CO2"``. ``kind`` is one of ``"country"``,
    ``"subregion"``, ``"zone"``, ``"cloud"``, ``"user"``, ``"hourly"``. ``region`` is the canonical
    id (``"FR"``, ``"US-CA"``, ``"SE-SE3"``, ``"aws:us-east-1"``); for a cloud region resolved
    through the grid, ``grid_region`` is the grid location whose figure is used.
    """

    g_per_kwh: float
    source: str
    year: int | None
    basis: str
    gas: str
    region: str | None
    kind: str
    name: str | None = None
    source_url: str | None = None
    grid_region: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["notes"] = list(self.notes)
        return d


def load_index(path: Path | None = None) -> dict:
    """The region index (cached after the first call for the default path)."""
    if path is not None:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    from footprint import runtime

    return runtime.get().cached(
        "regions", lambda: json.loads(INDEX_PATH.read_text(encoding="utf-8"))
    )


def _fold(text: str) -> str:
    """The form aliases are stored in (see build_index._fold)."""
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_text = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(ascii_text.lower().split())


def _key(text: str) -> str:
    text = text.strip()
    if ":" in text:  # "AWS : us-east-1" -> "aws:us-east-1"
        provider, _, rest = text.partition(":")
        return f"{provider.strip().lower()}:{rest.strip().lower()}"
    return _fold(text)


def canonical_region(region: str) -> str:
    """The canonical id of ``region`` (code, name, zone or cloud region; case-insensitive).

    Raises RegionError, with the closest matches, if it is unknown or ambiguous.
    """
    if not isinstance(region, str):
        raise RegionError(
            f"region must be a string such as 'FR', 'US-CA' or 'aws:us-east-1', "
            f"not {type(region).__name__}"
        )
    if not region.strip():
        raise RegionError("region is empty: pass a code such as 'FR', or region=None")
    index = load_index()
    hit = index["aliases"].get(_key(region))
    if isinstance(hit, str):
        return hit
    if isinstance(hit, list):
        regions = index["regions"]
        options = ", ".join(f"{c} ({regions[c]['name']}, {regions[c]['kind']})" for c in hit)
        raise RegionError(f"region {region!r} is ambiguous: it may be {options}; pass the code")
    raise RegionError(_unknown_message(region, index))


def carbon_intensity(region: str) -> CarbonIntensity:
    """The grid carbon intensity of ``region`` from footprint's tables.

    ``region``: ISO 3166 alpha-2/alpha-3 code or country name, ISO 3166-2 sub-region
    (``"US-CA"``, ``"CA-QC"``, ``"CN-BJ"``), Electricity Maps zone id (``"SE-SE3"``), or cloud
    region (``"gcp:europe-west9"``, ``"aws:us-east-1"``, ``"azure:westeurope"``).
    Raises RegionError if the region is unknown, ambiguous, or has no data (0.0 or missing in the
    source table is "no data", never zero).
    """
    code = canonical_region(region)
    index = load_index()
    entry = index["regions"][code]
    grid = entry.get("grid_region")
    data = index["regions"][grid] if grid else entry
    value = data.get("g_per_kwh")
    if value is None:
        raise RegionError(_no_data_message(code, entry, index))
    source = index["sources"][data["source"]]
    notes = []
    if grid:
        notes.append(
            f"{code} ({entry['name']}) is in grid region {grid} per {entry['mapping_url']}; "
            f"that grid's intensity is used"
        )
    if data.get("note"):
        notes.append(f"{grid or code}: {data['note']}")
    if data["source"] == "gcp":
        notes.append("Google's table (via codecarbon) states no year")
    return CarbonIntensity(
        g_per_kwh=float(value),
        source=source["name"],
        year=data.get("year"),
        basis=source["basis"],
        gas=source["gas"],
        region=code,
        kind=entry["kind"],
        name=entry["name"],
        source_url=source["url"],
        grid_region=grid,
        notes=tuple(notes),
    )


def user_intensity(g_per_kwh: float, region: str | None = None) -> CarbonIntensity:
    """A user-given intensity (kind ``"user"``), validated; ``region`` only labels it."""
    value = check_positive(g_per_kwh, "carbon_intensity", "g CO2e/kWh, e.g. carbon_intensity=120")
    return CarbonIntensity(
        g_per_kwh=value,
        source="user-supplied",
        year=None,
        basis="unknown",
        gas="CO2e",
        region=region,
        kind="user",
        name=None,
    )


def check_positive(value: object, what: str, hint: str) -> float:
    """``value`` as a finite float > 0, else a ValueError (RegionError) naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RegionError(f"{what} must be a number ({hint}), not {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0.0:
        raise RegionError(f"{what} must be a finite number greater than 0 ({hint}), not {value!r}")
    return value


def region_provider(code: str | None) -> str | None:
    """``"aws"`` for ``"aws:us-east-1"``; None for a non-cloud region."""
    if code and ":" in code:
        return code.split(":", 1)[0]
    return None


def list_regions(kinds: tuple[str, ...] | None = None, with_data_only: bool = True) -> list[dict]:
    """Every region as a row: region, name, kind, g_per_kwh, source, year, basis, gas."""
    index = load_index()
    rows = []
    for code, entry in index["regions"].items():
        if kinds and entry["kind"] not in kinds:
            continue
        grid = entry.get("grid_region")
        data = index["regions"][grid] if grid else entry
        if with_data_only and data.get("g_per_kwh") is None:
            continue
        source = index["sources"].get(data.get("source") or "", {})
        rows.append(
            {
                "region": code,
                "name": entry["name"],
                "kind": entry["kind"],
                "g_per_kwh": data.get("g_per_kwh"),
                "source": data.get("source"),
                "year": data.get("year"),
                "basis": source.get("basis"),
                "gas": source.get("gas"),
                "grid_region": grid,
            }
        )
    return rows


def search_regions(query: str, limit: int = 20, kinds: tuple[str, ...] | None = None) -> list[dict]:
    """Regions whose code, name or (cloud) location contains ``query`` (case-insensitive).

    Rows are those of :func:`list_regions` plus ``match``: ``"contains"`` for a containment
    match, ``"closest"`` when nothing contains ``query`` and the rows are the closest names
    instead (fuzzy; they need not contain it). ``kinds`` keeps only those kinds, before the
    ``limit`` is applied.
    """
    index = load_index()
    q = _key(query)
    codes: list[str] = []
    for table in (index["aliases"], index.get("search_aliases", {})):
        for alias, target in table.items():
            if q in alias:
                for code in [target] if isinstance(target, str) else target:
                    if code not in codes:
                        codes.append(code)
    match = "contains"
    if codes:
        exact = index["aliases"].get(q) or index.get("search_aliases", {}).get(q)
        exact = [exact] if isinstance(exact, str) else (exact or [])
        codes.sort(key=lambda c: (c not in exact, len(c), c))
    else:
        match = "closest"
        codes = _closest(query, index, limit=None if kinds else limit)  # already best first
    if kinds:
        codes = [c for c in codes if index["regions"][c]["kind"] in kinds]
    by_code = {row["region"]: row for row in list_regions(with_data_only=False)}
    return [{**by_code[c], "match": match} for c in codes[:limit]]


def _closest(text: str, index: dict, limit: int | None = 5) -> list[str]:
    from rapidfuzz import fuzz, process  # error path only

    names = {**index.get("search_aliases", {}), **index["aliases"]}  # cloud locations too
    matches = process.extract(_key(text), list(names), scorer=fuzz.WRatio, limit=40)
    out: list[str] = []
    for alias, score, _ in matches:
        if score < 60:
            break
        target = names[alias]
        for code in [target] if isinstance(target, str) else target:
            if code not in out:
                out.append(code)
    return out if limit is None else out[:limit]


def _unknown_message(region: str, index: dict) -> str:
    text = region.strip()
    provider = region_provider(_key(text))
    if provider and provider not in CLOUD_PROVIDERS:
        return (
            f"unknown cloud provider {provider!r} in region {region!r}: footprint knows "
            f"{', '.join(p + ':' for p in CLOUD_PROVIDERS)}; pass the grid region (e.g. 'US-VA') "
            "or carbon_intensity=<g CO2e/kWh>"
        )
    iso = _iso_subdivision(text)
    if iso:
        country = iso[1]
        hint = (
            f"use the country {country!r} ({index['regions'][country]['g_per_kwh']} g/kWh)"
            if index["regions"].get(country, {}).get("g_per_kwh")
            else "pass carbon_intensity=<g CO2e/kWh>"
        )
        return (
            f"no sub-regional data for {iso[0]} ({iso[2]}): footprint has sub-regions for the "
            f"US, Canada and China, and zones for Sweden and Norway; {hint}, or pass "
            "carbon_intensity=<g CO2e/kWh>"
        )
    closest = _closest(text, index)
    if closest:
        regions = index["regions"]
        options = ", ".join(f"{c} ({regions[c]['name']})" for c in closest)
        suggestion = f"did you mean {options}?"
    else:
        suggestion = "no close match."
    return (
        f"unknown region {region!r}: {suggestion} Search with `footprint regions QUERY`, "
        "or pass carbon_intensity=<g CO2e/kWh>"
    )


def _iso_subdivision(text: str) -> tuple[str, str, str] | None:
    """(code, country alpha-2, name) if ``text`` is a valid ISO 3166-2 code."""
    if "-" not in text:
        return None
    import pycountry  # error path only

    sub = pycountry.subdivisions.get(code=text.upper())
    if sub is None:
        return None
    return sub.code, sub.country_code, sub.name


def _no_data_message(code: str, entry: dict, index: dict) -> str:
    why = entry.get("note") or "no value in the source table"
    src = index["sources"].get(entry.get("source") or "", {}).get("name", "footprint's tables")
    return (
        f"no carbon-intensity data for {code} ({entry['name']}): {why} ({src}); footprint "
        "treats a missing or 0.0 value as no data, never as zero. Pass "
        "carbon_intensity=<g CO2e/kWh> from a source you trust"
    )
