"""``footprint report``: a self-contained HTML page of one run, several, or a whole store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from footprint.cli._common import StoreOption


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
    ) -> int:
        from footprint.cli._common import reading_store
        from footprint.reporting import write_report

        reading_store(store)
        path, pages = write_report(
            list(run_ids) if run_ids else None,
            out,
            task=task,
            store=store,
            overwrite=force,
            quality=quality,
            per=per,
            run_pages=run_pages,
        )
        print(path)
        if run_pages:
            print(f"{len(pages)} run page{'' if len(pages) == 1 else 's'} written in {path.parent}")
        return 0
