"""``footprint regions [QUERY]``: the carbon-intensity table, or a search in it."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from footprint.cli._common import (
    ForceOption,
    FormatOption,
    OutOption,
    WideOption,
    check_format,
    output_to,
    print_table,
)

HEADERS = ["region", "name", "kind", "g CO2e/kWh", "source", "year", "basis"]
#: columns a narrow terminal loses first
DROP_ORDER = ["basis", "year", "kind", "source", "name"]
#: what csv carries (json: each row whole)
CSV_COLUMNS = ["region", "name", "kind", "g_per_kwh", "source", "year", "basis", "gas",
               "grid_region"]  # fmt: skip


def _cells(r: dict[str, Any]) -> list[str]:
    via = f" (via {r['grid_region']})" if r["grid_region"] else ""
    return [
        r["region"],
        r["name"],
        r["kind"],
        "no data" if r["g_per_kwh"] is None else f"{r['g_per_kwh']:.1f}",
        (r["source"] or "-") + via,
        str(r["year"] or "-"),
        f"{r['basis']}, {r['gas']}" if r["basis"] else "-",
    ]


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
        format: FormatOption = "table",
        wide: WideOption = False,
        out: OutOption = None,
        force: ForceOption = False,
    ) -> int:
        from footprint.carbon import list_regions, search_regions
        from footprint.errors import UsageError
        from footprint.formatting import csv_text, literal, markdown_table

        check_format(format)
        kinds = ("country", "subregion", "zone", "cloud")
        if kind is not None and kind not in kinds:
            raise UsageError(f"--kind must be one of {', '.join(kinds)}, got {kind!r}")
        with output_to(out, force):
            if query:  # filtered before search_regions keeps its first 20 rows
                rows = search_regions(query, kinds=(kind,) if kind else None)
            else:
                rows = list_regions((kind,) if kind else None, with_data_only=False)
            closest = bool(rows) and rows[0].get("match") == "closest"
            notes = []
            if closest:
                notes.append(
                    f"no region code or name contains {query!r}; the closest names instead "
                    "(not containment matches)"
                )
            if format == "json":
                print(json.dumps(rows, indent=2))
            elif format == "csv":
                print(csv_text(CSV_COLUMNS, [[r.get(c) for c in CSV_COLUMNS] for r in rows]))
            elif format == "markdown":
                print(markdown_table(HEADERS, [_cells(r) for r in rows], notes))
            elif not rows:
                print(
                    literal(
                        f"no region matches {query!r}" + (f" among kind {kind}" if kind else "")
                    )
                )
            else:
                for note in notes:
                    print(literal(note + ":"))
                print_table(
                    "",
                    HEADERS,
                    [_cells(r) for r in rows],
                    left={"region", "name", "kind", "source", "basis"},
                    drop_order=DROP_ORDER,
                    wide=wide,
                    fold={"name", "source"},
                )
        return 0
