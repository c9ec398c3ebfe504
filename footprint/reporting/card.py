"""The "Environmental impact" snippet for a Hugging Face model card.

Hugging Face reads ``co2_eq_emissions`` from a model card's YAML metadata: ``emissions`` in grams
of CO2e, ``source``, ``training_type``, ``geographical_location`` and ``hardware_used``
(https://huggingface.co/docs/hub/model-cards-co2). The YAML is written by hand (no YAML library
needed): strings as JSON strings, which are valid YAML double-quoted scalars, and the number in
plain positional notation, which every YAML 1.1/1.2 parser reads as a float.
"""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from typing import Any

from footprint.errors import RegionError
from footprint.formatting import fmt_duration, fmt_emissions, fmt_kwh, md_text
from footprint.record import CarbonRecord, RunRecord, as_record

#: Values Hugging Face documents for ``training_type``.
TRAINING_TYPES = ("pre-training", "fine-tuning")


def _grams(emissions_kg: float) -> float:
    """Grams, rounded to 6 significant digits (measurement noise is far larger)."""
    g = emissions_kg * 1000.0
    return float(f"{g:.6g}")


def _plain_number(x: float) -> str:
    """``0.0000123`` rather than ``1.23e-05``: PyYAML (YAML 1.1) reads ``1.23e-05`` as a string."""
    text = format(Decimal(repr(x)), "f")
    return text if "." in text else text + ".0"


def _hardware(record: RunRecord) -> str:
    """``"1 x NVIDIA A100-SXM4-40GB (GPU, measured), 1 x AMD EPYC 7763 (CPU, estimated)"``."""
    names: Counter = Counter()
    info: dict[tuple, str] = {}
    for d in record.devices:
        if d.kind not in ("gpu", "cpu"):
            continue  # memory is not "hardware used" in the sense of the card
        key = (d.label, d.kind)
        names[key] += 1
        how = "measured" if d.measured else "estimated"
        info[key] = how if info.get(key, how) == how else "measured/estimated"
    if not names:
        return "unknown"
    return ", ".join(
        f"{n} x {name} ({kind.upper()}, {info[(name, kind)]})"
        for (name, kind), n in sorted(names.items(), key=lambda kv: (kv[0][1] != "gpu", kv[0]))
    )


def _location(record: RunRecord) -> str:
    region, name = record.region, record.carbon.name if record.carbon else None
    if region and name and name != region:
        return f"{name} ({region})"
    if region:
        return str(region)
    intensity = record.carbon_intensity_g_per_kwh
    return f"unspecified (carbon intensity {intensity or 0:g} g CO2e/kWh)"


def co2_eq_emissions(
    record: RunRecord | dict[str, Any], training_type: str | None = None
) -> dict[str, Any]:
    """The ``co2_eq_emissions`` metadata of a run, as Hugging Face documents it.

    ``training_type``: given here, else the run's tag ``training_type``, else ``"pre-training"``.
    Raises :class:`footprint.errors.RegionError` when the run has no emissions (no region or
    intensity was given): the message says how to add one.
    """
    from footprint import __version__

    r = as_record(record)
    if r.emissions_kg is None:
        raise RegionError(
            f"run {r.id[:8]} ({r.name!r}) has no emissions (no region or carbon intensity "
            f"was given): add one with `footprint recompute {r.id[:8]} --region CODE`, or "
            "track(region=...) next time"
        )
    tt = training_type or r.tags.get("training_type") or "pre-training"
    if tt not in TRAINING_TYPES:
        raise ValueError(
            f"training_type {tt!r} is not one Hugging Face reads: use "
            + " or ".join(repr(t) for t in TRAINING_TYPES)
        )
    return {
        "emissions": _grams(r.emissions_kg),
        "source": f"footprint {__version__}",
        "training_type": str(tt),
        "geographical_location": _location(r),
        "hardware_used": _hardware(r),
    }


def _measured_sentence(record: RunRecord) -> str:
    measured = sorted({d.id for d in record.devices if d.measured})
    estimated = sorted({d.id for d in record.devices if not d.measured})
    parts = []
    if measured:
        parts.append(f"measured for {', '.join(map(md_text, measured))}")
    if estimated:
        parts.append(f"estimated for {', '.join(map(md_text, estimated))}")
    return "Energy was " + " and ".join(parts) + "." if parts else ""


def card(record: RunRecord | dict[str, Any], training_type: str | None = None) -> str:
    """The snippet to paste into a model card: the YAML metadata block and a short paragraph."""
    r = as_record(record)
    meta = co2_eq_emissions(r, training_type)
    carbon = r.carbon or CarbonRecord()
    lines = ["---", "co2_eq_emissions:"]
    for key, value in meta.items():
        text = _plain_number(value) if isinstance(value, float) else json.dumps(value)
        lines.append(f"  {key}: {text}")
    lines.append("---")
    energy_kwh = r.energy_kwh
    source = md_text(carbon.source or carbon.kind or "the given value")
    year = f", {carbon.year}" if carbon.year else ""
    basis = f", {md_text(carbon.basis)}" if carbon.basis else ""
    embodied = ""
    if r.embodied_emissions_kg is not None:
        embodied = (
            f" Embodied (manufacturing) emissions amortised over the run: "
            f"{fmt_emissions(r.embodied_emissions_kg)} CO2e, not included above."
        )
    status = "" if r.status == "completed" else f" ({md_text(r.status)}: it did not finish)"
    if r.imported_from:
        origin = md_text(str(r.imported_from.get("tool") or "CodeCarbon"))
        provenance = f"Imported from {origin} with {meta['source']}."
    elif any(d.measured for d in r.devices):
        provenance = f"Measured and recorded with {meta['source']}."
    else:
        provenance = f"Estimated with {meta['source']} (no device could be read)."
    paragraph = (
        "## Environmental impact\n\n"
        f"The {meta['training_type']} run “{md_text(r.name)}”{status} emitted "
        f"**{fmt_emissions(meta['emissions'] / 1000)} "
        f"CO2e**, using {fmt_kwh(energy_kwh)} of IT energy "
        f"over {fmt_duration(r.duration_s)} on {md_text(meta['hardware_used'])}, in "
        f"{md_text(meta['geographical_location'])}. "
        f"Carbon intensity: {r.carbon_intensity_g_per_kwh or 0:.4g} g CO2e/kWh ({source}{year}"
        f"{basis}); PUE {r.pue:g}. {_measured_sentence(r)}{embodied} "
        f"{provenance}"
    )
    return "\n".join(lines) + "\n\n" + paragraph + "\n"
