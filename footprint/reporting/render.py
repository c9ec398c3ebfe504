"""Rendering: the data views of :mod:`footprint.reporting.data` into the packaged templates.

The environment is created once per process, loads templates from package data and autoescapes
everything; charts are the only markup passed through (``Markup``), and they come from
matplotlib's SVG writer, which escapes text itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from footprint.formatting import (  # noqa: F401  (template filters)
    _sig,
    fmt_duration,
    fmt_emissions,
    fmt_energy_j,
    fmt_kwh,
    fmt_power,
    literal_lines,
)
from footprint.reporting import data as _data

if TYPE_CHECKING:
    from footprint.record import RunRecord


def fmt_num(x: Any, digits: int = 4) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if x.is_integer() and abs(x) < 1e15:
            return f"{int(x):,}"
        return _sig(x, digits)
    return str(x)


def fmt_pct(share: float | None) -> str:
    if share is None:
        return "–"
    pct = share * 100
    return f"{pct:.0f}%" if pct >= 10 or pct == 0 else f"{pct:.1f}%"


def fmt_time(iso: str | None) -> str:
    """``2026-11-20 09:07:00 UTC`` from an ISO 8601 timestamp."""
    if not iso:
        return "–"
    try:
        t = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    return t.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if t.utcoffset() is not None else "")


def fmt_signed(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "–"
    return ("+" if x > 0 else "") + _sig(x, digits) if x != 0 else "±0"


def sort_value(x: Any) -> str:
    """A cell's ``data-v``: numbers as repr (the page's script sorts them numerically)."""
    if x is None:
        return ""
    if isinstance(x, bool):
        return "1" if x else "0"
    if isinstance(x, (int, float)):
        return repr(float(x)) if math.isfinite(x) else ""
    return str(x)


@lru_cache(maxsize=1)
def environment() -> Any:
    """The Jinja2 environment: templates from package data, autoescape on, filters registered."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("footprint.reporting", "templates"),
        autoescape=True,  # every user string (run names, tags, metrics) is escaped
        undefined=jinja2.StrictUndefined,  # a template typo fails the tests, not the reader
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_literal,
    )
    env.filters.update(
        energy=fmt_energy_j,
        wh=lambda wh: "–" if wh is None else fmt_energy_j(wh * 3600.0),
        grams=lambda g: "–" if g is None else fmt_emissions(g / 1000.0),
        kwh=fmt_kwh,
        co2=fmt_emissions,
        dur=fmt_duration,
        watts=fmt_power,
        num=fmt_num,
        pct=fmt_pct,
        time=fmt_time,
        signed=fmt_signed,
        sv=sort_value,
    )
    return env


def _literal(value: Any) -> Any:
    """Every string a template prints is literal text: control, bidirectional and invisible
    formatting characters (a right-to-left override in a run name) are shown as escapes.
    Markup the code made (charts, ``tojson``) passes through."""
    from markupsafe import Markup

    if isinstance(value, str) and not isinstance(value, Markup):
        return literal_lines(value)
    return value


def _markup(svg: str | None) -> Any:
    from markupsafe import Markup

    return None if svg is None else Markup(svg)


def _common() -> dict:
    from footprint import __version__

    return {"version": __version__, "kind_colours": _kind_colours()}


def _kind_colours() -> dict:
    from footprint.reporting.plots import KIND_COLOURS

    return KIND_COLOURS


def run_page(record: RunRecord) -> str:
    """The HTML page of one run."""
    from footprint.errors import FootprintError
    from footprint.reporting import plots
    from footprint.reporting.card import card

    view = _data.run_view(record)
    colours = plots.device_colours(
        [d["id"] for d in view["devices"]], {d["id"]: d["kind"] for d in view["devices"]}
    )
    try:
        snippet, card_error = card(record), None
    except FootprintError as exc:
        snippet, card_error = None, str(exc)
    return (
        environment()
        .get_template("run.html.j2")
        .render(
            run=view,
            colours=colours,
            timeline_svg=_markup(plots.timeline_svg(view)),
            whatif_svg=_markup(plots.whatif_svg(view)),
            card=snippet,
            card_error=card_error,
            **_common(),
        )
    )


def _run_pages(records: Sequence[RunRecord], out_dir: Path | None) -> dict[str, str]:
    """Run pages already written next to the report, by the default name: links, not rebuilds."""
    if out_dir is None:
        return {}
    pages = {}
    for r in records:
        name = _data.default_out([r]).name
        if (out_dir / name).is_file():
            pages[r.id] = name
    return pages


def store_page(
    records: Sequence[RunRecord],
    *,
    task: str | None = None,
    quality: str | None = None,
    per: str | None = None,
    out_dir: Path | None = None,
    linked: dict[str, str] | None = None,
    stars: str = "relative",
    also_per: Sequence[str] = (),
    costs: Sequence[dict] | None = None,
) -> str:
    """The comparison / store page of several runs. Runs link to their own pages found in
    ``out_dir`` by the default name, and to those of ``linked`` (run id -> relative link: pages
    about to be written beside it)."""
    from footprint.reporting import plots

    pages = _run_pages(records, out_dir)
    pages.update(linked or {})
    view = _data.store_view(
        records, quality=quality, per=per, task=task, run_pages=pages, stars=stars,
        also_per=also_per, costs=costs,
    )  # fmt: skip
    board = view["board"]
    return (
        environment()
        .get_template("store.html.j2")
        .render(
            view=view,
            board=board,
            scatter_svg=_markup(plots.scatter_svg(board)) if board else None,
            runs_svg=_markup(plots.runs_over_time_svg(view["runs"])),
            **_common(),
        )
    )
