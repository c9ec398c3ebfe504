"""``footprint regions [QUERY]``: the carbon-intensity table, or a search in it."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from footprint.cli._common import add_row


def register(app: typer.Typer) -> None:
    @app.command(
        "regions",
        help="List regions with their grid carbon intensity (g CO2e/kWh), source and year; "
        "QUERY searches codes and names (e.g. 'fra', 'aws:eu-', 'california').",
    )
    def regions_command(
        query: Annotated[str | None, typer.Argument(help="A code or name to search.")] = None,
        kind: Annotated[
            str | None,
            typer.Option(help="Only this kind: country, subregion, zone or cloud."),
        ] = None,
        format: Annotated[str, typer.Option(help="table or json.")] = "table",
    ) -> int:
        from footprint.carbon import list_regions, search_regions
        from footprint.errors import UsageError

        if format not in ("table", "json"):
            raise UsageError(f"--format must be table or json, got {format!r}")
        kinds = ("country", "subregion", "zone", "cloud")
        if kind is not None and kind not in kinds:
            raise UsageError(f"--kind must be one of {', '.join(kinds)}, got {kind!r}")
        if query:  # filtered before search_regions keeps its first 20 rows
            rows = search_regions(query, kinds=(kind,) if kind else None)
        else:
            rows = list_regions((kind,) if kind else None, with_data_only=False)
        if format == "json":
            json.dump(rows, sys.stdout, indent=2)
            print()
            return 0
        if not rows:
            print(f"no region matches {query!r}" + (f" among kind {kind}" if kind else ""))
            return 0
        if rows[0].get("match") == "closest":
            print(
                f"no region code or name contains {query!r}; the closest names instead "
                "(not containment matches):"
            )
        from rich.console import Console
        from rich.table import Table

        table = Table(title_justify="left")
        for col, justify in (
            ("region", "left"),
            ("name", "left"),
            ("kind", "left"),
            ("g CO2e/kWh", "right"),
            ("source", "left"),
            ("year", "right"),
            ("basis", "left"),
        ):
            table.add_column(col, justify="left" if justify == "left" else "right", overflow="fold")
        for r in rows:
            via = f" (via {r['grid_region']})" if r["grid_region"] else ""
            add_row(
                table,
                r["region"],
                r["name"],
                r["kind"],
                "no data" if r["g_per_kwh"] is None else f"{r['g_per_kwh']:.1f}",
                (r["source"] or "-") + via,
                str(r["year"] or "-"),
                f"{r['basis']}, {r['gas']}" if r["basis"] else "-",
            )
        Console(width=max(100, Console().width)).print(table)
        return 0
