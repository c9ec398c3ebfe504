"""``footprint runs``: the saved runs, newest first."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from footprint.cli._common import (
    ExperimentOption,
    MlflowOption,
    StoreOption,
    add_row,
    cell,
    fmt_duration,
    fmt_emissions,
    fmt_kwh,
    measured_label,
    mlflow_records,
    reading_store,
)


def register(app: typer.Typer) -> None:
    @app.command("runs", help="List the saved runs, newest first.")
    def runs_command(
        store: StoreOption = None,
        limit: Annotated[int | None, typer.Option(help="Show at most N runs.", min=1)] = None,
        format: Annotated[str, typer.Option(help="table or json.")] = "table",
        parts: Annotated[
            bool, typer.Option("--parts", help="Also list each process's part of a job.")
        ] = False,
        mlflow: MlflowOption = None,
        experiment: ExperimentOption = None,
    ) -> int:
        from footprint.errors import UsageError

        if format not in ("table", "json"):
            raise UsageError(f"--format must be table or json, got {format!r}")
        held = mlflow_records(mlflow, experiment, store)
        if held is not None:
            where, records = f"MLflow at {mlflow}", list(held)[:limit]
        else:
            st = reading_store(store)
            where, records = str(st.path), st.records(parts=parts)[:limit]
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
            rows = []
            for r in records:
                row = {k: getattr(r, k) for k in keys}
                row["job"] = r.job.to_dict() if r.job is not None else None
                rows.append(row)
            json.dump(rows, sys.stdout, indent=2)
            print()
            return 0
        if not records:
            print(f"no runs in {where} (run something with footprint.track or footprint run)")
            return 0
        from rich.console import Console
        from rich.table import Table

        table = Table(title=cell(f"runs in {where}"), title_justify="left")
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
            *((("processes", "left"),) if any(r.job for r in records) else ()),
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
                *((processes(r),) if any(x.job for x in records) else ()),
            )
        # Piped output is not cut to 80 columns: ids must survive `| grep`.
        width = None if sys.stdout.isatty() else 200
        Console(highlight=False, width=width).print(table)
        return 0


def processes(r) -> str:
    """What a job row stands for: "4 ranks, 2 nodes" (a job) or "rank 1 of job 1a2b3c4d"."""
    job = r.job
    if job is None:
        return "-"
    if job.role == "job":
        ranks = sum(1 for x in job.ranks if x.rank is not None) or len(job.ranks)
        text = f"{ranks} ranks, {len(job.nodes)} node{'s' if len(job.nodes) != 1 else ''}"
        if job.missing_ranks:
            text += f", {len(job.missing_ranks)} missing"
        return text
    who = (
        f"rank {job.rank}"
        if job.rank is not None
        else ("wrapper" if job.wrapper == r.id else "member")
    )
    return f"{who} of job {job.id[:8]}" + (" (measurer)" if job.measurer else "")
