"""What the benchmarks share: a measurement in a fresh interpreter, and the result table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def child_json(
    args: Sequence[str], env: Mapping[str, str] | None = None, timeout_s: float = 900
) -> dict:
    """Run ``python ARGS`` with the checkout on ``PYTHONPATH`` (plus ``env``); its last stdout
    line, as JSON. A failing child ends the benchmark with its stderr."""
    full = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    proc = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=full, timeout=timeout_s
    )
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def print_rows(rows: Sequence[Sequence[object]]) -> None:
    """Rows of cells as left-aligned columns."""
    width = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, width)).rstrip())
