"""Scatter labels: each where it hides no other label and no point (issue 17)."""

from __future__ import annotations

import itertools

from footprint.reporting import plots


def _overlap(a, b) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def test_labels_of_crowded_points_do_not_overlap():
    plt = plots._plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    # five variants within a hair of each other, as compressed models of one task often are
    points = [("mlp/fp32", 1.00, 0.963), ("mlp/bf16", 1.01, 0.9628), ("mlp/int8", 1.02, 0.9633),
              ("mlp/pruned-50", 1.00, 0.9631), ("student/distilled", 1.01, 0.9635)]  # fmt: skip
    ax.scatter([x for _, x, _ in points], [y for _, _, y in points])
    ax.set_xlim(0.5, 1.5)
    ax.set_ylim(0.95, 0.975)
    fig.tight_layout()
    boxes = plots.place_labels(fig, ax, points)
    assert len(boxes) == len(points)
    for a, b in itertools.combinations(boxes, 2):
        assert _overlap(a, b) == 0.0
    for box, (_, x, y) in itertools.product(boxes, points):
        px, py = ax.transData.transform((x, y))
        assert not (box.x0 < px < box.x1 and box.y0 < py < box.y1), "a label hides a point"
    plt.close(fig)


def test_the_first_label_keeps_the_usual_spot_when_nothing_is_near():
    plt = plots._plt()
    fig, ax = plt.subplots()
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    fig.tight_layout()
    (box,) = plots.place_labels(fig, ax, [("alone", 5.0, 5.0)])
    px, py = ax.transData.transform((5.0, 5.0))
    assert box.x0 > px and box.y0 > py  # above right of its point
    plt.close(fig)


def test_the_scatter_still_renders_every_label():
    rows = [
        {"label": f"m/v{i}", "task": "t", "energy_wh_per_1k": 1.0 + i * 0.001,
         "quality": 0.9 + i * 0.0001, "pareto": i == 0, "baseline": i == 0,
         "energy_wh_per_1k_ci_low": None, "energy_wh_per_1k_ci_high": None,
         "quality_ci_low": None, "quality_ci_high": None}
        for i in range(6)
    ]  # fmt: skip
    svg = plots.scatter_svg({"rows": rows, "per": "queries", "quality": "acc",
                             "higher_is_better": True})  # fmt: skip
    assert svg is not None and all(f"m/v{i}" in svg for i in range(6))


def test_energy_axes_read_in_si_units_on_a_log_scale_too():
    """Bug: with mathtext off (user strings literal), a log axis showed $\\mathdefault{10^{-5}}$."""
    rows = [
        {"label": f"m/v{i}", "task": "t", "energy_wh_per_1k": wh, "quality": 0.9 + i * 0.01,
         "pareto": True, "baseline": i == 0, "energy_wh_per_1k_ci_low": None,
         "energy_wh_per_1k_ci_high": None, "quality_ci_low": None, "quality_ci_high": None}
        for i, wh in enumerate((1e-5, 1e-4, 1e-3))  # a 100x spread: a log axis
    ]  # fmt: skip
    svg = plots.scatter_svg({"rows": rows, "per": "queries", "quality": "acc",
                             "higher_is_better": True})  # fmt: skip
    assert "mathdefault" not in svg and "$" not in svg
    assert "36.0 mJ" in svg or "360 mJ" in svg or "3.60 J" in svg  # 1e-4 Wh = 360 mJ
    runs = [{"started_at": f"2026-12-02T10:0{i}:00+00:00", "energy_kwh": e, "task": "t"}
            for i, e in enumerate((1e-9, 1e-7, 1e-5))]  # fmt: skip
    svg = plots.runs_over_time_svg(runs)
    assert svg is not None and "mathdefault" not in svg
