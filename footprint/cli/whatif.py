"""``footprint whatif RUN_ID``: the run's emissions had it run in each region."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from footprint.cli._common import StoreOption, fmt_emissions, fmt_kwh


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
        format: Annotated[str, typer.Option(help="table or json.")] = "table",
    ) -> int:
        from footprint.carbon import whatif
        from footprint.errors import UsageError
        from footprint.store import Store

        if format not in ("table", "json"):
            raise UsageError(f"--format must be table or json, got {format!r}")
        record = Store(store).get(run_id)
        names = [r.strip() for r in regions.split(",") if r.strip()] if regions else None
        if regions is not None and not names:
            raise UsageError("--regions is empty: pass e.g. --regions FR,PL,US-CA")
        rows = whatif(record, names, kinds=(kind,) if kind else None)[:limit]
        if format == "json":
            json.dump(rows, sys.stdout, indent=2)
            print()
            return 0
        from rich.console import Console
        from rich.table import Table

        pue = (record.get("carbon") or {}).get("pue") or 1.0
        table = Table(
            title=f"run {record['id'][:8]} ({record.get('name')}): "
            f"{fmt_kwh(record['energy_kwh'])} IT energy, PUE {pue:g}",
            title_justify="left",
        )
        for col, justify in (
            ("region", "left"),
            ("name", "left"),
            ("g CO2e/kWh", "right"),
            ("CO2e", "right"),
            ("source", "left"),
            ("year", "right"),
        ):
            table.add_column(col, justify=justify, overflow="fold")
        for r in rows:
            table.add_row(
                r["region"] + (" *" if r["this_run"] else ""),
                r["name"],
                f"{r['g_per_kwh']:.1f}",
                fmt_emissions(r["emissions_kg"]),
                r["source"],
                str(r["year"] or "-"),
            )
        Console(width=max(100, Console().width)).print(table)
        print("* the run's own region; annual table figures, even if the run used hourly data")
        return 0
