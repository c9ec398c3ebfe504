"""``footprint whatif RUN_ID``: the run's emissions had it run in each region."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from footprint.cli._common import (
    ForceOption,
    FormatOption,
    OutOption,
    StoreOption,
    WideOption,
    check_format,
    fmt_emissions,
    fmt_kwh,
    output_to,
    print_table,
    reading_store,
)
from footprint.formatting import csv_text, literal, markdown_table, md_text

HEADERS = ["region", "name", "g CO2e/kWh", "CO2e", "source", "year", "basis"]

#: regions shown for reference in the summary (large grids people compare against)
REFERENCE = ("FR", "DE", "GB", "US", "CN", "IN", "SE", "PL")


def _summary(rows: list[dict]) -> list[dict]:
    """The run's own region, the 10 lowest and 10 highest intensities and the reference ones,
    lowest first."""
    ordered = sorted(rows, key=lambda r: r["g_per_kwh"])
    keep = {id(r) for r in ordered[:10] + ordered[-10:]}
    keep |= {id(r) for r in ordered if r["own_region"] or r["this_run"] or r["region"] in REFERENCE}
    return [r for r in ordered if id(r) in keep]


def register(app: typer.Typer) -> None:
    @app.command(
        "whatif",
        help="Show a run's emissions had it run in each region (same IT energy and PUE).",
    )
    def whatif_command(
        run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="A run id or prefix.")],
        regions: Annotated[
            str | None,
            typer.Option(help="Comma-separated regions, e.g. FR,PL,US-CA (default: all)."),
        ] = None,
        kind: Annotated[
            str | None,
            typer.Option(help="With no --regions: only country, subregion, zone or cloud."),
        ] = None,
        limit: Annotated[int | None, typer.Option(help="Show at most N rows.", min=1)] = None,
        store: StoreOption = None,
        format: FormatOption = "table",
        wide: WideOption = False,
        all_regions: Annotated[
            bool,
            typer.Option("--all", help="Every region (default without --regions: a summary)."),
        ] = False,
        out: OutOption = None,
        force: ForceOption = False,
    ) -> int:
        with output_to(out, force):
            from footprint.carbon import whatif
            from footprint.errors import UsageError

            check_format(format)
            from footprint.carbon.whatif import TABLE_KINDS

            if kind is not None and kind not in TABLE_KINDS:
                raise UsageError(f"--kind must be one of {', '.join(TABLE_KINDS)}, got {kind!r}")
            if kind is not None and regions is not None:
                raise UsageError("--kind filters the full list: give --kind or --regions, not both")
            record = reading_store(store).get(run_id)
            names = [r.strip() for r in regions.split(",") if r.strip()] if regions else None
            if regions is not None and not names:
                raise UsageError("--regions is empty: pass e.g. --regions FR,PL,US-CA")
            rows = whatif(record, names, kinds=(kind,) if kind else None)
            every = len(rows)
            summary = names is None and not all_regions and limit is None and every > 30
            if summary:
                rows = _summary(rows)
            rows = rows[:limit]
            if format == "json":
                json.dump(rows, sys.stdout, indent=2)
                print()
                return 0
            if format == "csv":
                columns = list(rows[0]) if rows else ["region"]
                print(csv_text(columns, [[r[c] for c in columns] for r in rows]))
                return 0
            from footprint.record import CarbonRecord

            carbon = record.carbon or CarbonRecord()
            applied = record.carbon_intensity_g_per_kwh
            how = carbon.kind or "unknown"
            if carbon.hourly:
                how = "hourly file"
            elif how == "user":
                how = "user-given"
            title = (
                f"run {record.id[:8]} ({record.name}): "
                f"{fmt_kwh(record.energy_kwh)} IT energy, PUE {record.effective_pue:g}"
            )
            cells = []
            for r in rows:
                intensity = f"{r['g_per_kwh']:.1f}"
                if r["own_region"] and not r["this_run"] and applied is not None:
                    intensity += f" (run: {applied:.1f}, {how})"
                cells.append([
                    r["region"] + (" *" if r["this_run"] else " +" if r["own_region"] else ""),
                    r["name"],
                    intensity,
                    fmt_emissions(r["emissions_kg"]),
                    r["source"],
                    str(r["year"] or "-"),
                    f"{r['basis']}, {r['gas']}" if r["basis"] else "-",
                ])  # fmt: skip
            notes = []
            if any(r["this_run"] for r in rows):
                notes.append("* the run's own region, whose table figure its emissions used")
            if any(r["own_region"] and not r["this_run"] for r in rows):
                notes.append(
                    "+ the run's own region, but its emissions used another intensity "
                    "(shown as 'run: ...')"
                )
            if applied is not None and not any(r["this_run"] for r in rows):
                source = carbon.source or how
                notes.append(
                    f"this run: {applied:.1f} g/kWh ({source}) -> "
                    f"{fmt_emissions(record.emissions_kg)} CO2e"
                )
            notes.append(
                "annual table figures, even if the run used hourly data; bases differ between "
                "sources (life-cycle or direct, CO2e or CO2): see the basis column"
            )
            if summary:
                notes.append(
                    f"{len(rows)} of {every} regions: the run's own, the 10 lowest, the 10 highest "
                    f"and a few for reference ({', '.join(REFERENCE)}); --all for every region, "
                    "--regions to choose, --kind to filter"
                )
            if format == "markdown":
                print(f"**{md_text(title)}**\n")
                print(markdown_table(HEADERS, cells, notes))
                return 0
            print_table(
                title,
                HEADERS,
                cells,
                left={"region", "name", "source", "basis"},
                drop_order=["basis", "year", "source", "name"],
                wide=wide,
                fold={"name", "source"},
            )
            for note in notes:
                print(literal(note))
            return 0
