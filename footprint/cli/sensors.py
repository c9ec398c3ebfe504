"""``footprint sensors``: what this machine can measure, how, and how to fix what it can't."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from footprint.cli._common import (
    TABLE_FORMATS,
    ForceOption,
    FormatOption,
    OutOption,
    WideOption,
    check_format,
    output_to,
    print_table,
)

HEADERS = ["device", "how", "method", "name"]
CSV_COLUMNS = ["id", "kind", "name", "method", "measured"]
ESTIMATES_NOTE = (
    "estimates are labelled in every record; docs/estimates.md states their assumptions"
)


def register(app: typer.Typer) -> None:
    @app.command("sensors", help="Show what this machine can measure and how.")
    def sensors_command(
        format: FormatOption = "table",
        wide: WideOption = False,
        out: OutOption = None,
        force: ForceOption = False,
        powercap_root: Annotated[Path, typer.Option(hidden=True)] = Path("/sys/class/powercap"),
    ) -> int:
        from footprint.formatting import csv_text, literal, markdown_table, md_text
        from footprint.sensors.probe import probe

        format = "table" if format == "text" else format  # the name it had before 0.x
        check_format(format, TABLE_FORMATS)
        with output_to(out, force):
            found = probe(powercap_root=powercap_root)
            devices = [s.device for s in found.sensors]
            rows = [[d.id, "measured" if d.measured else "ESTIMATED", d.method, d.name]
                    for d in devices]  # fmt: skip
            estimated = any(not d.measured for d in devices)
            if format == "json":
                sources = [s.to_dict() for s in found.sources]
                doc = {"sources": sources, "devices": [d.to_dict() for d in devices]}
                print(json.dumps(doc, indent=2))
            elif format == "csv":
                print(
                    csv_text(CSV_COLUMNS, [[d.to_dict()[c] for c in CSV_COLUMNS] for d in devices])
                )
            elif format == "markdown":
                for src in found.sources:
                    mark = "available" if src.available else "not available"
                    print(f"- **{md_text(src.source)}** ({mark}): {md_text(src.summary)}")
                    if src.fix:
                        print(f"  fix: {md_text(src.fix)}")
                print()
                notes = [ESTIMATES_NOTE] if estimated else []
                print(markdown_table(HEADERS, rows, notes) if rows else "no devices")
            else:
                for src in found.sources:
                    mark = "ok " if src.available else "-- "
                    print(literal(f"{mark}{src.source}: {src.summary}"))
                    if src.fix:
                        print(literal(f"     fix: {src.fix}"))
                print()
                if rows:
                    print_table(
                        "devices",
                        HEADERS,
                        rows,
                        left=set(HEADERS),
                        drop_order=["method", "name"],
                        wide=wide,
                        fold={"name"},
                        notes=[ESTIMATES_NOTE] if estimated else None,
                    )
        if not devices:
            if format == "table":
                print("no devices: footprint cannot measure or estimate anything here")
            return 1
        return 0
