"""``footprint recompute RUN_ID --intensity-csv FILE``: a finished run's emissions, again."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from footprint.cli._common import StoreOption, fmt_emissions, literal


def register(app: typer.Typer) -> None:
    @app.command(
        "recompute",
        help="Recompute a saved run's emissions, e.g. with hourly intensity data that arrived "
        "after the run (integrated against the stored power timeline), and save it.",
    )
    def recompute_command(
        run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="A run id or prefix.")],
        intensity_csv: Annotated[
            Path | None,
            typer.Option(
                "--intensity-csv",
                help="Intensity CSV: 'timestamp,g_per_kwh' or an Electricity Maps export.",
                dir_okay=False,
            ),
        ] = None,
        basis: Annotated[
            str,
            typer.Option(help="Which column of an Electricity Maps export: life-cycle or direct."),
        ] = "life-cycle",
        carbon_intensity: Annotated[
            float | None, typer.Option(help="A single intensity, g CO2e/kWh.")
        ] = None,
        region: Annotated[str | None, typer.Option(help="A different region.")] = None,
        pue: Annotated[
            str | None, typer.Option(help="A different PUE: a number, 'cloud' or 'on-prem'.")
        ] = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Print the result without saving it.")
        ] = False,
        store: StoreOption = None,
    ) -> int:
        from footprint.carbon import recompute
        from footprint.store import Store

        st = Store(store)
        record = st.get(run_id)
        pue_value: float | str | None = pue
        if pue is not None:
            try:
                pue_value = float(pue)
            except ValueError:
                pue_value = pue

        def again(rec):
            return recompute(
                rec,
                intensity_csv,
                carbon_intensity=carbon_intensity,
                region=region,
                pue=pue_value,
                intensity_basis=basis,
            )

        job_parts = None
        if record.job is not None and record.job.role == "job":
            # a job's emissions are its measurers' parts': recompute those, build it again
            from footprint.jobs.assemble import assemble_job

            job_parts = [again(p) if p.devices else p for p in st.parts(record.id)]
            new = assemble_job(job_parts)
        else:
            new = again(record)
        intensity = new.carbon_intensity_g_per_kwh
        source = new.carbon.source if new.carbon else None
        line = (
            f"run {new.id[:8]}: {fmt_emissions(record.emissions_kg)} -> "
            f"{fmt_emissions(new.emissions_kg)} CO2e"
            + (f" at {intensity:.1f} g/kWh ({source})" if intensity else "")
        )
        print(literal(line))
        for note in new.notes:
            if note.startswith("carbon: ") and note not in record.notes:
                print(literal(f"  {note}"))
        if dry_run:
            print("  (dry run: not saved)")
        elif job_parts is not None:
            changed = [p for p in job_parts if p.devices]
            for p in changed:
                st.save(p)
            print(f"  saved {len(changed)} measurer part(s) of job {new.id[:8]} in {st.path}")
        else:
            print(f"  saved {st.save(new)}")
        return 0
