"""``footprint leaderboard``: rank models and variants by energy per unit of work and quality.

Renders :func:`footprint.leaderboard.build`'s plain rows (no pandas needed). Notes go after the
table; with csv or json they go to stderr (json also carries them), so stdout stays parseable.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from typing import Annotated, Any

import typer

from footprint.cli._common import (
    ExperimentOption,
    ForceOption,
    MlflowOption,
    OutOption,
    StarsOption,
    StoreOption,
    WideOption,
    fmt_emissions,
    fmt_energy_j,
    literal,
    mlflow_records,
    output_to,
    print_table,
    reading_store,
)

FORMATS = ("table", "csv", "markdown", "json")

# (column, header, format) shown by table and markdown; csv and json carry every column.
_SHOWN = (
    ("rank", "rank", "d"),
    ("task", "task", "s"),
    ("model", "model", "s"),
    ("variant", "variant", "s"),
    ("n", "n", "d"),
    ("quality", "{quality}", ".4g"),
    ("energy_wh_per_1k", "energy/1k {per}", "wh"),
    ("energy_ci", "95% CI", "ci"),
    ("emissions_g_per_1k", "CO2e/1k {per}", "g"),
    ("quality_per_kwh", "{quality} per kWh/unit", ".4g"),
    ("pareto", "pareto", "b"),
    ("stars", "stars", "stars"),
    ("energy_vs_baseline", "vs baseline", "x"),
    ("quality_delta_vs_baseline", "d {quality}", "+.3g"),
    ("tie_with", "tie with", "list"),
    ("unranked", "unranked", "s"),
)


#: the table's columns left out first when it does not fit the terminal (then --wide)
_DROP_ORDER = (
    "tie_with",
    "unranked",
    "quality_per_kwh",
    "quality_delta_vs_baseline",
    "pareto",
    "energy_ci",
    "stars",
    "emissions_g_per_1k",
    "n",
    "variant",
)


def _cell(row: dict, column: str, fmt: str) -> str:
    if column == "energy_ci":
        low, high = row["energy_wh_per_1k_ci_low"], row["energy_wh_per_1k_ci_high"]
        if low is None:
            return "-"
        return f"[{fmt_energy_j(low * 3600)}, {fmt_energy_j(high * 3600)}]"
    value = row.get(column)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if fmt == "wh":  # a person reads J/Wh/kWh with prefixes; csv and json keep Wh
        return fmt_energy_j(value * 3600)
    if fmt == "g":
        return fmt_emissions(value / 1000)
    if fmt == "x":
        return f"×{value:.2f}"
    if fmt == "b":
        return "yes" if value else ""
    if fmt == "stars":
        return "*" * value if value else "-"
    if fmt == "list":
        return ", ".join(value) or ""
    if fmt == "s":
        return str(value) + (" (baseline)" if column == "variant" and row["baseline"] else "")
    return format(value, fmt)


def _headers(board: Any) -> list[str]:
    return [h.format(quality=board.quality, per=board.per) for _, h, _ in _SHOWN]


def _table_columns(board: Any) -> set[str]:
    """Columns worth a terminal's width: not ones empty in every row, nor a single task."""
    shown = {c for c, _, _ in _SHOWN} - {"quality_per_kwh"}
    if len({row["task"] for row in board.rows}) == 1:
        shown.discard("task")
    for column in ("emissions_g_per_1k", "energy_vs_baseline", "quality_delta_vs_baseline"):
        if all(row[column] is None for row in board.rows):
            shown.discard(column)
    return shown


def _plain(value: Any) -> Any:
    return ";".join(value) if isinstance(value, list) else ("" if value is None else value)


def render(board: Any, format: str) -> str:
    """The board as text in ``format`` (table output excepted: it goes through rich)."""
    if format == "json":
        return json.dumps(
            {
                "quality": board.quality,
                "per": board.per,
                "higher_is_better": board.higher_is_better,
                "rows": board.rows,
                "notes": board.notes,
            },
            indent=2,
        )
    if format == "csv":
        import io

        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(board.columns)
        for row in board.rows:
            writer.writerow([_plain(row[c]) for c in board.columns])
        return buf.getvalue().rstrip("\n")
    # markdown
    from footprint.formatting import markdown_table

    cells = [[_cell(row, c, f) for c, _, f in _SHOWN] for row in board.rows]
    return markdown_table(_headers(board), cells, board.notes)


def register(app: typer.Typer) -> None:
    @app.command(
        "leaderboard",
        help="Rank models and variants by energy per unit of work and quality.",
    )
    def leaderboard_command(
        quality: Annotated[str, typer.Option(help="Quality metric logged with run.log.")],
        per: Annotated[str, typer.Option(help="Work unit counted with run.count (queries...).")],
        task: Annotated[str | None, typer.Option(help="Only runs of this task.")] = None,
        phase: Annotated[
            str | None, typer.Option(help="Use the energy of this phase (name or path).")
        ] = None,
        store: StoreOption = None,
        format: Annotated[str, typer.Option(help="table, csv, markdown or json.")] = "table",
        higher_is_better: Annotated[
            bool | None,
            typer.Option(
                "--higher-is-better/--lower-is-better",
                help="Direction of the quality metric (default: from the runs or its name).",
                show_default=False,
            ),
        ] = None,
        status: Annotated[
            list[str] | None,
            typer.Option(help="Run statuses to rank (repeatable; default completed)."),
        ] = None,
        sort: Annotated[
            list[str] | None,
            typer.Option(help="Sort by these columns (repeatable; default: Pareto, energy)."),
        ] = None,
        descending: Annotated[bool, typer.Option(help="Sort --sort columns descending.")] = False,
        stars: StarsOption = "relative",
        mlflow: MlflowOption = None,
        experiment: ExperimentOption = None,
        wide: WideOption = False,
        out: OutOption = None,
        force: ForceOption = False,
    ) -> int:
        with output_to(out, force):
            from footprint.errors import UsageError
            from footprint.ranking import build

            if format not in FORMATS:
                raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
            records = mlflow_records(mlflow, experiment, store)
            board = build(
                records if records is not None else reading_store(store).records(),
                quality=quality,
                per=per,
                task=task,
                phase=phase,
                higher_is_better=higher_is_better,
                statuses=tuple(status) if status else ("completed",),
                sort_by=sort or None,
                ascending=not descending,
                stars=stars,
            )
            if format in ("csv", "json"):
                print(render(board, format))
                for note in board.notes:
                    print(f"footprint: note: {note}", file=sys.stderr)
                return 0
            if format == "markdown":
                print(render(board, format))
                return 0
            shown = _table_columns(board)
            tasks = {row["task"] for row in board.rows}
            title = f"energy per 1,000 {per}" + (f", task {tasks.pop()}" if len(tasks) == 1 else "")
            spec = [(c, h, f) for (c, _, f), h in zip(_SHOWN, _headers(board)) if c in shown]
            headers = [h for _, h, _ in spec]
            by_column = {c: h for c, h, _ in spec}
            print_table(
                title,
                headers,
                [[literal(_cell(row, c, f)) for c, _, f in spec] for row in board.rows],
                left={h for c, h, f in spec if f in ("s", "list", "stars", "b")},
                drop_order=[by_column[c] for c in _DROP_ORDER if c in by_column],
                wide=wide,
                fold={
                    by_column[c]
                    for c in ("task", "model", "variant", "tie_with", "unranked")
                    if c in by_column
                },
                notes=list(board.notes),
            )
            return 0
