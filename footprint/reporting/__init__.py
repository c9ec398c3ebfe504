"""The HTML report: one self-contained offline page per run, per comparison, or for a store.

Two steps, as everywhere downstream of the store: :mod:`footprint.reporting.data` builds plain
data from records, then Jinja2 templates (package data, autoescaped) fill it in, with charts from
:mod:`footprint.reporting.plots` inlined as SVG. Nothing heavy is imported until
:func:`report` runs. See docs/report.md.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from footprint.files import write_atomic
from footprint.record import RunRecord
from footprint.reporting.data import (
    DEFAULT_OUT,
    ReportError,
    ReportExistsError,
    default_out,
    load_records,
)

__all__ = [
    "DEFAULT_OUT",
    "ReportError",
    "ReportExistsError",
    "render_html",
    "report",
    "write_report",
]


def report(
    runs: Sequence[str | RunRecord | dict] | None = None,
    out: str | os.PathLike | None = "reports/footprint-report.html",
    task: str | None = None,
    store: str | os.PathLike | None = None,
    overwrite: bool = False,
    quality: str | None = None,
    per: str | None = None,
    run_pages: bool = False,
    stars: str = "relative",
    also_per: Sequence[str] = (),
    costs: Sequence[dict] | None = None,
) -> Path:
    """Write a self-contained HTML report and return its path.

    ``runs``: None for every run of ``store`` (default ``$FOOTPRINT_DIR`` or
    ``./footprint-runs``), or a list of run ids / unique prefixes and/or records (typed, or dicts
    in any schema version). One run
    gives a run page; several give a comparison page with a leaderboard when ``quality`` and
    ``per`` are given or can be inferred from the runs' metrics and counts (the page says how).
    ``task`` keeps one task's runs. ``out``: the file to write; ``None`` picks
    ``reports/<name>-<id8>.html`` for one run and ``reports/footprint-report.html`` for several;
    parent directories are created. An existing file is replaced only with
    ``overwrite=True`` (CLI: ``--force``), else :class:`ReportExistsError`.

    ``run_pages=True`` (CLI: ``--run-pages``) also writes every run of a comparison page its own
    page beside it, ``<name>-<id8>.html``, which the runs table then links to; the same
    overwrite rule applies to each, checked before anything is written.

    ``stars``: "relative" (the leaderboard's rows against each other) or "absolute" (fixed
    bands against the baseline; :data:`footprint.ranking.ABSOLUTE_STARS`). ``also_per``: more
    units to rank the same quality by, each a leaderboard of its own below the main one (the
    demo's training board: ``also_per=["samples"]``). ``costs``: rows of a "cost to produce each
    variant, and when it pays back" table, as :func:`footprint.demo.run.build_costs` makes them.

    Raises :class:`footprint.errors.RunNotFoundError` for an unknown run or an empty store and
    :class:`ReportError` for other bad input, each saying what to change.
    """
    return write_report(
        runs,
        out,
        task=task,
        store=store,
        overwrite=overwrite,
        quality=quality,
        per=per,
        run_pages=run_pages,
        stars=stars,
        also_per=also_per,
        costs=costs,
    )[0]


def check_report(
    out: str | os.PathLike = "reports/footprint-report.html", overwrite: bool = False
) -> Path:
    """Fail now, before a script's work, where ``report(out=out, overwrite=overwrite)`` would
    fail at its end: the file exists (and ``overwrite`` is False), it is a directory, or its
    folder cannot be written. Returns the path. Call it at the start of a script that ends with
    :func:`report`."""
    target = Path(out)
    if target.is_dir():
        raise ReportError(f"{str(target)!r} is a directory: give a file name such as report.html")
    if target.exists() and not overwrite:
        raise ReportExistsError(
            f"{str(target)!r} already exists, and the report at the end of this script would "
            "not replace it: choose another file (out=), or pass overwrite=True (to both "
            "check_report and report)"
        )
    folder = target.parent if str(target.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"cannot make the folder {str(folder)!r}: {exc.strerror or exc}") from exc
    if not os.access(folder, os.W_OK):
        raise ReportError(f"the folder {str(folder)!r} is not writable: choose another out=")
    return target


def write_report(
    runs: Sequence[str | RunRecord | dict] | None = None,
    out: str | os.PathLike | None = "reports/footprint-report.html",
    *,
    task: str | None = None,
    store: str | os.PathLike | None = None,
    overwrite: bool = False,
    quality: str | None = None,
    per: str | None = None,
    run_pages: bool = False,
    stars: str = "relative",
    also_per: Sequence[str] = (),
    costs: Sequence[dict] | None = None,
) -> tuple[Path, list[Path]]:
    """:func:`report`, returning ``(page, run pages written)``."""
    records = load_records(runs, store)
    target = default_out(records) if out is None else Path(out)
    single = len(records) == 1 and task is None and quality is None and per is None and not also_per
    # the runs a comparison page shows get their own pages (a run page is its run's page)
    shown = [] if single or not run_pages else [r for r in records if task in (None, r.task)]
    pages = {r.id: target.parent / default_out([r]).name for r in shown}
    if any(p.name == target.name for p in pages.values()):
        raise ReportError(
            f"{str(target)!r} is also the name of a run's own page: choose another -o/--out"
        )
    if len(set(pages.values())) < len(pages):
        raise ReportError(
            "two runs would get the same page name (same name and id prefix): report them "
            "separately with -o/--out"
        )
    existing = [p for p in [target, *pages.values()] if p.exists()]
    if existing and not overwrite:
        what = (
            repr(str(existing[0]))
            if len(existing) == 1
            else f"{len(existing)} files ({', '.join(repr(str(p)) for p in existing[:3])}"
            + (", ...)" if len(existing) > 3 else ")")
        )
        raise ReportExistsError(
            f"{what} already exist{'s' if len(existing) == 1 else ''}: pass --force (CLI) or "
            "overwrite=True to replace, or choose another file with -o/--out (out=)"
        )
    for p in [target, *pages.values()]:
        if p.exists() and p.is_dir():
            raise ReportError(f"{str(p)!r} is a directory: give a file name such as report.html")
    if single:
        html = render_html(records, out_dir=target.parent)
    else:
        from footprint.reporting import render

        # rendered first, so bad arguments fail before any file is written
        html = render.store_page(
            records,
            task=task,
            quality=quality,
            per=per,
            out_dir=target.parent,
            linked={i: p.name for i, p in pages.items()},
            stars=stars,
            also_per=also_per,
            costs=costs,
        )
    written = []
    if pages:
        from footprint.reporting import render

        by_id = {r.id: r for r in shown}
        for run_id, path in pages.items():
            _write(path, render.run_page(by_id[run_id]))
            written.append(path)
    _write(target, html)
    return target, written


def render_html(
    records: Sequence[RunRecord],
    *,
    task: str | None = None,
    quality: str | None = None,
    per: str | None = None,
    out_dir: Path | None = None,
) -> str:
    """The report page for ``records`` as an HTML string (a run page for one record without
    ``task``, a comparison page otherwise). ``out_dir`` is where the page will live: run pages
    already there (``<name>-<id8>.html``) are linked from the runs table."""
    from footprint.reporting import render

    if len(records) == 1 and task is None and quality is None and per is None:
        return render.run_page(records[0])
    return render.store_page(records, task=task, quality=quality, per=per, out_dir=out_dir)


def _write(target: Path, html: str) -> None:
    """Write atomically: a reader never sees half a page."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(
            f"cannot create {str(target.parent)!r}: {exc.strerror or exc}; choose another -o/--out"
        ) from exc
    write_atomic(target, html)
