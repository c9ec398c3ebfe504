"""Options and formatting shared by subcommands (one word for one thing everywhere)."""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from footprint.formatting import (  # noqa: F401  (re-exported for subcommands)
    fmt_duration,
    fmt_emissions,
    fmt_energy_j,
    fmt_kwh,
    literal,
    measured_label,
)


def _store_path(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise typer.BadParameter(
            "is empty: give the run store's directory, or leave --store out for "
            "$FOOTPRINT_DIR or ./footprint-runs"
        )
    return value


StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="Run store directory (default: $FOOTPRINT_DIR or ./footprint-runs).",
        callback=_store_path,
    ),
]


MlflowOption = Annotated[
    str | None,
    typer.Option(
        "--mlflow",
        metavar="URI",
        help="Read the runs logged to this MLflow tracking URI (sqlite:///mlruns.db, "
        "http://127.0.0.1:5000) by footprint's log_run, instead of a run store.",
    ),
]
ExperimentOption = Annotated[
    list[str] | None,
    typer.Option(
        "--experiment",
        help="With --mlflow: only this MLflow experiment (repeatable; default: all).",
    ),
]


def mlflow_records(uri: str | None, experiments: list[str] | None, store: str | None) -> Any:
    """The records an MLflow tracking URI holds (``--mlflow``), None without one; the options'
    misuse is a UsageError naming the fix."""
    from footprint.errors import UsageError

    if uri is None:
        if experiments:
            raise UsageError("--experiment reads MLflow experiments: give --mlflow URI with it")
        return None
    if store is not None:
        raise UsageError("give --store or --mlflow, not both: they are two places runs are kept")
    if not uri.strip():
        raise UsageError("--mlflow is empty: give a tracking URI, e.g. sqlite:///mlruns.db")
    try:
        from footprint.integrations.mlflow import load_records
    except ModuleNotFoundError as exc:
        raise UsageError(f"{exc}") from exc
    return load_records(uri, experiments or None)


def reading_store(store: str | None) -> Any:
    """The store a reading command reads: a StoreError when the directory named by --store or
    $FOOTPRINT_DIR does not exist (a typo must not read as "no runs")."""
    import os

    from footprint.errors import StoreError
    from footprint.store import ENV_VAR, Store

    st = Store(store)
    explicit = store is not None or bool(os.environ.get(ENV_VAR))
    if explicit and not st.path.exists():
        where = "--store" if store is not None else f"${ENV_VAR}"
        raise StoreError(
            f"no run store at {str(st.path)!r} (from {where}): check the path, or track a run "
            "into it first"
        )
    if st.path.exists() and not st.path.is_dir():
        raise StoreError(f"{str(st.path)!r} is a file, not a run store directory")
    return st


def cell(value: object) -> Any:
    """A Rich table cell (or title) showing ``value`` as literal text: never parsed as markup
    (``[/]``, ``[link=...]``), with control and bidirectional characters escaped."""
    from rich.text import Text

    return Text(literal(value))


def add_row(table: Any, *values: object) -> None:
    """``table.add_row`` with every value shown as literal text (see :func:`cell`)."""
    table.add_row(*(cell(v) for v in values))


WideOption = Annotated[
    bool,
    typer.Option("--wide", help="Show every column, however wide the table gets."),
]


#: how narrow a column of text that may wrap can get before it is left out instead
MIN_TEXT = 12


def fit_columns(
    headers: list[str],
    rows: list[list[str]],
    drop_order: list[str],
    width: int | None,
    fold: set[str] | None = None,
) -> tuple[list[int], list[str]]:
    """Which columns a table keeps to fit ``width`` characters (None: all), and the headers of
    those left out: numbers and ids are never wrapped, so columns go instead, in
    ``drop_order`` (headers, least useful first). Columns in ``fold`` (free text: names) may
    wrap down to MIN_TEXT characters; a header may wrap at its spaces."""
    keep = list(range(len(headers)))
    fold = fold or set()

    def need(i: int) -> int:
        words = max((len(w) for w in headers[i].split()), default=1)
        longest = max([words, *(len(r[i]) for r in rows)])
        return min(longest, max(words, MIN_TEXT)) if headers[i] in fold else longest

    def total() -> int:
        return sum(need(i) for i in keep) + 3 * len(keep) + 1  # rich's borders and padding

    dropped: list[str] = []
    if width is not None:
        for name in drop_order:
            if total() <= width:
                break
            if name in headers and headers.index(name) in keep and len(keep) > 1:
                keep.remove(headers.index(name))
                dropped.append(name)
    return keep, dropped


