"""The report's charts: matplotlib (Agg) figures as inline SVG strings.

Imported only when a report is rendered: matplotlib costs ~0.5 s to import, and each SVG ~70 ms
and tens of KB, so a store page draws a fixed number of charts whatever its run count, and per-run
charts belong to run pages. Text stays text (``svg.fonttype = none``), styled by the page's CSS;
user strings in labels are escaped by matplotlib's SVG writer.
"""

from __future__ import annotations

import io
import math
import re
from datetime import datetime
from functools import lru_cache
from typing import Any

from footprint.formatting import literal_lines

# Device kinds, then anything else, in the page's palette (the CSS uses the same colours).
KIND_COLOURS = {"gpu": "#4263eb", "cpu": "#f59f00", "dram": "#0ca678", "ram": "#15aabf"}
OTHER_COLOURS = ("#ae3ec9", "#e64980", "#74b816", "#868e96")
ACCENT = "#0b7285"
MUTED = "#adb5bd"
INK = "#343a40"
GRID = "#e9ecef"

_MAX_LABELS = 25  # per panel: beyond that labels are clutter (the table names every row)

TASK_COLOURS = ("#4263eb", "#e8590c", "#0ca678", "#ae3ec9", "#f59f00", "#e64980", "#1098ad")


@lru_cache(maxsize=1)
def _plt() -> Any:
    """matplotlib.pyplot on the Agg backend, styled once per process."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "svg.fonttype": "none",  # real <text>: crisp, searchable, styled by the page
            "svg.hashsalt": "footprint",  # stable ids: the same input gives the same page
            # every label is literal text: "$\\alpha$" or "batch $5 to $10" is not math
            "text.parse_math": False,
            "font.size": 9,
            "axes.edgecolor": MUTED,
            "axes.labelcolor": INK,
            "axes.titlesize": 10,
            "axes.titleweight": "bold",
            "axes.titlecolor": INK,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.color": GRID,
            "grid.linewidth": 0.8,
            "xtick.color": "#495057",
            "ytick.color": "#495057",
            "legend.frameon": False,
            "figure.facecolor": "none",
            "axes.facecolor": "none",
        }
    )
    return plt


_FONT = re.compile(r"font-family: [^;\"]*;? ?")
_STRIP = (
    re.compile(r"<\?xml[^>]*\?>\s*"),
    re.compile(r"<!DOCTYPE[^>]*>\s*", re.S),
    re.compile(r"<metadata>.*?</metadata>\s*", re.S),
)


def to_svg(fig: Any, label: str) -> str:
    """The figure as an inline ``<svg>`` element, sized by CSS, with an accessible label."""
    plt = _plt()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    # user strings in labels are literal text: control and bidirectional characters escaped
    svg = literal_lines(buf.getvalue())
    for pattern in _STRIP:
        svg = pattern.sub("", svg, count=1)
    svg = _FONT.sub("", svg)
    # width/height in pt would fix the size; the viewBox keeps proportions when CSS scales it
    svg = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r"<svg\1", svg, count=1)
    esc = label.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return svg.replace("<svg", f'<svg class="chart" role="img" aria-label="{esc}"', 1)


def device_colours(device_ids: list[str], kinds: dict[str, str]) -> dict[str, str]:
    """A colour per device: its kind's, shaded apart when several devices share a kind."""
    out: dict[str, str] = {}
    used: dict[str, int] = {}
    spare = iter(OTHER_COLOURS * 4)
    for dev in device_ids:
        base = KIND_COLOURS.get(kinds.get(dev, ""))
        if base is None:
            out[dev] = next(spare)
            continue
        n = used.get(base, 0)
        used[base] = n + 1
        out[dev] = base if n == 0 else _shade(base, 0.35 * n)
    return out


def _shade(hex_colour: str, amount: float) -> str:
    """Mix a colour with white (amount 0..1)."""
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    mix = [round(c + (255 - c) * min(amount, 0.8)) for c in (r, g, b)]
    return "#" + "".join(f"{c:02x}" for c in mix)


# -- run page -------------------------------------------------------------------------------------


