"""Options and formatting shared by subcommands (one word for one thing everywhere)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from footprint.formatting import (  # noqa: F401  (re-exported for subcommands)
    fmt_duration,
    fmt_emissions,
    fmt_kwh,
    measured_label,
)

StoreOption = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help="Run store directory (default: $FOOTPRINT_DIR or ./footprint-runs).",
        file_okay=False,
    ),
]
