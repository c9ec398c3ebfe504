"""``footprint import-codecarbon emissions.csv``: CodeCarbon's runs into the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from footprint.cli._common import StoreOption, literal


def parse_pairs(option: str, pairs: list[str] | None) -> dict[str, float]:
    """``["queries=1000", ...]`` -> ``{"queries": 1000.0}``; UsageError naming the bad one."""
    from footprint.errors import UsageError

    out: dict[str, float] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        try:
            if not sep or not key.strip():
                raise ValueError
            out[key.strip()] = float(value)
        except ValueError:
            raise UsageError(
                f"{option} must be UNIT=NUMBER (e.g. {option} queries=10000), got {pair!r}"
            ) from None
    return out


def register(app: typer.Typer) -> None:
    @app.command(
        "import-codecarbon",
        help="Import the runs of a CodeCarbon emissions.csv (energy and emissions as reported).",
    )
    def import_codecarbon_command(
        file: Annotated[Path, typer.Argument(help="CodeCarbon's emissions.csv.")],
        store: StoreOption = None,
        tz: Annotated[
            str | None,
            typer.Option(
                help="IANA zone of CodeCarbon's timestamps (default: this machine's local zone)."
            ),
        ] = None,
        task: Annotated[str | None, typer.Option(help="Task of the imported runs.")] = None,
        model: Annotated[str | None, typer.Option(help="Model of the imported runs.")] = None,
        variant: Annotated[str | None, typer.Option(help="Variant of the imported runs.")] = None,
        baseline: Annotated[bool, typer.Option(help="Mark the runs as the baseline.")] = False,
        count: Annotated[
            list[str] | None,
            typer.Option(help="Work units of each run, UNIT=NUMBER (repeatable)."),
        ] = None,
        metric: Annotated[
            list[str] | None,
            typer.Option(help="Quality metric of each run, NAME=VALUE (repeatable)."),
        ] = None,
    ) -> int:
        from footprint.importers.codecarbon import import_codecarbon
        from footprint.store import Store

        records = import_codecarbon(
            file,
            store=store,
            tz=tz,
            task=task,
            model=model,
            variant=variant,
            baseline=baseline,
            counts=parse_pairs("--count", count),
            metrics=parse_pairs("--metric", metric),
        )
        names = ", ".join(f"{r.name} ({r.id[:8]})" for r in records)
        print(literal(f"imported {len(records)} run(s) into {Store(store).path}: {names}"))
        return 0