def timeline_svg(view: dict) -> str | None:
    """Power per device over the run, stacked, with the top-level phases shaded behind."""
    tl = view.get("timeline") or {}
    t = tl.get("t_s") or []
    series = {dev: p for dev, p in (tl.get("power_w") or {}).items() if p and len(p) + 1 == len(t)}
    if len(t) < 2 or not series:
        return None
    plt = _plt()
    kinds = {d["id"]: d["kind"] for d in view["devices"]}
    order = list(KIND_COLOURS)
    ids = sorted(series, key=lambda d: (order.index(kinds[d]) if kinds.get(d) in order else 9, d))
    colours = device_colours(ids, kinds)
    # steps: each bucket's mean power holds over the whole bucket
    xs = [x for i in range(len(t) - 1) for x in (t[i], t[i + 1])]
    ys = [[v for v in series[d] for _ in (0, 1)] for d in ids]
    fig, ax = plt.subplots(figsize=(10, 3.1))
    top_phases = [p for p in view["phases"] if p["depth"] == 0]
    # a phase that occurred several times is summed in the view: shade from the raw timeline only
    for i, p in enumerate(top_phases[:40]):
        if p["occurrences"] != 1:
            continue
        a, b = p["start_s"], p["start_s"] + p["duration_s"]
        ax.axvspan(a, b, color="#f1f3f5" if i % 2 == 0 else "#e7f5ff", zorder=0, lw=0)
        ax.text(
            (a + b) / 2,
            1.0,
            p["path"],
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=8,
            color="#495057",
        )
    labels = [device_label(d, kinds.get(d, "?")) for d in ids]
    ax.stackplot(xs, ys, labels=labels, colors=[colours[d] for d in ids], alpha=0.85, lw=0)
    total = [sum(col) for col in zip(*ys)]
    ax.plot(xs, total, color=INK, lw=0.8)
    ax.set_xlim(t[0], t[-1])
    ax.set_ylim(0, max(total) * 1.12 if max(total) > 0 else 1)
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("power (W)")
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return to_svg(fig, "Power per device over the run, stacked")


def whatif_svg(view: dict) -> str | None:
    """This run's emissions had it drawn its energy in other grids; its own region highlighted."""
    rows = view.get("whatif") or []
    if not rows:
        return None
    plt = _plt()
    height = 0.32 * len(rows) + 0.7
    fig, ax = plt.subplots(figsize=(5.2, height))
    grams = [r["emissions_kg"] * 1000 for r in rows]
    labels = [
        f"{r['name'] or r['region']} ({r['region']}) · {r['g_per_kwh']:.0f} g/kWh" for r in rows
    ]
    colours = [ACCENT if r["this_run"] else "#a5d8ff" for r in rows]
    y = range(len(rows))
    ax.barh(y, grams, color=colours, height=0.7)
    ax.set_yticks(list(y), labels)
    ax.invert_yaxis()
    for i, (g, r) in enumerate(zip(grams, rows)):
        ax.text(
            g,
            i,
            f" {_num(g)} g",
            va="center",
            fontsize=8,
            color=INK,
            fontweight="bold" if r["this_run"] else "normal",
        )
    for tick, r in zip(ax.get_yticklabels(), rows):
        if r["this_run"]:
            tick.set_fontweight("bold")
    ax.set_xlim(0, max(grams) * 1.22 if max(grams) > 0 else 1)
    ax.set_xlabel("g CO2e for this run's energy (same PUE)")
    ax.grid(axis="y", visible=False)
    ax.tick_params(axis="y", length=0)
    return to_svg(fig, "Emissions of this run's energy in other regions")


def device_label(device_id: str, kind: str) -> str:
    """A device's legend label: its id, and its kind where the id does not already say it
    ("cpu", "gpu:0", but "dram:0 · ram"; never "cpu · cpu")."""
    return device_id if device_id.split(":")[0] == kind else f"{device_id} · {kind}"


def _num(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}"


# -- store / comparison page ----------------------------------------------------------------------


