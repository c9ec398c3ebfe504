"""``footprint report``: a self-contained HTML page of one run, several, or a whole store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from footprint.cli._common import ExperimentOption, MlflowOption, StarsOption, StoreOption


def register(app: typer.Typer) -> None:
    @app.command(
        "report",
        help=(
            "Write an offline HTML report: one RUN_ID gives a run page; several (or none: every "
            "run in the store) give a comparison page with a leaderboard. Prints the path "
            "(and, with --run-pages, how many run pages were written beside it)."
        ),
    )
    def report_command(
        run_ids: Annotated[
            list[str] | None,
            typer.Argument(
                metavar="[RUN_ID]...", help="Run ids or unique prefixes (default: all runs)."
            ),
        ] = None,
        out: Annotated[
            Path | None,
            typer.Option(
                "-o",
                "--out",
                help="HTML file to write (default: reports/footprint-report.html, or "
                "reports/<name>-<id>.html for one run).",
                dir_okay=False,
            ),
        ] = None,
        task: Annotated[str | None, typer.Option(help="Only the runs of this task.")] = None,
        quality: Annotated[
            str | None, typer.Option(help="Leaderboard quality metric (default: inferred).")
        ] = None,
        per: Annotated[
            str | None, typer.Option(help="Leaderboard unit of work (default: inferred).")
        ] = None,
        store: StoreOption = None,
        force: Annotated[
            bool, typer.Option("--force", help="Replace existing files (the report, run pages).")
        ] = False,
        run_pages: Annotated[
            bool,
            typer.Option(
                "--run-pages",
                help="Also write each run's own page (charts, what-if, model card) beside a "
                "comparison page, as <name>-<id>.html, and link them from it.",
            ),
        ] = False,
        stars: StarsOption = "relative",
        also_per: Annotated[
            list[str] | None,
            typer.Option(
                "--also-per",
                help="Another unit to rank the same quality by, in a leaderboard of its own "
                "(repeatable; e.g. --also-per samples for training runs).",
            ),
        ] = None,
        mlflow: MlflowOption = None,
        experiment: ExperimentOption = None,
    ) -> int:
        from footprint.cli._common import mlflow_records, reading_store
        from footprint.reporting import write_report

        runs: list | None = list(run_ids) if run_ids else None
        records = mlflow_records(mlflow, experiment, store)
        if records is not None:
            runs = _chosen(records, runs)
        else:
            reading_store(store)
        path, pages = write_report(
            runs,
            out,
            task=task,
            store=store,
            overwrite=force,
            quality=quality,
            per=per,
            run_pages=run_pages,
            stars=stars,
            also_per=also_per or (),
        )
        print(path)
        if run_pages:
            print(f"{len(pages)} run page{'' if len(pages) == 1 else 's'} written in {path.parent}")
        return 0


def _chosen(records: list, prefixes: list | None) -> list:
    """The MLflow-held records the run ids (or unique prefixes) name; all without any."""
    from footprint.errors import UsageError

    if not prefixes:
        if not records:
            raise UsageError("no footprint runs in that MLflow store: log some with log_run")
        return records
    chosen = []
    for prefix in prefixes:
        hits = [r for r in records if r.id.startswith(prefix)]
        if len(hits) != 1:
            what = "no run" if not hits else f"{len(hits)} runs"
            raise UsageError(f"{what} in the MLflow store with an id starting {prefix!r}")
        chosen.append(hits[0])
    return chosen
