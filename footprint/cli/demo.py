"""``footprint demo``: a full model and its compressed versions, measured, ranked and reported.

Thin: :func:`footprint.demo.run.run_demo` does the work; this module shows its progress (a rich
bar on a terminal, one line per step otherwise, both on stderr) and prints the results.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from footprint.cli._common import add_row, cell, literal
from footprint.formatting import fmt_energy_j
from footprint.units import J_PER_WH


def register(app: typer.Typer) -> None:
    @app.command(
        "demo",
        help=(
            "Train a full model and its int8, bf16, pruned and distilled versions on "
            "scikit-learn's digits (CPU, no download), measure each in training and "
            "steady-state inference, print the leaderboard and write an HTML report. "
            "Needs the demo extra: pip install -e '.[demo]'."
        ),
    )
    def demo_command(
        quick: Annotated[
            bool,
            typer.Option(
                "--quick", help="Fewer epochs and shorter, fewer repeats (well under a minute)."
            ),
        ] = False,
        repeats: Annotated[
            int | None,
            typer.Option(help="Inference runs per variant (default 5; --quick: 3).", min=1),
        ] = None,
        out: Annotated[
            Path,
            typer.Option(
                "-o",
                "--out",
                help="HTML report to write; an earlier footprint report there is replaced.",
                dir_okay=False,
            ),
        ] = Path("reports/demo.html"),
        store: Annotated[
            Path | None,
            typer.Option(
                "--store",
                help="New or empty directory for the demo's runs (default: a fresh "
                "demo-<UTC time> directory under $FOOTPRINT_DIR or ./footprint-runs).",
                file_okay=False,
            ),
        ] = None,
        region: Annotated[
            str | None,
            typer.Option(
                help="Grid region for CO2e (e.g. FR, US-CA, gcp:europe-west9); without it "
                "emissions are left empty."
            ),
        ] = None,
        tiny: Annotated[bool, typer.Option("--tiny", hidden=True)] = False,  # tests only
    ) -> int:
        from footprint.demo.run import run_demo
        from footprint.sensors.accounting import CONTENTION_THRESHOLD, busy_now

        busy = busy_now()
        if busy is not None and busy > CONTENTION_THRESHOLD:
            print(
                f"footprint: warning: the machine is busy (other processes use {busy:.0%} of "
                "the CPUs): runs made now are flagged contended and may be left unranked; "
                "run the demo on a quiet machine for figures you can compare",
                file=sys.stderr,
            )
        with _Progress() as progress:
            result = run_demo(
                quick=quick,
                repeats=repeats,
                out=out,
                store=store,
                region=region,
                profile="tiny" if tiny else None,
                progress=progress,
            )
        _print_result(result)
        return 0


class _Progress:
    """A rich progress bar on stderr when it is a terminal; otherwise a line per new stage."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._task: Any = None
        self._stage: str | None = None

    def __enter__(self) -> _Progress:
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("footprint demo", total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def __call__(self, stage: str, detail: str, done: int, total: int) -> None:
        text = f"{stage}: {detail}" if detail else stage
        if self._bar is not None:
            self._bar.update(self._task, description=text, completed=done, total=total)
        elif stage != self._stage or stage == "measuring inference":
            print(f"footprint demo [{done}/{total}] {text}", file=sys.stderr, flush=True)
        self._stage = stage


def _print_result(result: Any) -> None:
    from rich.console import Console

    from footprint.cli._common import fmt_duration, fmt_emissions, fmt_kwh

    # A log or pipe gets full lines rather than rich's 80 columns (unless COLUMNS says).
    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    console = Console(highlight=False, width=120 if wide else None)
    say = lambda text="": console.print(literal(text), markup=False)  # noqa: E731
    say(
        f"footprint demo: one MLP on scikit-learn digits, full fp32 and 4 compressed versions; "
        f"{result.run_count} runs in {fmt_duration(result.duration_s)} "
        f"(profile {result.profile}, {result.repeats} inference runs per variant, "
        f"{result.threads} torch threads)"
    )
    say()
    say(f"Energy on this machine: {result.energy_label}.")
    for line in result.energy_lines:
        say(f"  {line}")
    if result.energy_label != "measured":
        say(
            "  Estimates compare variants on this machine; they are not a meter reading "
            "(docs/estimates.md)."
        )
    say()
    _print_region(say, result, fmt_emissions, fmt_kwh)
    say()
    _print_board(console, result.training_board, "Training: energy per 1,000 samples")
    say()
    _print_board(
        console, result.inference_board, "Inference (steady state): energy per 1,000 queries"
    )
    say()
    _print_costs(console, result.costs)
    say()
    say(f"store:  {result.store}")
    say(f"report: {result.out}")
    say(
        "again:  footprint leaderboard --store "
        f"{shlex.quote(str(result.store))} --task digits --quality accuracy --per queries"
    )


def _print_region(say: Any, result: Any, fmt_emissions: Any, fmt_kwh: Any) -> None:
    from footprint.carbon import carbon_intensity
    from footprint.demo.run import SCALE_REGIONS

    total = fmt_kwh(result.total_energy_kwh)
    if result.region is not None:
        i = carbon_intensity(result.region)
        say(
            f"Region {result.region} ({i.name}, {i.g_per_kwh:.4g} g CO2e/kWh, {i.source}, "
            f"{i.year or 'year not stated'}): {total} in all = "
            f"{fmt_emissions(result.total_emissions_kg)} CO2e."
        )
        return
    scale = ", ".join(
        f"{fmt_emissions(result.total_energy_kwh * i.g_per_kwh / 1000)} in {code} "
        f"({i.g_per_kwh:.0f} g/kWh)"
        for code, i in ((code, carbon_intensity(code)) for code in SCALE_REGIONS)
    )
    say(
        "Region: none given, so emissions are left empty (footprint never guesses a region). "
        "Pass --region for yours, e.g. --region FR."
    )
    say(f"  For scale only: the demo's {total} in all would be {scale}.")


def _print_board(console: Any, board: Any, title: str) -> None:
    """The board's rows, energies per 1,000 units with SI prefixes (mJ, J: the demo's are tiny).

    On a narrow terminal the stars and Pareto columns are left to the report, and the ties
    are listed under the table instead of in a column.
    """
    from rich import box
    from rich.table import Table

    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    def joules(wh_per_1k: float | None) -> str:
        return "-" if wh_per_1k is None else fmt_energy_j(wh_per_1k * J_PER_WH)

    def ties(row: dict) -> str:
        return ", ".join(t.split("/", 1)[-1] for t in row["tie_with"])

    wide = console.width >= 110
    # Narrow enough for 80 columns: the interval as +/- (it is symmetric: mean +/- t s / sqrt(n)).
    columns = ["#", "variant", "n", board.quality, "energy/1k", "± 95%", "× fp32"]
    columns.append(f"d {board.quality}")
    if wide:
        columns += ["stars", "pareto", "within noise of"]
    table = Table(title=cell(title), title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for header in columns:
        left = header in ("variant", "stars", "within noise of")
        # The CI and the ties may wrap; names and single numbers never.
        wraps = header == "within noise of"
        table.add_column(cell(header), justify="left" if left else "right", no_wrap=not wraps)
    for row in board.rows:
        low, high = row["energy_wh_per_1k_ci_low"], row["energy_wh_per_1k_ci_high"]
        cells = [
            str(row["rank"]) if row["unranked"] is None else row["unranked"],
            row["variant"]
            + (
                f" ({row['contended']} contended left out)"
                if row["contended"] and not row["unranked"]
                else ""
            ),
            str(row["n"]),
            num(row["quality"], ".3f"),
            joules(row["energy_wh_per_1k"]),
            "-" if low is None else joules((high - low) / 2),
            "-" if row["energy_vs_baseline"] is None else f"×{row['energy_vs_baseline']:.2f}",
            num(row["quality_delta_vs_baseline"], "+.3f"),
        ]
        if wide:
            cells += ["*" * row["stars"], "yes" if row["pareto"] else "", ties(row)]
        add_row(table, *cells)
    console.print(table)
    if not wide:
        for row in board.rows:
            if row["tie_with"]:
                console.print(
                    literal(f"  {row['variant']} is within noise of {ties(row)}"), markup=False
                )
    baseline = next((row["variant"] for row in board.rows if row["baseline"]), None)
    console.print(
        f"baseline: {baseline}. #: rank, 1 + variants whose whole 95% interval lies below this "
        "one's; within noise: the intervals overlap (docs/leaderboard.md)",
        markup=False,
    )
    for note in board.notes:
        console.print(literal(f"note: {note}"), markup=False)


def _print_costs(console: Any, costs: list[dict]) -> None:
    from rich import box
    from rich.table import Table

    if not costs:
        return
    table = Table(
        title="Cost to produce each variant, and when its own step pays back",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    headers = ("variant", "to build", "own step", "energy/1k", "saves/1k", "pays back")
    for header in headers:
        table.add_column(cell(header), justify="left" if header == "variant" else "right")
    for row in costs:
        saving = row["saving_j_per_query"]
        if row["variant"] == "fp32":
            back = "baseline"
        elif row.get("unranked"):
            back = row["unranked"]
        elif row["break_even_queries"] is None:
            back = "never (no saving)"
        elif row["within_noise"]:
            back = "within noise"
        else:
            back = f"{row['break_even_queries']:,.0f} queries"
        add_row(
            table,
            row["variant"],
            fmt_energy_j(row["build_j"]),
            fmt_energy_j(row["extra_j"]),
            fmt_energy_j(row["energy_j_per_query"] * 1000),
            "-" if saving is None or row["variant"] == "fp32" else fmt_energy_j(saving * 1000),
            back,
        )
    console.print(table)
    console.print(
        "build: every variant needs the full model's training, plus its own step (compression, "
        "or the student's training); saves: energy per 1,000 queries less than fp32; pays back: "
        "when the own step's energy is saved again.",
        markup=False,
    )
