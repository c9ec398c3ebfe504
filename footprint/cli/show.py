"""``footprint show RUN``: one run in the terminal: what it was, each device and how it was
known, phases, per-unit figures, carbon and its source, notes."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from footprint.cli._common import (
    ForceOption,
    OutOption,
    StoreOption,
    fmt_duration,
    fmt_emissions,
    fmt_energy_j,
    fmt_kwh,
    literal,
    output_to,
    reading_store,
)


def _lines(r: Any) -> list[str]:
    what = " / ".join(x or "-" for x in (r.task, r.model, r.variant))
    out = [
        f"run {r.id}  {r.name}  ({r.status})",
        f"  task / model / variant: {what}" + ("  (baseline)" if r.baseline else ""),
        f"  started {r.started_at[:19].replace('T', ' ')} UTC, ran {fmt_duration(r.duration_s)}",
        f"  energy {fmt_kwh(r.energy_kwh)}"
        + (f" (the machine's: {fmt_kwh(r.machine_energy_kwh)})" if r.machine_energy_kwh else ""),
    ]
    if r.error:
        out.append(f"  error: {r.error}")
    out.append("devices:")
    for d in r.devices:
        how = "measured" if d.measured else "estimated"
        whole = f", whole device {fmt_energy_j(d.machine_energy_j)}" if d.machine_energy_j else ""
        out.append(
            f"  {d.id:<10} {d.kind:<4} {fmt_energy_j(d.energy_j):>10}  {how}, {d.method}"
            f"{whole}; {d.attribution}" + (f"; error: {d.error}" if d.error else "")
        )
    if r.phases:
        out.append("phases:")
        for p in r.phases:
            counts = ", ".join(f"{k} {v:g}" for k, v in p.counts.items())
            out.append(
                f"  {p.path:<24} {fmt_duration(p.duration_s):>12} "
                f"{fmt_energy_j(p.total_energy_j):>10}" + (f"  ({counts})" if counts else "")
            )
    if r.counts:
        out.append("per unit (the whole run's energy; leaderboards charge phases apart):")
        for unit, n in r.counts.items():
            if n > 0:
                out.append(f"  {unit}: {n:g}, {fmt_energy_j(r.energy_j / n)} each")
    if r.metrics:
        out.append("metrics: " + ", ".join(f"{k} {v:g}" for k, v in r.metrics.items()))
    out.append("carbon:")
    if r.emissions_kg is None:
        out.append("  no region or intensity was given: emissions not computed")
    else:
        c = r.carbon
        source = f"{c.source}, {c.year}" if c is not None and c.source else "given"
        out.append(
            f"  {fmt_emissions(r.emissions_kg)} CO2e in {r.region or '-'} at "
            f"{r.carbon_intensity_g_per_kwh:g} g/kWh ({source}), PUE {r.pue:g}"
        )
    if r.contended:
        out.append("  contended: other processes were busy; leaderboards leave it out")
    if r.notes:
        out.append("notes:")
        out += [f"  - {n}" for n in r.notes]
    return out


def register(app: typer.Typer) -> None:
    @app.command("show", help="Show one run: devices and methods, phases, per-unit, carbon, notes.")
    def show_command(
        run_id: Annotated[str, typer.Argument(metavar="RUN", help="Run id or unique prefix.")],
        store: StoreOption = None,
        out: OutOption = None,
        force: ForceOption = False,
    ) -> int:
        with output_to(out, force):
            record = reading_store(store).get(run_id)
            for line in _lines(record):
                print(literal(line))
            return 0
