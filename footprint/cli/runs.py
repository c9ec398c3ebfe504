"""``footprint runs``: the saved runs, newest first."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from footprint.cli._common import (
    StoreOption,
    add_row,
    cell,
    fmt_duration,
    fmt_emissions,
    fmt_kwh,
    measured_label,
    reading_store,
)


def register(app: typer.Typer) -> None:
    @app.command("runs", help="List the saved runs, newest first.")
    def runs_command(
        store: StoreOption = None,
        limit: Annotated[int | None, typer.Option(help="Show at most N runs.", min=1)] = None,
        format: Annotated[str, typer.Option(help="table or json.")] = "table",
    ) -> int:
        from footprint.errors import UsageError

        if format not in ("table", "json"):
            raise UsageError(f"--format must be table or json, got {format!r}")
        st = reading_store(store)
        records = st.records()[:limit]
        if format == "json":
            keys = (
                "id",
                "name",
                "status",
                "started_at",
                "duration_s",
                "energy_kwh",
                "emissions_kg",
                "region",
                "task",
                "model",
                "variant",
            )
            json.dump([{k: getattr(r, k) for k in keys} for r in records], sys.stdout, indent=2)
            print()
            return 0
        if not records:
            print(f"no runs in {st.path} (run something with footprint.track or footprint run)")
            return 0
        from rich.console import Console
        from rich.table import Table

        table = Table(title=cell(f"runs in {st.path}"), title_justify="left")
        for col, justify in (
            ("id", "left"),
            ("name", "left"),
            ("status", "left"),
            ("started (UTC)", "left"),
            ("duration", "right"),
            ("energy", "right"),
            ("CO2e", "right"),
            ("region", "left"),
            ("how", "left"),
        ):
            # ids and numbers never wrap: people copy ids into other commands.
            wrap = col in ("name", "region")
            table.add_column(
                col,
                justify="left" if justify == "left" else "right",
                no_wrap=not wrap,
                overflow="fold",
            )
        for r in records:
            add_row(
                table,
                r.id[:8],
                r.name,
                r.status,
                r.started_at[:19].replace("T", " "),
                fmt_duration(r.duration_s),
                fmt_kwh(r.energy_kwh),
                fmt_emissions(r.emissions_kg),
                r.region or "-",
                measured_label(r.devices),
            )
        # Piped output is not cut to 80 columns: ids must survive `| grep`.
        width = None if sys.stdout.isatty() else 200
        Console(highlight=False, width=width).print(table)
        return 0
