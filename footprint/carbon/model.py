"""The carbon model the tracker uses: :func:`resolve` at start, :func:`emissions_for` at stop.

Operational emissions = IT energy (kWh) x PUE x grid intensity (g/kWh) / 1000. With an intensity
file, the intensity is the run's IT-energy-weighted intensity over the file's rows. Embodied
emissions are reported separately and never added to operational emissions.

Notes produced here start with ``"carbon: "`` so :func:`recompute` can replace them without
touching the tracker's own notes.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from footprint import units
from footprint.carbon import embodied as _embodied
from footprint.carbon import pue as _pue
from footprint.carbon.regions import (
    CarbonIntensity,
    canonical_region,
    load_index,
    user_intensity,
)
from footprint.carbon.regions import carbon_intensity as table_intensity
from footprint.errors import FootprintWarning, RegionError, UsageError

if TYPE_CHECKING:
    from footprint.carbon.hourly import HourlyIntensity
    from footprint.record import RunRecord

NOTE_PREFIX = "carbon: "
NO_REGION_NOTE = (
    NOTE_PREFIX + "no region given: emissions left empty; pass region= or carbon_intensity="
)


@dataclass(frozen=True)
class CarbonSetup:
    """Everything resolved at run start to turn the run's energy into emissions.

    ``intensity`` is None when neither a region nor an intensity was given (emissions stay
    empty) or when an intensity file is used (``hourly``; the figure is known at the end).
    """

    region: str | None
    intensity: CarbonIntensity | None
    pue: float
    pue_source: str
    hourly: HourlyIntensity | None = None
    embodied: dict | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def emissions_kg(self, energy_kwh: float) -> float | None:
        """Operational emissions of ``energy_kwh`` of IT energy with the static intensity (live
        figure during a run); None without an intensity or with an intensity file (known only
        once the run's timeline is integrated)."""
        if self.intensity is None or self.hourly is not None:
            return None
        return units.emissions_kg(energy_kwh, self.intensity.g_per_kwh, self.pue)

    def to_dict(self) -> dict:
        """The provenance dict stored as a record's ``carbon`` field (before the run's figures)."""
        i = self.intensity
        hourly = self.hourly.to_dict() if self.hourly is not None else None
        return {
            "region": self.region,
            "carbon_intensity_g_per_kwh": i.g_per_kwh if i else None,
            "kind": "hourly" if hourly else (i.kind if i else None),
            "name": i.name if i else None,
            "source": _hourly_source(hourly) if hourly else (i.source if i else None),
            "source_url": None if hourly else (i.source_url if i else None),
            "year": None if hourly else (i.year if i else None),
            "basis": hourly["basis"] if hourly else (i.basis if i else None),
            "gas": "CO2e" if hourly else (i.gas if i else None),
            "grid_region": i.grid_region if i else None,
            "pue": self.pue,
            "pue_source": self.pue_source,
            "hourly": hourly,
            "embodied": (
                {"config": copy.deepcopy(self.embodied), "devices": None}
                if self.embodied is not None
                else None
            ),
        }

    @classmethod
    def from_dict(cls, carbon: Mapping, *, reload_hourly: bool = True) -> CarbonSetup:
        """Rebuild a setup from a record's ``carbon`` field (keeping its stored figures)."""
        hourly = None
        h = carbon.get("hourly")
        if h and reload_hourly:
            from footprint.carbon.hourly import read_intensity_csv

            hourly = read_intensity_csv(h["path"], basis=h["basis"])
            if hourly.sha256 != h.get("sha256"):
                raise RegionError(
                    f"intensity file {h['path']} changed since the run was recorded; apply it "
                    "explicitly with `footprint recompute ID --intensity-csv FILE`"
                )
        intensity = None
        if carbon.get("carbon_intensity_g_per_kwh") is not None and not h:
            intensity = CarbonIntensity(
                g_per_kwh=float(carbon["carbon_intensity_g_per_kwh"]),
                source=carbon.get("source") or "unknown",
                year=carbon.get("year"),
                basis=carbon.get("basis") or "unknown",
                gas=carbon.get("gas") or "CO2e",
                region=carbon.get("region"),
                kind=carbon.get("kind") or "user",
                name=carbon.get("name"),
                source_url=carbon.get("source_url"),
                grid_region=carbon.get("grid_region"),
            )
        return cls(
            region=carbon.get("region"),
            intensity=intensity,
            pue=float(carbon.get("pue", 1.0)),
            pue_source=carbon.get("pue_source", _pue.DEFAULT_SOURCE),
            hourly=hourly,
            embodied=copy.deepcopy((carbon.get("embodied") or {}).get("config")),
        )


def _hourly_source(hourly: dict) -> str:
    zone = f", zone {hourly['zone']}" if hourly.get("zone") else ""
    return f"intensity file {os.path.basename(hourly['path'])} ({hourly['format']}{zone})"


def resolve(
    region: str | None = None,
    carbon_intensity: float | None = None,
    pue: float | str | None = None,
    intensity_csv: str | os.PathLike | None = None,
    *,
    intensity_basis: str = "life-cycle",
    embodied: bool | Mapping[str, Mapping] | None = None,
) -> CarbonSetup:
    """Resolve a run's carbon inputs, fast (no pycountry, no codecarbon import, no network).

    ``region``: see :func:`footprint.carbon.carbon_intensity`. ``carbon_intensity``: g CO2e/kWh
    given by the user (overrides the region's table value; the region then only labels the
    run). ``pue``: a number >= 1 (recorded as user-supplied, 1.0 included), ``"cloud"`` (the
    region's provider's figure) or ``"on-prem"``; None (not given) is 1.0, recorded as the
    default. ``intensity_csv``: a time-varying intensity file (see
    :mod:`footprint.carbon.hourly`), read now so a malformed file fails before the run;
    ``intensity_basis`` picks its ``"life-cycle"`` (default) or ``"direct"`` column.
    ``embodied``: True for published per-device defaults, or ``{kind: {"embodied_kg": ...,
    "lifetime_years": ...}}``.

    No region and no intensity is not an error: the setup has no intensity and a note says so.
    Bad input raises RegionError (a ValueError) saying what was wrong and how to fix it.
    """
    if carbon_intensity is not None and intensity_csv is not None:
        raise RegionError(
            "pass either carbon_intensity= (one value) or intensity_csv= (a time series), not both"
        )
    code = canonical_region(region) if region is not None else None
    pue_value, pue_source = _pue.resolve_pue(pue, code)
    embodied_config = _embodied.resolve_embodied(embodied)
    notes: list[str] = []

    hourly = None
    intensity = None
    if intensity_csv is not None:
        from footprint.carbon.hourly import read_intensity_csv  # only when a file is given

        hourly = read_intensity_csv(intensity_csv, basis=intensity_basis)
        mismatch = _zone_mismatch(hourly.zone, code)
        if mismatch:
            warnings.warn(mismatch, FootprintWarning, stacklevel=2)
            notes.append(NOTE_PREFIX + mismatch)
    elif carbon_intensity is not None:
        intensity = user_intensity(carbon_intensity, code)
        if code is not None:
            entry = load_index()["regions"][code]
            table = entry.get("g_per_kwh")
            if table is None and entry.get("grid_region"):
                table = load_index()["regions"][entry["grid_region"]].get("g_per_kwh")
            if table is not None:
                notes.append(
                    f"{NOTE_PREFIX}user intensity {intensity.g_per_kwh:g} g/kWh used for {code} "
                    f"instead of the table's {table:g} g/kWh"
                )
    elif code is not None:
        intensity = table_intensity(code)
        notes.extend(NOTE_PREFIX + n for n in intensity.notes)
    else:
        notes.append(NO_REGION_NOTE)
    return CarbonSetup(
        region=code,
        intensity=intensity,
        pue=pue_value,
        pue_source=pue_source,
        hourly=hourly,
        embodied=embodied_config,
        notes=tuple(notes),
    )


def _zone_mismatch(zone: str | None, code: str | None) -> str | None:
    if zone is None or code is None:
        return None
    entry = load_index()["regions"][code]
    same = {code.upper(), (entry.get("grid_region") or "").upper(), entry.get("country", code)}
    if zone.upper() in same:
        return None
    return (
        f"the intensity file's zone {zone!r} differs from the run's region {code!r}; the file's "
        "values are used: check it is the grid the run drew from"
    )


def emissions_for(
    record: Mapping, setup: CarbonSetup | None = None, *, strict: bool = False
) -> dict:
    """The carbon fields to put into a finished run's record.

    ``setup`` is what :func:`resolve` returned at start; without it, the record's ``carbon``
    field is used (re-reading an intensity file, which must be unchanged). Returns, ready for
    ``record.update(...)``: ``emissions_kg`` (None when there is no intensity or the file does
    not cover the run), ``region``, ``carbon_intensity_g_per_kwh`` (the value applied),
    ``pue``, ``carbon`` (provenance, PUE and its source, IT and facility energy, hourly
    statistics, embodied breakdown), ``embodied_emissions_kg`` (None unless configured) and
    ``notes`` (the record's notes plus this function's, each starting with "carbon: ", without
    duplicates). Data problems after the run are notes, not exceptions: a run is never lost to
    them. ``strict=True`` (an explicit recompute) raises instead: an intensity file that does not
    cover the run is a CoverageError, so nothing is replaced by empty emissions.
    """
    if setup is None:
        if not isinstance(record.get("carbon"), Mapping):
            raise UsageError(
                "the record has no 'carbon' field: pass the setup from footprint.carbon.resolve()"
            )
        setup = CarbonSetup.from_dict(record["carbon"])
    carbon = setup.to_dict()
    notes = list(setup.notes)
    energy_kwh = record.get("energy_kwh")
    duration_s = float(record.get("duration_s") or 0.0)
    facility_kwh = None if energy_kwh is None else energy_kwh * setup.pue
    carbon["it_energy_kwh"] = energy_kwh
    carbon["facility_energy_kwh"] = facility_kwh

    g_per_kwh = setup.intensity.g_per_kwh if setup.intensity else None
    if setup.hourly is not None:
        from footprint.carbon.hourly import integrate

        try:
            stats = integrate(
                setup.hourly, record["started_at"], duration_s, record.get("timeline")
            )
        except RegionError as e:
            if strict:
                raise type(e)(f"{e}; nothing recomputed or saved") from e
            notes.append(
                f"{NOTE_PREFIX}emissions left empty: {e}. Apply a file that covers the run with "
                "`footprint recompute ID --intensity-csv FILE`"
            )
        else:
            g_per_kwh = stats["g_per_kwh"]
            carbon["hourly"].update(stats)
            if stats["weighting"] == "time":
                notes.append(
                    f"{NOTE_PREFIX}no power timeline: the hourly intensity is averaged over time, "
                    "assuming constant power"
                )
    carbon["carbon_intensity_g_per_kwh"] = g_per_kwh

    if energy_kwh is None and g_per_kwh is not None:
        notes.append(f"{NOTE_PREFIX}the run has no energy figure: emissions left empty")
    emissions_kg = (
        None
        if g_per_kwh is None or energy_kwh is None
        else units.emissions_kg(energy_kwh, g_per_kwh, setup.pue)
    )
    embodied_kg = None
    if setup.embodied is not None:
        embodied_kg, rows, embodied_notes = _embodied.embodied_emissions(
            list(record.get("devices") or []), duration_s, setup.embodied
        )
        carbon["embodied"] = {"config": setup.embodied, "devices": rows}
        notes.extend(NOTE_PREFIX + n for n in embodied_notes)
    merged = list(record.get("notes") or [])
    merged.extend(n for n in notes if n not in merged)
    return {
        "emissions_kg": emissions_kg,
        "region": setup.region,
        "carbon_intensity_g_per_kwh": g_per_kwh,
        "pue": setup.pue,
        "carbon": carbon,
        "embodied_emissions_kg": embodied_kg,
        "notes": merged,
    }


def recompute(
    record: RunRecord | Mapping[str, Any],
    intensity_csv: str | os.PathLike | None = None,
    *,
    carbon_intensity: float | None = None,
    region: str | None = None,
    pue: float | str | None = None,
    intensity_basis: str = "life-cycle",
) -> RunRecord:
    """A copy of a finished run's record with its emissions recomputed.

    Typical use: hourly data arrives after the run (``intensity_csv``), integrated against the
    stored timeline. Unspecified inputs (region, PUE, embodied) keep the record's values (an
    imported run's PUE and region included). The record's other fields and non-carbon notes are
    kept. Raises RegionError (CoverageError) when ``intensity_csv`` does not cover the run,
    rather than returning a record with its emissions emptied.
    """
    from footprint.record import RunRecord, as_record

    record = as_record(record)
    old = record.carbon
    if intensity_csv is None and carbon_intensity is None and region is None:
        if pue is None:
            raise RegionError(
                "nothing to recompute with: pass intensity_csv=, carbon_intensity=, region= or "
                "pue= (on the command line: --intensity-csv, --carbon-intensity, --region, --pue)"
            )
        # a new PUE alone: the run's own intensity again (its region's table figure, or the
        # intensity the user gave), times the new PUE
        if old is not None and old.kind == "user" and record.carbon_intensity_g_per_kwh:
            carbon_intensity = record.carbon_intensity_g_per_kwh
        elif (old.region if old else None) or record.region:
            region = (old.region if old else None) or record.region
        else:
            raise RegionError(
                f"run {record.id[:8]} has no region or carbon intensity to apply a PUE to: give "
                "one too (--region CODE or --carbon-intensity G_PER_KWH; region=/carbon_intensity=)"
            )
    old_pue = record.effective_pue
    setup = resolve(
        region=region if region is not None else ((old.region if old else None) or record.region),
        carbon_intensity=carbon_intensity,
        pue=pue if pue is not None else old_pue,
        intensity_csv=intensity_csv,
        intensity_basis=intensity_basis,
        embodied=(old.embodied or {}).get("config") if old else None,
    )
    if pue is None:  # the run's PUE is kept, with where it came from
        source = (old.pue_source if old else None) or (
            _pue.DEFAULT_SOURCE if old_pue == 1.0 else "as recorded with the run (its pue field)"
        )
        setup = CarbonSetup(
            setup.region,
            setup.intensity,
            setup.pue,
            source,
            setup.hourly,
            setup.embodied,
            setup.notes,
        )
    new = record.to_dict()
    new["notes"] = [n for n in new["notes"] if not n.startswith(NOTE_PREFIX)]
    new.update(emissions_for(new, setup, strict=True))
    new["notes"].append(f"{NOTE_PREFIX}recomputed (previous emissions_kg: {record.emissions_kg!r})")
    return RunRecord.from_dict(new)