def _pareto_line(rows: list[dict], higher: bool) -> tuple[list[float], list[float]]:
    front = sorted((r for r in rows if r["pareto"]), key=lambda r: r["energy_wh_per_1k"])
    xs: list[float] = []
    ys: list[float] = []
    for r in front:
        if xs:  # a staircase: quality holds until the next front point buys more of it
            xs.append(r["energy_wh_per_1k"])
            ys.append(ys[-1])
        xs.append(r["energy_wh_per_1k"])
        ys.append(r["quality"])
    return xs, ys


def energy_ticks(axis: Any, j_per_value: float) -> None:
    """Tick labels of an energy axis with SI prefixes (35.6 mJ, 1.20 J), on a log axis too:
    mathtext is off (user strings stay literal), so matplotlib's ``10^{-5}`` would show raw."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    from footprint.formatting import fmt_energy_j

    axis.set_major_formatter(FuncFormatter(lambda v, _pos: fmt_energy_j(v * j_per_value)))
    axis.set_minor_formatter(NullFormatter())


#: where a label may go, in points from its point (dx, dy, alignment), tried in this order
_LABEL_SPOTS = (
    (7, 5, "left"), (7, -12, "left"), (-7, 5, "right"), (-7, -12, "right"),
    (0, 11, "center"), (0, -19, "center"), (12, 18, "left"), (12, -26, "left"),
    (-12, 18, "right"), (-12, -26, "right"),
)  # fmt: skip


def place_labels(fig: Any, ax: Any, labels: list[tuple[str, float, float]]) -> list[Any]:
    """Annotate each (text, x, y) of ``ax`` where it overlaps no label placed before it nor
    any of the points, trying :data:`_LABEL_SPOTS` in turn (else the spot overlapping least).
    Call it once the axes' limits and layout are final. Returns the labels' boxes (display
    coordinates), in order."""
    from matplotlib.transforms import Bbox

    renderer = fig.canvas.get_renderer()
    pad = 3.0  # pixels around a point's marker
    points = [ax.transData.transform((x, y)) for _, x, y in labels]
    taken = [Bbox.from_extents(px - pad, py - pad, px + pad, py + pad) for px, py in points]
    boxes = []

    def overlap(a: Any, b: Any) -> float:
        w = min(a.x1, b.x1) - max(a.x0, b.x0)
        h = min(a.y1, b.y1) - max(a.y0, b.y0)
        return w * h if w > 0 and h > 0 else 0.0

    for text, x, y in labels:
        ann = ax.annotate(text, (x, y), xytext=_LABEL_SPOTS[0][:2], textcoords="offset points",
                          fontsize=8, color=INK, ha="left")  # fmt: skip
        best: tuple[float, Any, Any] | None = None
        for dx, dy, ha in _LABEL_SPOTS:
            ann.xyann = (dx, dy)
            ann.set_ha(ha)
            box = ann.get_window_extent(renderer)
            cost = sum(overlap(box, other) for other in taken)
            if best is None or cost < best[0]:
                best = (cost, (dx, dy, ha), box)
            if cost == 0:
                break
        assert best is not None
        (dx, dy, ha), box = best[1], best[2]
        ann.xyann = (dx, dy)
        ann.set_ha(ha)
        taken.append(box)
        boxes.append(box)
    return boxes


def scatter_svg(board: dict, max_tasks: int = 4) -> str | None:
    """Quality versus energy per unit, one panel per task: the Pareto front drawn, the baseline
    starred, 95 % intervals as error bars, each point labelled model/variant."""
    rows = [r for r in board["rows"] if r["quality"] is not None]
    if not rows:
        return None
    tasks = list(dict.fromkeys(r["task"] for r in rows))[:max_tasks]
    plt = _plt()
    cols = min(len(tasks), 2)
    nrows = math.ceil(len(tasks) / cols)
    fig, axes = plt.subplots(
        nrows, cols, figsize=(4.6 * cols if cols > 1 else 6.4, 4.0 * nrows), squeeze=False
    )
    higher = board["higher_is_better"]
    for ax, task in zip(axes.flat, tasks):
        trs = [r for r in rows if r["task"] == task]
        energies = [r["energy_wh_per_1k"] for r in trs]
        positive = [e for e in energies if e > 0]
        if positive and max(positive) / min(positive) > 20:
            ax.set_xscale("log")
        xs, ys = _pareto_line(trs, higher)
        if len(xs) > 1:
            ax.plot(xs, ys, color=ACCENT, lw=1.6, ls="--", zorder=2, label="Pareto front")
        # one errorbar and one scatter call per group of points: a call per point costs
        # ~10 ms each, too much for a store with hundreds of rows
        for pareto in (False, True):
            group = [r for r in trs if r["pareto"] == pareto]
            colour = ACCENT if pareto else "#868e96"
            for axis, lo, hi, value in (
                ("x", "energy_wh_per_1k_ci_low", "energy_wh_per_1k_ci_high", "energy_wh_per_1k"),
                ("y", "quality_ci_low", "quality_ci_high", "quality"),
            ):
                bars = [r for r in group if r[lo] is not None]
                if not bars:
                    continue
                err = [[r[value] - r[lo] for r in bars], [r[hi] - r[value] for r in bars]]
                ax.errorbar(
                    [r["energy_wh_per_1k"] for r in bars],
                    [r["quality"] for r in bars],
                    **{f"{axis}err": err},
                    fmt="none",
                    ecolor=colour,
                    alpha=0.45,
                    elinewidth=1.2,
                    capsize=2.5,
                    zorder=3,
                )
            for baseline, marker, size in ((False, "o", 70), (True, "*", 260)):
                pts = [r for r in group if bool(r["baseline"]) == baseline]
                if pts:
                    ax.scatter(
                        [r["energy_wh_per_1k"] for r in pts],
                        [r["quality"] for r in pts],
                        s=size,
                        marker=marker,
                        color=colour,
                        edgecolor="white",
                        linewidth=1.0,
                        zorder=4,
                    )
        ax.set_title(f"task {task}" if task is not None else "runs without a task", loc="left")
        ax.set_xlabel(f"energy per 1,000 {board['per']}")
        energy_ticks(ax.xaxis, 3600.0)  # the board's energies are in Wh
        ax.set_ylabel(f"{board['quality']} ({'higher' if higher else 'lower'} is better)")
        ax.margins(x=0.18, y=0.25)
        if len(xs) > 1:
            ax.legend(loc="lower right" if higher else "upper right", fontsize=8)
    for ax in list(axes.flat)[len(tasks) :]:
        ax.set_visible(False)
    fig.tight_layout()
    # labels last, where the layout is final: each goes where it hides no other label or point
    for ax, task in zip(axes.flat, tasks):
        trs = [r for r in rows if r["task"] == task][:_MAX_LABELS]
        place_labels(fig, ax, [(r["label"], r["energy_wh_per_1k"], r["quality"]) for r in trs])
    return to_svg(fig, f"{board['quality']} versus energy per 1,000 {board['per']}")


def runs_over_time_svg(runs: list[dict]) -> str | None:
    """Energy of every run against its start time, one colour per task (log scale)."""
    points = [(r, r["energy_kwh"]) for r in runs if r["energy_kwh"] and r["energy_kwh"] > 0]
    if len(points) < 2:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 2.9))

    def name(r: dict) -> str:
        return str(r["task"]) if r["task"] is not None else "-"

    tasks = list(dict.fromkeys(name(r) for r, _ in points))
    shown = tasks[: len(TASK_COLOURS)]
    for i, task in enumerate(shown):
        sel = [(r, e) for r, e in points if name(r) == task]
        if i == len(shown) - 1 and len(tasks) > len(shown):  # the rest share the last colour
            sel += [(r, e) for r, e in points if name(r) in tasks[len(shown) :]]
            task = "other tasks"
        ax.scatter(
            [datetime.fromisoformat(r["started_at"]) for r, _ in sel],
            [e * 1000 for _, e in sel],
            s=22,
            color=TASK_COLOURS[i],
            alpha=0.8,
            edgecolor="white",
            linewidth=0.5,
            label=task if task != "-" else "no task",
            zorder=3,
        )
    energies = [e for _, e in points]
    if max(energies) / min(energies) > 20:
        ax.set_yscale("log")
    ax.set_ylabel("energy per run")
    energy_ticks(ax.yaxis, 3600.0)  # plotted in Wh
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    if len(tasks) > 1 or tasks[0] != "-":
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return to_svg(fig, "Energy of each run over time")
