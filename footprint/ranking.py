"""Efficiency-adjusted leaderboards: which model or variant gives the quality you need for the least
energy and CO2e per unit of work.

Two steps, as everywhere downstream of the store: :func:`build` turns records into plain rows and
notes (tested directly; the CLI renders these), and :func:`footprint.frames.leaderboard` wraps them
in a pandas DataFrame with the notes in ``df.attrs["notes"]``. How each column is computed:
docs/leaderboard.md. Statistics are :mod:`footprint.stats`; energy per unit,
:mod:`footprint.attribution`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from footprint.attribution import RunShare, run_share
from footprint.errors import FootprintError
from footprint.record import RunRecord, as_record
from footprint.stats import summarise
from footprint.units import J_PER_WH

if TYPE_CHECKING:
    pass

#: Column order of a leaderboard (the DataFrame's and the CLI's).
COLUMNS = (
    "task",
    "model",
    "variant",
    "baseline",
    "n",
    "quality",
    "quality_std",
    "quality_ci_low",
    "quality_ci_high",
    "energy_wh_per_1k",
    "energy_wh_per_1k_std",
    "energy_wh_per_1k_ci_low",
    "energy_wh_per_1k_ci_high",
    "emissions_g_per_1k",
    "quality_per_kwh",
    "pareto",
    "stars",
    "rank",
    "tie_with",
    "energy_vs_baseline",
    "quality_delta_vs_baseline",
    "imported",
    "contended",
    "unranked",
)

#: A row's ``unranked`` reason when it has a single run: no interval, so no exact rank.
NEEDS_REPEATS = "needs repeats"
#: ... when fewer than two of its runs ran on a quiet machine.
CONTENDED = "contended"

# Metric directions by name, used when neither track(higher_is_better=...) nor the caller says.
# Exact names only, after stripping the frameworks' prefixes and suffixes: never a guess from
# a part of a compound name (``error_reduction`` is not an error).
_HIGHER = frozenset(
    {
        "accuracy", "acc", "top1", "top5", "top1_accuracy", "top5_accuracy", "top1_acc",
        "top5_acc", "balanced_accuracy", "f1", "f1_score", "macro_f1", "micro_f1", "bleu",
        "sacrebleu", "rouge", "rouge1", "rouge2", "rougel", "rougelsum", "precision",
        "recall", "auc", "roc_auc", "auroc", "pr_auc", "map", "map50", "iou", "miou",
        "exact_match", "em", "meteor", "chrf", "r2", "matthews_correlation", "mcc",
        "pearson", "spearmanr", "dice",
    }
)  # fmt: skip
_LOWER = frozenset(
    {
        "loss", "perplexity", "ppl", "wer", "cer", "error", "error_rate", "mse", "mae",
        "rmse", "mape", "latency", "latency_ms", "latency_s", "nll", "log_loss",
        "cross_entropy",
    }
)  # fmt: skip
#: Stripped (repeatedly) before the name is looked up: how frameworks prefix splits and steps.
METRIC_PREFIXES = ("eval_", "val_", "valid_", "validation_", "test_", "train_", "training_")
METRIC_SUFFIXES = ("_epoch", "_step", "_mean", "_avg")


def _bare_metric(metric: str) -> str:
    name = metric.lower().replace("-", "_").replace("/", "_").strip("_")
    changed = True
    while changed:
        changed = False
        for prefix in METRIC_PREFIXES:
            if name.startswith(prefix) and len(name) > len(prefix):
                name, changed = name[len(prefix) :], True
        for suffix in METRIC_SUFFIXES:
            if name.endswith(suffix) and len(name) > len(suffix):
                name, changed = name[: -len(suffix)], True
    return name


class LeaderboardError(FootprintError, ValueError):
    """A leaderboard cannot be built from these runs and arguments; the message says why."""


def default_higher_is_better(metric: str) -> bool | None:
    """The conventional direction of a quality metric from its exact name, or None if unknown.

    ``accuracy``, ``f1``, ``bleu``... are better higher; ``loss``, ``perplexity``, ``wer``...
    lower. The frameworks' prefixes and suffixes (``eval_``, ``val_``, ``test_``, ``train_``,
    ``_epoch``, ``_step``...: :data:`METRIC_PREFIXES`, :data:`METRIC_SUFFIXES`) are stripped
    first, so ``eval_loss`` and ``val_acc_epoch`` work; any other name (``error_reduction``,
    ``acc_drop``) is unknown: pass ``higher_is_better=``.
    """
    name = _bare_metric(metric)
    if name in _LOWER:
        return False
    if name in _HIGHER:
        return True
    return None


# -- the board ------------------------------------------------------------------------------------


@dataclass
class Board:
    """A leaderboard as plain data: ``rows`` (dicts keyed by :data:`COLUMNS`) and ``notes``."""

    rows: list[dict[str, Any]]
    notes: list[str]
    quality: str
    per: str
    higher_is_better: bool
    columns: tuple[str, ...] = field(default=COLUMNS)
    #: how ``stars`` were given: "relative" (to the rows of the task) or "absolute" (fixed bands)
    stars: str = "relative"


#: ``stars="absolute"``: fixed bands of energy per unit against the task's baseline, as
#: (at most this ratio, stars); above the last, 1 star
ABSOLUTE_STARS = ((0.25, 5), (0.5, 4), (0.9, 3), (1.1, 2))
ABSOLUTE_STARS_TEXT = (
    "stars are fixed bands of energy per unit against the task's baseline: ★★★★★ at most "
    "0.25×, ★★★★ at most 0.5×, ★★★ at most 0.9×, ★★ at most 1.1×, ★ above; none without a "
    "baseline"
)


def absolute_stars(ratio: float | None) -> int | None:
    """Stars for an energy-per-unit ratio to the baseline (:data:`ABSOLUTE_STARS`)."""
    if ratio is None:
        return None
    for limit, stars in ABSOLUTE_STARS:
        if ratio <= limit + 1e-9:
            return stars
    return 1


def _label(row: dict) -> str:
    return _label_of(row["task"], row["model"], row["variant"])


def _label_of(task: Any, model: str, variant: str | None) -> str:
    return model if variant is None else f"{model}/{variant}"


def _names(items: Iterable[str], limit: int = 5) -> str:
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _direction(quality: str, records: list[RunRecord], higher_is_better: bool | None) -> bool:
    """Direction of ``quality``: the caller's, else the runs' (must agree), else by name."""
    if higher_is_better is not None:
        return bool(higher_is_better)
    given = {r.metric_directions[quality] for r in records if quality in r.metric_directions}
    if len(given) > 1:
        raise LeaderboardError(
            f"runs disagree on whether higher {quality!r} is better (track(higher_is_better=...) "
            "differs between them); pass higher_is_better=True or False to the leaderboard"
        )
    if given:
        return bool(given.pop())
    guess = default_higher_is_better(quality)
    if guess is None:
        raise LeaderboardError(
            f"cannot tell whether a higher {quality!r} is better: pass higher_is_better=True or "
            "False (or --higher-is-better/--lower-is-better), or give "
            f"track(higher_is_better={{{quality!r}: ...}})"
        )
    return guess


def build(
    records: Iterable[RunRecord | dict],
    *,
    quality: str,
    per: str,
    task: str | None = None,
    phase: str | None = None,
    higher_is_better: bool | None = None,
    statuses: Sequence[str] = ("completed",),
    sort_by: str | Sequence[str] | None = None,
    ascending: bool | Sequence[bool] = True,
    stars: str = "relative",
) -> Board:
    """Build a leaderboard from run records (typed, or dicts in any schema version).

    One row per (task, model, variant) with repeats aggregated; see :data:`COLUMNS` and
    docs/leaderboard.md. ``quality`` is the metric logged with ``run.log``; ``per`` the unit
    counted with ``run.count`` (energy is per 1,000 of them); ``task`` keeps one task only;
    ``phase`` picks the phases whose energy counts; ``higher_is_better`` overrides the metric's
    direction; ``statuses`` are the run statuses kept. Rows are sorted Pareto-optimal first, then
    by energy per unit, unless ``sort_by`` names columns (with ``ascending``). ``stars``:
    "relative" (the task's energy range in five bands) or "absolute" (fixed bands of the ratio
    to the task's baseline, :data:`ABSOLUTE_STARS`).

    Raises :class:`LeaderboardError` when nothing can be ranked (no runs, ``per`` or ``quality``
    never recorded, several baselines in a task) with a message saying what to change.
    """
    for arg, value in (("quality", quality), ("per", per)):
        if not isinstance(value, str) or not value:
            raise LeaderboardError(f"{arg} must be a non-empty string, got {value!r}")
    if stars not in ("relative", "absolute"):
        raise LeaderboardError(f"stars must be 'relative' or 'absolute', got {stars!r}")
    checked = [as_record(r) for r in records]
    notes: list[str] = []
    if task is not None:
        tasks = sorted({str(r.task) for r in checked if r.task is not None})
        checked = [r for r in checked if r.task == task]
        if not checked:
            raise LeaderboardError(
                f"no runs with task {task!r}"
                + (f"; tasks in the store: {_names(tasks)}" if tasks else "")
                + "; give track(task=...) to runs, or drop the task filter"
            )
    kept = [r for r in checked if r.status in statuses]
    dropped: dict[str, int] = {}
    for r in checked:
        if r.status not in statuses:
            dropped[r.status] = dropped.get(r.status, 0) + 1
    if dropped:
        detail = ", ".join(f"{n} {s}" for s, n in sorted(dropped.items()))
        notes.append(
            f"{sum(dropped.values())} run(s) excluded by status ({detail}); only "
            f"{'/'.join(statuses)} runs are ranked"
        )
    if not kept:
        raise LeaderboardError(
            "no runs to rank"
            + (f" for task {task!r}" if task is not None else "")
            + f" with status {'/'.join(statuses)}"
            + (" (the store is empty)" if not checked else "")
        )

    shares: list[tuple[RunRecord, RunShare]] = []
    uncounted: list[RunRecord] = []
    for r in kept:
        share = run_share(r, per, phase)
        (uncounted.append(r) if share is None else shares.append((r, share)))
    if not shares:
        units = sorted({u for r in kept for u in r.counts})
        if phase is not None:
            raise LeaderboardError(
                f"no run has a phase {phase!r} with {per!r} counted in it or outside every "
                "phase; "
                f"phases seen: {_names(sorted({p.path for r in kept for p in r.phases}))}"
            )
        raise LeaderboardError(
            f"no run counted {per!r}: count it with run.count({per}=n)"
            + (f"; units counted: {_names(units)}" if units else "; no run counted any unit")
        )
    if uncounted:
        why = f"have no phase {phase!r} with" if phase is not None else "counted no"
        notes.append(
            f"{len(uncounted)} run(s) {why} {per!r} and are left out: "
            f"{_names(sorted({r.name for r in uncounted}))}"
        )
    whole = sum(1 for _, s in shares if s.whole_run and phase is None)
    if whole:
        notes.append(
            f"{whole} run(s) counted {per!r} outside any phase: their whole-run energy is used"
        )

    ranked = [r for r, _ in shares]
    if not any(quality in r.metrics for r in ranked):
        metrics = sorted({m for r in ranked for m in r.metrics})
        raise LeaderboardError(
            f"no ranked run logged {quality!r}: log it with run.log({quality}=...)"
            + (f"; metrics logged: {_names(metrics)}" if metrics else "; no run logged a metric")
        )
    higher = _direction(quality, ranked, higher_is_better)

    groups: dict[tuple, list[tuple[RunRecord, RunShare]]] = {}
    for r, s in shares:
        key = (r.task, r.model if r.model is not None else r.name, r.variant)
        groups.setdefault(key, []).append((r, s))

    rows: list[dict[str, Any]] = []
    single, partial_quality, no_quality, no_emissions = [], [], [], []
    left_out, noisy = [], []
    for (task_, model, variant), members in groups.items():
        busy = [m for m in members if m[0].contended]
        clean = [m for m in members if not m[0].contended]
        if busy and len(clean) >= 2:  # contended repeats left out while two clean ones remain
            left_out.append(f"{_label_of(task_, model, variant)} ({len(busy)} of {len(members)})")
            members = clean
        elif busy:
            noisy.append(_label_of(task_, model, variant))
        energy = summarise([s.energy_j / s.units * 1000 / J_PER_WH for _, s in members])
        row: dict[str, Any] = dict.fromkeys(COLUMNS)
        row.update(
            task=task_,
            model=model,
            variant=variant,
            baseline=any(r.baseline for r, _ in members),
            n=energy.n,
            energy_wh_per_1k=energy.mean,
            energy_wh_per_1k_std=energy.std,
            energy_wh_per_1k_ci_low=energy.ci_low,
            energy_wh_per_1k_ci_high=energy.ci_high,
            pareto=False,
            tie_with=[],
            imported=any(r.imported_from is not None for r, _ in members),
            contended=len(busy),
            unranked=(
                CONTENDED if busy and len(clean) < 2 else NEEDS_REPEATS if energy.n == 1 else None
            ),
        )
        values = [r.metrics[quality] for r, _ in members if quality in r.metrics]
        if values:
            q = summarise(values)
            row.update(
                quality=q.mean,
                quality_std=q.std,
                quality_ci_low=q.ci_low,
                quality_ci_high=q.ci_high,
            )
            if len(values) < len(members):
                partial_quality.append(f"{_label(row)} ({len(values)} of {len(members)})")
            if higher and energy.mean > 0:
                # quality / kWh per unit; energy.mean is Wh per 1,000 units = 1e6 x kWh per unit
                row["quality_per_kwh"] = q.mean / (energy.mean / 1e6)
        else:
            no_quality.append(_label(row))
        grams = [s.emissions_kg / s.units * 1e6 for _, s in members if s.emissions_kg is not None]
        if len(grams) == len(members):
            row["emissions_g_per_1k"] = math.fsum(grams) / len(grams)
        else:
            no_emissions.append(_label(row))
        if energy.n == 1:
            single.append(_label(row))
        rows.append(row)

    if single:
        notes.append(
            f"no confidence interval for rows with a single run (n = 1): {_names(sorted(single))}; "
            "they are shown unranked (needs repeats): repeat runs (e.g. "
            "footprint.bench(..., repeats=3)) to see the noise"
        )
    if left_out:
        notes.append(
            "contended runs (other processes busy on the machine) left out of their row's "
            f"figures, two or more clean repeats remaining: {_names(sorted(left_out))}"
        )
    if noisy:
        notes.append(
            f"fewer than two clean repeats for {_names(sorted(noisy))}: their runs were "
            "contended (other processes busy on the machine), so their figures are unreliable "
            "and the rows are shown unranked; repeat them on a quiet machine"
        )
    if partial_quality:
        notes.append(
            f"{quality!r} missing from some runs; quality is over the runs that logged it: "
            f"{_names(sorted(partial_quality))}"
        )
    if no_quality:
        notes.append(
            f"no run of {_names(sorted(no_quality))} logged {quality!r}: quality is empty and "
            "the row is not Pareto-ranked"
        )
    if no_emissions:
        notes.append(
            f"emissions empty for {_names(sorted(no_emissions))}: some of their runs had no "
            "region or carbon intensity (track(region=...) or footprint recompute)"
        )
    if not higher:
        notes.append(
            f"lower {quality!r} is better: quality_per_kwh is empty (it only makes sense for a "
            "quality that grows)"
        )
    if any(row["imported"] for row in rows):
        notes.append(
            "rows marked imported include runs imported from another tool: energy and emissions "
            "as that tool reported them"
        )

    by_task: dict[Any, list[dict]] = {}
    for row in rows:
        by_task.setdefault(row["task"], []).append(row)
    for task_, task_rows in by_task.items():
        notes.extend(_rank_task(task_, task_rows, higher))
    if stars == "absolute":
        for row in rows:
            row["stars"] = absolute_stars(row["energy_vs_baseline"])
        notes.append(ABSOLUTE_STARS_TEXT)
        notes[:] = [n for n in notes if "all get 5 stars" not in n]

    _sort(rows, sort_by, ascending)
    return Board(rows, notes, quality, per, higher, stars=stars)


def _better_or_equal(a: float, b: float, higher: bool) -> bool:
    return a >= b if higher else a <= b


def _rank_task(task: Any, rows: list[dict], higher: bool) -> list[str]:
    """Fill the columns that compare rows of one task; return the notes they need."""
    notes: list[str] = []
    where = f"task {task!r}" if task is not None else "runs without a task"
    # Pareto front on (quality, energy per unit).
    scored = [r for r in rows if r["quality"] is not None]
    for r in scored:
        r["pareto"] = not any(
            _better_or_equal(o["quality"], r["quality"], higher)
            and o["energy_wh_per_1k"] <= r["energy_wh_per_1k"]
            and (o["quality"] != r["quality"] or o["energy_wh_per_1k"] != r["energy_wh_per_1k"])
            for o in scored
            if o is not r
        )
    # Stars: the task's energy range in five equal bands, lowest energy = 5 (AI Energy Score).
    energies = [r["energy_wh_per_1k"] for r in rows]
    lo, hi = min(energies), max(energies)
    for r in rows:
        if hi == lo:
            r["stars"] = 5
        else:
            # floor with a tolerance: 0.3 between 0.1 and 0.6 is exactly band 2, not 1.99999...
            band = math.floor((r["energy_wh_per_1k"] - lo) * 5 / (hi - lo) + 1e-9)
            r["stars"] = 5 - min(band, 4)
    if hi == lo and len(rows) > 1:
        notes.append(f"every row of {where} has the same energy per unit: all get 5 stars")
    # Ties and rank: confidence intervals that overlap are within noise. Rows without a
    # trustworthy interval (one run, or contended runs) get neither: they are shown unranked.
    ranked = [r for r in rows if r["unranked"] is None]
    spans = {id(r): _span(r) for r in ranked}
    for r in ranked:
        lo_r, hi_r = spans[id(r)]
        r["tie_with"] = [
            _label(o)
            for o in ranked
            if o is not r and lo_r <= spans[id(o)][1] and spans[id(o)][0] <= hi_r
        ]
        r["rank"] = 1 + sum(1 for o in ranked if spans[id(o)][1] < lo_r)
    # Baseline comparisons, per task (a distilled student is usually another model).
    bases = [r for r in rows if r["baseline"]]
    if len(bases) > 1:
        raise LeaderboardError(
            f"{where} has {len(bases)} baselines ({_names(_label(b) for b in bases)}): mark only "
            "one (task, model, variant) with baseline=True, or rank one task at a time"
        )
    if not bases:
        notes.append(
            f"{where} has no baseline (track(..., baseline=True)): "
            "energy_vs_baseline and quality_delta_vs_baseline are empty"
        )
        return notes
    base = bases[0]
    for r in rows:
        if base["energy_wh_per_1k"] > 0:
            r["energy_vs_baseline"] = r["energy_wh_per_1k"] / base["energy_wh_per_1k"]
        if base["quality"] is not None and r["quality"] is not None:
            r["quality_delta_vs_baseline"] = r["quality"] - base["quality"]
    if base["energy_wh_per_1k"] <= 0:
        notes.append(f"the baseline of {where} used no energy: energy_vs_baseline is empty")
    return notes


def _span(row: dict) -> tuple[float, float]:
    if row["energy_wh_per_1k_ci_low"] is None:
        return row["energy_wh_per_1k"], row["energy_wh_per_1k"]
    return row["energy_wh_per_1k_ci_low"], row["energy_wh_per_1k_ci_high"]


def _sort(
    rows: list[dict], sort_by: str | Sequence[str] | None, ascending: bool | Sequence[bool]
) -> None:
    if sort_by is None:
        # Tasks apart, then Pareto-optimal first, then cheapest first.
        rows.sort(key=lambda r: (str(r["task"]), not r["pareto"], r["energy_wh_per_1k"]))
        return
    keys = [sort_by] if isinstance(sort_by, str) else list(sort_by)
    orders = [ascending] * len(keys) if isinstance(ascending, bool) else list(ascending)
    if len(orders) != len(keys):
        raise LeaderboardError(
            f"ascending has {len(orders)} value(s) for {len(keys)} sort column(s): give one each"
        )
    for key in keys:
        if key not in COLUMNS:
            raise LeaderboardError(f"cannot sort by {key!r}: columns are {', '.join(COLUMNS)}")
    # Stable sorts, least significant key first; empty values last whatever the order.
    for key, asc in reversed(list(zip(keys, orders))):
        present = [r for r in rows if r[key] is not None]
        empty = [r for r in rows if r[key] is None]
        present.sort(key=lambda r: _sortable(r[key]), reverse=not asc)
        rows[:] = present + empty


def _sortable(value: Any) -> Any:
    return len(value) if isinstance(value, list) else value
