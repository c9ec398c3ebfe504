"""Options and formatting shared by subcommands (one word for one thing everywhere)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

StoreOption = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help="Run store directory (default: $FOOTPRINT_DIR or ./footprint-runs).",
        file_okay=False,
    ),
]


def fmt_energy(energy_kwh: float) -> str:
    """Energy in the unit that reads best: J below 1 Wh, then Wh, then kWh."""
    energy_j = energy_kwh * 3.6e6
    if energy_j < 3600:
        return f"{energy_j:.1f} J"
    if energy_kwh < 1:
        return f"{energy_kwh * 1000:.2f} Wh"
    return f"{energy_kwh:.3f} kWh"


def fmt_emissions(emissions_kg: float | None) -> str:
    if emissions_kg is None:
        return "-"
    grams = emissions_kg * 1000
    return f"{grams:.3g} g" if grams < 1000 else f"{emissions_kg:.3g} kg"


def fmt_duration(duration_s: float) -> str:
    if duration_s < 60:
        return f"{duration_s:.1f} s"
    minutes, seconds = divmod(duration_s, 60)
    if minutes < 60:
        return f"{int(minutes)}m{seconds:02.0f}s"
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)}h{int(minutes):02d}m"


def measured_label(devices: list[dict]) -> str:
    """'measured', 'estimated' or 'mixed' for a record's devices."""
    flags = {bool(d.get("measured")) for d in devices}
    if not flags:
        return "none"
    if flags == {True}:
        return "measured"
    return "estimated" if flags == {False} else "mixed"
