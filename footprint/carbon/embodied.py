"""Embodied (manufacturing) emissions, amortised over a device's lifetime by the run's duration.

Reported beside operational emissions, never added to them. A default exists only where a
published figure does (docs/methodology.md); anything else is user-supplied:
``embodied={"gpu": {"embodied_kg": 150, "lifetime_years": 6}, "cpu": {...}}``.
"""

from __future__ import annotations

from collections.abc import Mapping

from footprint.carbon.regions import check_positive
from footprint.errors import RegionError

SECONDS_PER_YEAR = 365.25 * 86400.0

#: Published per-device defaults, by device kind.
DEFAULTS: dict[str, dict] = {
    "gpu": {
        "embodied_kg": 150.0,
        "lifetime_years": 6.0,
        "source": "Luccioni, Viguier & Ligozat, 'Estimating the Carbon Footprint of BLOOM, a 176B "
        "Parameter Language Model', JMLR 24 (2023): ~150 kg CO2e per NVIDIA A100 GPU, 6-year "
        "lifetime (https://jmlr.org/papers/v24/23-0069.html)",
    },
}


def resolve_embodied(embodied: bool | Mapping[str, Mapping] | None) -> dict[str, dict] | None:
    """Validated per-kind config: {kind: {embodied_kg, lifetime_years, source}}; None if off."""
    if embodied is None or embodied is False:
        return None
    if embodied is True:
        return {kind: dict(spec) for kind, spec in DEFAULTS.items()}
    if not isinstance(embodied, Mapping):
        raise RegionError(
            "embodied must be True (published defaults), a mapping such as "
            "{'gpu': {'embodied_kg': 150, 'lifetime_years': 6}}, or None"
        )
    out = {}
    for kind, spec in embodied.items():
        if spec is True and kind in DEFAULTS:
            out[kind] = dict(DEFAULTS[kind])
            continue
        if not isinstance(spec, Mapping) or set(spec) - {"embodied_kg", "lifetime_years", "source"}:
            raise RegionError(
                f"embodied[{kind!r}] must be {{'embodied_kg': <kg CO2e per device>, "
                f"'lifetime_years': <years>}}, not {spec!r}"
            )
        missing = {"embodied_kg", "lifetime_years"} - set(spec)
        if missing:
            raise RegionError(f"embodied[{kind!r}] lacks {', '.join(sorted(missing))}")
        out[kind] = {
            "embodied_kg": check_positive(
                spec["embodied_kg"], f"embodied[{kind!r}].embodied_kg", "kg CO2e per device"
            ),
            "lifetime_years": check_positive(
                spec["lifetime_years"], f"embodied[{kind!r}].lifetime_years", "years"
            ),
            "source": str(spec.get("source", "user-supplied")),
        }
    return out


def embodied_emissions(
    devices: list[dict], duration_s: float, config: Mapping[str, Mapping]
) -> tuple[float, list[dict], list[str]]:
    """(total kg CO2e, per-device rows, notes): embodied_kg x duration_s / lifetime_s per device."""
    total = 0.0
    rows = []
    skipped = set()
    for device in devices:
        spec = config.get(device.get("kind", ""))
        if spec is None:
            skipped.add(device.get("kind", "?"))
            continue
        lifetime_s = spec["lifetime_years"] * SECONDS_PER_YEAR
        kg = spec["embodied_kg"] * duration_s / lifetime_s
        total += kg
        rows.append(
            {
                "id": device.get("id"),
                "kind": device.get("kind"),
                "embodied_emissions_kg": kg,
                "embodied_kg": spec["embodied_kg"],
                "lifetime_years": spec["lifetime_years"],
                "source": spec["source"],
            }
        )
    notes = [
        f"no embodied figure for device kind {kind!r}: not counted (pass embodied={{{kind!r}: "
        "{'embodied_kg': ..., 'lifetime_years': ...}})"
        for kind in sorted(skipped)
    ]
    return total, rows, notes