#: the widest a --wide table gets: free text folds beyond it, numbers never do
WIDE_MAX = 400


def print_table(
    title: str,
    headers: list[str],
    rows: list[list[str]],
    *,
    left: set[str],
    drop_order: list[str],
    wide: bool,
    fold: set[str] | None = None,
    notes: list[str] | None = None,
) -> None:
    """A Rich table on stdout that stays readable at the console's width: numbers and ids never
    wrap mid-token (columns that do not fit are left out, with a note; ``--wide``: all of them),
    free text (``fold``) wraps."""
    from rich.console import Console
    from rich.table import Table

    fold = fold or set()
    console = Console(highlight=False)
    keep, dropped = fit_columns(headers, rows, drop_order, None if wide else console.width, fold)
    if wide:  # as wide as the table needs, up to WIDE_MAX
        natural = sum(max([len(headers[i]), *(len(r[i]) for r in rows)]) + 3 for i in keep) + 1
        console = Console(highlight=False, width=max(console.width, min(natural, WIDE_MAX)))
    table = Table(title=cell(title), title_justify="left")
    for i in keep:
        solid = headers[i] not in fold and rows
        table.add_column(
            cell(headers[i]), justify="left" if headers[i] in left else "right",
            overflow="fold", min_width=max(len(r[i]) for r in rows) if solid else None,
            no_wrap=bool(solid),  # else rich narrows it first and the minimum undoes that
        )  # fmt: skip
    for r in rows:
        table.add_row(*(cell(r[i]) for i in keep))
    console.print(table, crop=False)
    if dropped:
        console.print(
            literal(f"note: columns left out to fit {console.width} columns: "
                    f"{', '.join(dropped)} (--wide for all, or --format csv/json)"),
            markup=False,
        )  # fmt: skip
    for note in notes or []:
        console.print(literal(f"note: {note}"), markup=False)


StarsOption = Annotated[
    str,
    typer.Option(
        "--stars",
        help="relative (five bands of the task's energy range, the default) or absolute (fixed "
        "bands of energy against the baseline: 5 at most 0.25x, 4 at most 0.5x, 3 at most 0.9x, "
        "2 at most 1.1x, 1 above).",
    ),
]


def parse_tags(values: list[str] | None) -> dict[str, str]:
    """``--tag KEY=VALUE`` options (repeatable) as a dict; a UsageError for any other shape."""
    from footprint.errors import UsageError

    tags = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--tag must be KEY=VALUE, got {item!r}")
        tags[key] = value
    return tags


#: what --format takes on a command that prints a table
TABLE_FORMATS = ("table", "json", "csv", "markdown")


def check_format(format: str, formats: tuple[str, ...] = TABLE_FORMATS) -> None:
    """Refuse an unknown ``--format`` before any work, naming the ones there are."""
    if format not in formats:
        from footprint.errors import UsageError

        raise UsageError(f"--format must be {', '.join(formats[:-1])} or {formats[-1]}, "
                         f"got {format!r}")  # fmt: skip


FormatOption = Annotated[str, typer.Option(help="table, json, csv or markdown.")]


OutOption = Annotated[
    Any,
    typer.Option(
        "-o", "--out", help="Write the output to this file instead of the terminal.",
        dir_okay=False,
    ),
]  # fmt: skip
ForceOption = Annotated[bool, typer.Option("--force", help="Replace the --out file if it exists.")]


@contextlib.contextmanager
def output_to(out: Any, force: bool) -> Iterator[None]:
    """Send what the command prints to ``out`` (a file; None: the terminal). Refused before any
    work: a directory, a file that exists (unless ``force``), a folder that cannot be written
    (made now and a file tried in it: permission bits alone say nothing for root). The file is
    written whole, atomically, at the end."""
    if out is None:
        yield
        return
    import tempfile
    from pathlib import Path

    from footprint.errors import UsageError
    from footprint.files import write_atomic

    target = Path(out)
    if target.is_dir():
        raise UsageError(f"-o/--out {str(target)!r} is a directory: give a file name")
    if target.exists() and not force:
        raise UsageError(
            f"-o/--out {str(target)!r} already exists: pass --force to replace it, or choose "
            "another file"
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=target.parent):
            pass
    except OSError as exc:
        raise UsageError(
            f"-o/--out {str(target)!r} cannot be written ({exc.strerror or exc}): choose another "
            "file"
        ) from exc
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        yield
    write_atomic(target, buf.getvalue())
    print(literal(f"footprint: wrote {target}"), file=sys.stderr)
