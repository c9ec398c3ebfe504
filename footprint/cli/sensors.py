"""``footprint sensors``: what this machine can measure, how, and how to fix what it can't."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("sensors", help="Show what this machine can measure and how.")
    def sensors_command(
        format: Annotated[str, typer.Option(help="text or json.")] = "text",
        powercap_root: Annotated[Path, typer.Option(hidden=True)] = Path("/sys/class/powercap"),
    ) -> int:
        from footprint.errors import UsageError
        from footprint.sensors.probe import probe

        if format not in ("text", "json"):
            raise UsageError(f"--format must be text or json, got {format!r}")
        found = probe(powercap_root=powercap_root)
        if format == "json":
            json.dump(
                {
                    "sources": [s.to_dict() for s in found.sources],
                    "devices": [s.device.to_dict() for s in found.sensors],
                },
                sys.stdout,
                indent=2,
            )
            print()
            return 0
        for src in found.sources:
            mark = "ok " if src.available else "-- "
            print(f"{mark}{src.source}: {src.summary}")
            if src.fix:
                print(f"     fix: {src.fix}")
        print()
        if not found.sensors:
            print("no devices: footprint cannot measure or estimate anything here")
            return 1
        print("devices:")
        width = max(len(s.device.id) for s in found.sensors)
        for s in found.sensors:
            d = s.device
            how = "measured" if d.measured else "ESTIMATED"
            print(f"  {d.id:<{width}}  {how:<9}  {d.method:<28}  {d.name}")
        if any(not s.device.measured for s in found.sensors):
            print(
                "\nestimates are labelled in every record; "
                "docs/estimates.md states their assumptions"
            )
        return 0
