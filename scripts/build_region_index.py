"""Generate ``footprint/data/regions.json``, the region index read when a run starts.

Run ``python scripts/build_region_index.py`` after upgrading codecarbon or pycountry, or after
editing ``footprint/data/cloud_regions.csv``; ``--check`` exits 1 if the shipped index is stale
(tests/test_carbon_data.py does the same). Resolution at run start then costs one small JSON
load and a dict lookup, instead of pycountry's ~130 ms first lookup and codecarbon's files.

Canonical region ids (what records store):

- country: ISO 3166 alpha-2, ``FR``
- subregion: ISO 3166-2, ``US-CA``, ``CA-QC``, ``CN-BJ``
- zone: Electricity Maps zone id, ``SE-SE3``, ``NO-NO1``
- cloud: ``provider:region``, ``gcp:europe-west9``, ``aws:us-east-1``, ``azure:westeurope``
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import unicodedata
from pathlib import Path

from footprint.carbon import tables

INDEX_PATH = Path(__file__).resolve().parent.parent / "footprint" / "data" / "regions.json"
CLOUD_CSV_PATH = INDEX_PATH.parent / "cloud_regions.csv"
SCHEMA = 1

#: Order in which ambiguous matches are listed (the most general first).
KIND_ORDER = {"country": 0, "subregion": 1, "zone": 2, "cloud": 3}

#: Everyday country names that pycountry (ISO 3166 names, common and official names) lacks.
#: pycountry already has e.g. South Korea, North Korea, Iran, Vietnam, Czechia, Czech Republic,
#: Bolivia, Venezuela, Tanzania, Syria, Laos, Moldova, Taiwan, Türkiye (docs/methodology.md).
COMMON_NAMES: dict[str, str] = {
    "UK": "GB",
    "Great Britain": "GB",
    "Britain": "GB",
    "Turkey": "TR",
    "Russia": "RU",
    "UAE": "AE",
    "Holland": "NL",
    "The Netherlands": "NL",
    "Macedonia": "MK",
    "Ivory Coast": "CI",
    "Cape Verde": "CV",
    "Swaziland": "SZ",
    "Burma": "MM",
    "DR Congo": "CD",
    "DRC": "CD",
    "Democratic Republic of the Congo": "CD",
    "Congo-Kinshasa": "CD",
    "Congo-Brazzaville": "CG",
    "Palestine": "PS",
    "Brunei": "BN",
    "Micronesia": "FM",
    "Vatican": "VA",
    "Macau": "MO",
    "East Timor": "TL",
    "Bosnia": "BA",
    "The Gambia": "GM",
    "The Bahamas": "BS",
}

#: Names that fit more than one country: resolving one is an error listing them all.
AMBIGUOUS_NAMES: dict[str, tuple[str, ...]] = {
    "Congo": ("CG", "CD"),  # pycountry names CG just "Congo"; CD is "Congo, The Democratic ..."
    "Korea": ("KR", "KP"),
}


def _fold(text: str) -> str:
    """Lowercase, accents removed, whitespace collapsed: the form every alias is stored in."""
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_text = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(ascii_text.lower().split())


def build_index(codecarbon_data: Path | None = None, cloud_csv: Path | None = None) -> dict:
    """Build the index from codecarbon's files, pycountry and our cloud-region table."""
    import pycountry  # only here (and on error paths): its first lookup costs ~130 ms

    regions: dict[str, dict] = {}
    aliases: dict[str, set[str]] = {}
    # Searched by `footprint regions QUERY` only, never resolved: a cloud region's city or
    # location ("Paris", "Europe (Frankfurt)") would otherwise make "Singapore" ambiguous.
    search: dict[str, set[str]] = {}

    def alias(name: str | None, canonical: str) -> None:
        if name:
            for form in {name.lower().strip(), _fold(name)}:
                aliases.setdefault(form, set()).add(canonical)

    def entry(row: tables.TableRow | None, kind: str, name: str, **extra) -> dict:
        out = {"kind": kind, "name": name, **extra}
        out["g_per_kwh"] = row.g_per_kwh if row else None
        out["year"] = row.year if row else None
        out["source"] = row.source if row else None
        if row and row.note:
            out["note"] = row.note
        return out

    # Countries: every ISO 3166 country, with or without data (so "no data" is a clear error).
    by_alpha3 = {row.key: row for row in tables.countries(codecarbon_data)}
    for c in pycountry.countries:
        row = by_alpha3.get(c.alpha_3)
        e = entry(row, "country", getattr(c, "common_name", c.name))
        if row is None:
            e["note"] = "no entry in the OWID table"
        regions[c.alpha_2] = e
        for name in (
            c.alpha_2,
            c.alpha_3,
            c.name,
            getattr(c, "common_name", None),
            getattr(c, "official_name", None),
        ):
            alias(name, c.alpha_2)
    unknown = set(by_alpha3) - {c.alpha_3 for c in pycountry.countries}
    if unknown:
        raise tables.DataTableError(f"OWID rows with no ISO 3166 country: {sorted(unknown)}")
    for name, code in COMMON_NAMES.items():
        taken = aliases.get(_fold(name), {code}) - {code}
        if code not in regions or taken:
            raise tables.DataTableError(f"common name {name!r} -> {code}: clashes with {taken}")
        alias(name, code)
    for name, codes in AMBIGUOUS_NAMES.items():
        for form in {name.lower().strip(), _fold(name)}:
            aliases[form] = set(codes)

    def subregion(code: str, row: tables.TableRow, names: list[str]) -> None:
        sub = pycountry.subdivisions.get(code=code)
        if sub is None:
            raise tables.DataTableError(f"{code} is not an ISO 3166-2 code")
        regions[code] = entry(row, "subregion", sub.name, country=code.split("-")[0])
        for name in (code, sub.name, *names):
            alias(name, code)

    for row in tables.us_states(codecarbon_data):
        subregion(f"US-{row.key}", row, [row.name])

    ca_codes = {_fold(s.name): s.code for s in pycountry.subdivisions.get(country_code="CA")}
    for row in tables.canada_provinces(codecarbon_data):
        if _fold(row.key) not in ca_codes:
            raise tables.DataTableError(f"Canadian province {row.key!r} has no ISO 3166-2 code")
        subregion(ca_codes[_fold(row.key)], row, [row.name])

    china = tables._load_json("china", codecarbon_data)["data"]
    for row in tables.china_provinces(codecarbon_data):
        subregion(row.key, row, [row.name, *china[row.key].get("names", [])])

    for row in tables.nordic_zones(codecarbon_data):
        zone = f"{row.key[:2]}-{row.key}"  # SE3 -> SE-SE3 (Electricity Maps zone id)
        regions[zone] = entry(row, "zone", row.name, country=row.key[:2])
        alias(zone, zone)

    for row, alpha3 in tables.gcp_regions(codecarbon_data):
        country = pycountry.countries.get(alpha_3=alpha3)
        if country is None:
            raise tables.DataTableError(f"GCP region {row.key}: unknown country {alpha3!r}")
        canonical = f"gcp:{row.key}"
        regions[canonical] = entry(row, "cloud", row.name, country=country.alpha_2, provider="gcp")
        alias(canonical, canonical)
        search.setdefault(_fold(row.name), set()).add(canonical)  # GCP's city column
    for wrong, right in tables.GCP_REGION_FIXES.items():
        alias(f"gcp:{wrong}", f"gcp:{right}")

    with open(cloud_csv or CLOUD_CSV_PATH, encoding="utf-8", newline="") as f:
        for line in csv.DictReader(f):
            canonical = f"{line['provider']}:{line['region']}"
            grid = line["grid_region"]
            if grid not in regions or regions[grid]["g_per_kwh"] is None:
                raise tables.DataTableError(f"{canonical}: grid region {grid!r} has no data")
            regions[canonical] = {
                "kind": "cloud",
                "name": line["location"],
                "country": grid.split("-")[0],
                "provider": line["provider"],
                "grid_region": grid,
                "mapping_url": line["source_url"],
            }
            alias(canonical, canonical)
            search.setdefault(_fold(line["location"]), set()).add(canonical)

    def order(code: str) -> tuple[int, str]:
        return (KIND_ORDER[regions[code]["kind"]], code)

    return {
        "schema": SCHEMA,
        "about": "Generated by `python scripts/build_region_index.py`; do not edit by hand.",
        "source_files": tables.file_hashes(codecarbon_data),
        "sources": tables.SOURCES,
        "regions": dict(sorted(regions.items())),
        # unique alias -> canonical id; ambiguous alias -> list of canonical ids
        "aliases": {
            a: (sorted(c, key=order) if len(c) > 1 else next(iter(c)))
            for a, c in sorted(aliases.items())
        },
        # cloud location or city -> canonical ids (search only)
        "search_aliases": {a: sorted(c, key=order) for a, c in sorted(search.items())},
    }


def dumps(index: dict) -> str:
    """The exact text shipped in ``footprint/data/regions.json``."""
    return json.dumps(index, indent=1, sort_keys=False, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, default=INDEX_PATH)
    parser.add_argument("--check", action="store_true", help="exit 1 if --out is stale")
    args = parser.parse_args(argv)
    text = dumps(build_index())
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is stale: run python scripts/build_region_index.py", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
