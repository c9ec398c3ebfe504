"""Is B costlier than A? Two sets of repeats compared figure by figure, and the CI gate's decision.

A *side* is the repeats of one workload: the completed runs of a store that match the filters, one
run, or an exported baseline file (:mod:`footprint.baseline`). Each repeat gives its energy per
unit (by the leaderboard's rule, :func:`footprint.attribution.run_share`, so a phase's or the
run's own share), its mean power and duration over that share, and its quality metrics.

:func:`compare` returns a :class:`Comparison`: per figure, each side's mean with its 95 % interval,
the ratio B/A with Fieller's 95 % interval, Welch's test of the difference, and a verdict (lower,
higher, within noise, or too few repeats). :meth:`Comparison.check` turns it into the gate's
decision (pass, regression, inconclusive). The methods and the decision rule: docs/ci.md.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from footprint.errors import FootprintError, UsageError
from footprint.record import RunRecord, as_record
from footprint.stats import Difference, Ratio, Stats, fieller, summarise, welch


class CompareError(FootprintError, ValueError):
    """Bad input to a comparison or check: says what was wrong and how to fix it."""


#: the figures every comparison has, with their units (metrics follow, as ``metric:<name>``)
FIGURES = {"energy_per_unit": "J", "power": "W", "duration": "s"}


@dataclass(frozen=True)
class Repeat:
    """One repeat of a workload, as a comparison reads it."""

    run_id: str
    name: str
    started_at: str | None
    task: str | None
    model: str | None
    variant: str | None
    energy_j_per_unit: float
    units: float
    duration_s: float
    power_w: float | None
    metrics: Mapping[str, float]
    contended: bool
    setup: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "name": self.name,
            "started_at": self.started_at,
            "task": self.task,
            "model": self.model,
            "variant": self.variant,
            "energy_j_per_unit": self.energy_j_per_unit,
            "units": self.units,
            "duration_s": self.duration_s,
            "power_w": self.power_w,
            "metrics": dict(self.metrics),
            "contended": self.contended,
            "setup": dict(self.setup),
        }


def setup_of(record: RunRecord, per: str, phase: str | None) -> dict[str, Any]:
    """What a repeat was measured with: the unit (and phase), and per device (by kind, in id
    order) its name, method, measured or estimated, and scope (the run's own share or the whole
    device or machine). Repeats are comparable only when these are equal."""
    devices: dict[str, dict[str, Any]] = {}
    seen: dict[str, int] = {}
    for d in sorted(record.devices, key=lambda d: (d.kind, d.id)):
        i = seen.get(d.kind, 0)
        seen[d.kind] = i + 1
        devices[f"{d.kind}[{i}]"] = {
            "name": d.label,
            "method": d.method,
            "measured": d.measured,
            "scope": (d.attribution or "whole device").split(":")[0],
        }
    return {"unit": per, "phase": phase, "devices": devices}


def setup_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """What differs between two setups, one phrase each (empty: comparable)."""
    out = []
    if a.get("unit") != b.get("unit"):
        out.append(f"the unit differs: {a.get('unit')!r} vs {b.get('unit')!r}")
    if a.get("phase") != b.get("phase"):
        out.append(f"the phase differs: {a.get('phase')!r} vs {b.get('phase')!r}")
    da, db = a.get("devices") or {}, b.get("devices") or {}
    for key in sorted(set(da) | set(db)):
        if key not in db:
            out.append(f"{key} ({da[key]['name']}) is only in the first")
            continue
        if key not in da:
            out.append(f"{key} ({db[key]['name']}) is only in the second")
            continue
        x, y = da[key], db[key]
        if x["measured"] != y["measured"]:
            how = {True: "measured", False: "estimated"}
            out.append(f"{key} was {how[x['measured']]} vs {how[y['measured']]}")
        if x["name"] != y["name"]:
            out.append(f"{key} model differs: {x['name']!r} vs {y['name']!r}")
        if x["method"] != y["method"]:
            out.append(f"{key} method differs: {x['method']!r} vs {y['method']!r}")
        if x["scope"] != y["scope"]:
            out.append(f"{key} scope differs: {x['scope']!r} vs {y['scope']!r}")
    return out


def repeat_of(record: RunRecord, per: str, phase: str | None = None) -> Repeat | None:
    """The repeat a completed run gives for ``per`` (and ``phase``); None if it counted none."""
    from footprint.attribution import run_share

    share = run_share(record, per, phase)
    if share is None or share.units <= 0:
        return None
    if phase is None:
        duration_s = record.duration_s
    else:  # the chosen phases' own time, as their energy is theirs
        chosen = [p for p in record.phases if phase in (p.path, p.name)]
        outer = [p for p in chosen if not any(o is not p and p.path.startswith(o.path + "/")
                                               for o in chosen)]  # fmt: skip
        duration_s = math.fsum(p.end_s - p.start_s for p in outer)
    metrics = {
        k: float(v)
        for k, v in record.metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    }
    return Repeat(
        run_id=record.id,
        name=record.name,
        started_at=record.started_at,
        task=record.task,
        model=record.model,
        variant=record.variant,
        energy_j_per_unit=share.energy_j / share.units,
        units=share.units,
        duration_s=duration_s,
        power_w=share.energy_j / duration_s if duration_s > 0 else None,
        metrics=metrics,
        contended=record.contended,
        setup=setup_of(record, per, phase),
    )


@dataclass(frozen=True)
class Side:
    """The repeats of one workload (one side of a comparison), and where they came from."""

    label: str
    per: str
    phase: str | None
    repeats: tuple[Repeat, ...]
    notes: tuple[str, ...] = ()
    directions: Mapping[str, bool] = field(default_factory=dict)

    @property
    def setup(self) -> Mapping[str, Any]:
        return self.repeats[0].setup

    @property
    def workload(self) -> str:
        """``task model/variant`` of its repeats."""
        r = self.repeats[0]
        what = (r.model or "?") + ("" if r.variant is None else f"/{r.variant}")
        return (f"{r.task} " if r.task is not None else "") + what


def matches(
    fields: Mapping[str, Any], tags: Mapping[str, str] | None, filters: Mapping[str, Any]
) -> bool:
    """Whether a run (its task/model/variant ``fields`` and ``tags``) passes ``filters``; tags
    are not checked where there are none to check (a baseline file's repeats: they were applied
    at its export)."""
    for key in ("task", "model", "variant"):
        if filters.get(key) is not None and fields.get(key) != filters[key]:
            return False
    return tags is None or all(tags.get(k) == v for k, v in (filters.get("tags") or {}).items())


def filter_text(filters: Mapping[str, Any]) -> str:
    parts = [f"--{k} {filters[k]}" for k in ("task", "model", "variant") if filters.get(k)]
    parts += [f"--tag {k}={v}" for k, v in (filters.get("tags") or {}).items()]
    return " ".join(parts) or "no filters"


def side_from_records(
    records: Sequence[RunRecord | dict],
    label: str,
    *,
    per: str,
    phase: str | None = None,
    filters: Mapping[str, Any] | None = None,
) -> Side:
    """The side made of the completed runs among ``records`` that match ``filters`` and counted
    ``per``. Raises :class:`CompareError` when none do, when they are of several workloads, or
    when they were measured on different setups."""
    filters = dict(filters or {})
    runs = [as_record(r) for r in records]
    matching = [
        r for r in runs
        if matches({"task": r.task, "model": r.model, "variant": r.variant}, r.tags, filters)
    ]  # fmt: skip
    if not matching:
        raise CompareError(f"{label}: no run matches {filter_text(filters)}")
    notes = []
    done = [r for r in matching if r.status == "completed"]
    if len(done) < len(matching):
        notes.append(f"{label}: {len(matching) - len(done)} run(s) that did not complete left out")
    repeats = [rep for r in done if (rep := repeat_of(r, per, phase)) is not None]
    if not repeats:
        where = f" in phase {phase!r}" if phase else ""
        raise CompareError(
            f"{label}: none of its {len(done)} completed run(s) counted {per!r}{where} "
            "(run.count(...)); choose another --per/--phase or other runs"
        )
    if len(repeats) < len(done):
        notes.append(f"{label}: {len(done) - len(repeats)} run(s) that counted no {per} left out")
    workloads = sorted({(r.task or "", r.model or "", r.variant or "") for r in repeats})
    if len(workloads) > 1:
        shown = ", ".join(f"{m or '?'}/{v or '-'}" + (f" ({t})" if t else "")
                          for t, m, v in workloads[:5])  # fmt: skip
        raise CompareError(
            f"{label}: its runs are of {len(workloads)} workloads ({shown}): choose one with "
            "--task/--model/--variant/--tag"
        )
    diff = next(
        (d for r in repeats[1:] if (d := setup_differences(repeats[0].setup, r.setup))), None
    )
    if diff:
        raise CompareError(
            f"{label}: its runs were measured on different setups ({'; '.join(diff)}): "
            "compare runs of one machine and method"
        )
    directions: dict[str, bool] = {}
    for r in done:
        directions.update(r.metric_directions)
    return Side(label, per, phase, tuple(repeats), tuple(notes), directions)


def load_side(
    source: Any,
    *,
    per: str,
    phase: str | None = None,
    filters: Mapping[str, Any] | None = None,
    store: str | os.PathLike | None = None,
) -> Side:
    """A side from ``source``: a :class:`Side`, a baseline file, a store directory, a run id
    (or unique prefix) in ``store``, or a list of records."""
    from footprint.baseline import is_baseline_file, load_baseline
    from footprint.store import Store

    if isinstance(source, Side):
        return source
    if isinstance(source, (list, tuple)):
        return side_from_records(source, "the runs given", per=per, phase=phase, filters=filters)
    text = os.fspath(source)
    path = Path(text)
    if path.is_file():
        if not is_baseline_file(path):
            raise CompareError(
                f"{text!r} is a file but not a footprint baseline (footprint baseline export "
                "writes one); give a baseline file, a store directory or a run id"
            )
        return load_baseline(path, per=per, phase=phase, filters=filters)
    if path.is_dir():
        st = Store(path)
        subs = st.sub_stores() if not st.records() else []
        if subs:
            raise CompareError(
                f"{text!r} holds no runs itself, only stores inside it "
                f"({', '.join(str(s) for s in subs[:3])}): give one of them"
            )
        return side_from_records(st.records(), text, per=per, phase=phase, filters=filters)
    try:
        record = Store(store).get(text)
    except FootprintError as exc:
        raise CompareError(
            f"{text!r} is not a baseline file, a store directory or a run id: {exc}"
        ) from exc
    return side_from_records([record], f"run {record.id[:8]}", per=per, phase=phase)


@dataclass(frozen=True)
class FigureComparison:
    """One figure of both sides: their summaries, B/A, B - A and the verdict.

    ``verdict``: "lower" or "higher" (B than A: the ratio's 95 % interval excludes 1, or for a
    metric the difference's excludes 0), "within noise", or "too few repeats" (a side with
    fewer than two clean repeats)."""

    name: str
    unit: str
    a: Stats | None
    b: Stats | None
    ratio: Ratio | None
    difference: Difference | None
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        def stats(s: Stats | None) -> dict | None:
            if s is None:
                return None
            return {"n": s.n, "mean": s.mean, "std": s.std, "ci_low": s.ci_low,
                    "ci_high": s.ci_high}  # fmt: skip

        return {
            "name": self.name,
            "unit": self.unit,
            "a": stats(self.a),
            "b": stats(self.b),
            "ratio": None
            if self.ratio is None
            else {
                "estimate": self.ratio.estimate,
                "ci_low": self.ratio.ci_low,
                "ci_high": self.ratio.ci_high,
            },  # fmt: skip
            "difference": None
            if self.difference is None
            else {
                "estimate": self.difference.estimate,
                "ci_low": self.difference.ci_low,
                "ci_high": self.difference.ci_high,
                "p_value": self.difference.p_value,
                "df": self.difference.df,
            },  # fmt: skip
            "verdict": self.verdict,
        }


def _figure(name: str, unit: str, a: list[float], b: list[float], metric: bool) -> FigureComparison:
    sa = summarise(a) if a else None
    sb = summarise(b) if b else None
    ratio = fieller(sa, sb) if sa and sb else None
    diff = welch(sa, sb) if sa and sb else None
    if diff is None:
        verdict = "too few repeats"
    elif metric:
        verdict = ("higher" if diff.ci_low > 0 else "lower" if diff.ci_high < 0
                   else "within noise")  # fmt: skip
    elif ratio is None or ratio.ci_low is None or ratio.ci_high is None:
        verdict = "within noise"
    else:
        verdict = ("higher" if ratio.ci_low > 1 else "lower" if ratio.ci_high < 1
                   else "within noise")  # fmt: skip
    return FigureComparison(name, unit, sa, sb, ratio, diff, verdict)


@dataclass(frozen=True)
class Decision:
    """The gate's decision on one figure (see :meth:`Comparison.check`)."""

    figure: str
    decision: str  # "pass", "regression" or "inconclusive"
    change: float | None  # energy: ratio - 1; metric: the drop, in the metric's units
    ci_low: float | None
    ci_high: float | None
    limit: float
    reason: str
    repeats_needed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class CheckResult:
    """The gate's result: ``decision`` is "pass", "regression" or "inconclusive"; each checked
    figure's :class:`Decision` in ``decisions``; the comparison it was made from."""

    decision: str
    decisions: tuple[Decision, ...]
    comparison: Comparison
    setup_differences: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return self.decision == "pass"

    def exit_code(self, inconclusive: str = "inconclusive") -> int:
        """0 pass, 1 regression, 3 inconclusive (or 0 / 1 with ``inconclusive="pass"/"fail"``)."""
        if self.decision == "inconclusive":
            return {"pass": 0, "fail": 1}.get(inconclusive, 3)
        return 0 if self.decision == "pass" else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "decisions": [d.to_dict() for d in self.decisions],
            "setup_differences": list(self.setup_differences),
            "notes": list(self.notes),
            "comparison": self.comparison.to_dict(),
        }


def _repeats_to_decide(
    ratio: float, cv_a: float, cv_b: float, limit: float, largest: int = 1000
) -> int | None:
    """The fewest repeats per side after which, with these means and spreads, the rule would
    decide (None: more than ``largest``, or never: the ratio sits on the limit)."""
    from footprint.stats import t_quantile_975

    spread = math.sqrt(cv_a**2 + cv_b**2)
    if spread == 0:
        return None
    for n in range(2, largest + 1):
        half = t_quantile_975(2 * n - 2) * ratio * spread / math.sqrt(n)
        if ratio + half < 1 + limit or (ratio - half > 1 and ratio > 1 + limit):
            return n
    return None


@dataclass(frozen=True)
class Comparison:
    """A (baseline) and B (candidate) figure by figure; see the module docstring."""

    a: Side
    b: Side
    figures: tuple[FigureComparison, ...]
    setup_differences: tuple[str, ...]
    allowed_different_setup: bool
    contended: tuple[int, int]  # contended repeats left out of A and of B
    notes: tuple[str, ...]

    def figure(self, name: str) -> FigureComparison:
        """The comparison of ``name`` ("energy_per_unit", "power", "duration", "metric:acc")."""
        for f in self.figures:
            if f.name == name:
                return f
        raise KeyError(f"no figure {name!r}; figures: {', '.join(f.name for f in self.figures)}")

    @property
    def energy(self) -> FigureComparison:
        return self.figure("energy_per_unit")

    def to_dict(self) -> dict[str, Any]:
        def side(s: Side) -> dict[str, Any]:
            return {
                "label": s.label, "workload": s.workload, "per": s.per, "phase": s.phase,
                "setup": dict(s.setup), "repeats": [r.to_dict() for r in s.repeats],
            }  # fmt: skip

        return {
            "a": side(self.a),
            "b": side(self.b),
            "figures": [f.to_dict() for f in self.figures],
            "setup_differences": list(self.setup_differences),
            "allowed_different_setup": self.allowed_different_setup,
            "contended_left_out": {"a": self.contended[0], "b": self.contended[1]},
            "notes": list(self.notes),
        }

    def check(
        self,
        max_regression: float = 0.05,
        *,
        metric: str | None = None,
        max_drop: float | None = None,
        relative_drop: bool = False,
        higher_is_better: bool | None = None,
    ) -> CheckResult:
        """The gate's decision, B (candidate) against A (baseline).

        Energy per unit: a **regression** when the 95 % interval of the ratio B/A lies above 1
        and its estimate exceeds ``1 + max_regression``; a **pass** when the interval's upper end
        is below ``1 + max_regression``; otherwise **inconclusive** (with the repeats per side
        that would decide, at these spreads). ``metric`` with ``max_drop`` (in the metric's
        units; a fraction of the baseline's mean with ``relative_drop``): the drop (worse by the
        metric's direction) is a regression when its 95 % Welch interval lies above 0 and its
        estimate exceeds ``max_drop``, a pass when the interval's upper end is below ``max_drop``.
        Contended repeats are left out; a side with fewer than two clean repeats is
        inconclusive. Overall: any regression, else any inconclusive, else pass."""
        if not (isinstance(max_regression, (int, float)) and 0 <= max_regression < 10):
            raise CompareError(
                f"max_regression is a fraction (0.05 for 5 %), got {max_regression!r}"
            )
        decisions = [self._energy_decision(float(max_regression))]
        if metric is not None:
            if max_drop is None:
                raise CompareError(f"a check of {metric!r} needs max_drop= (--max-drop)")
            decisions.append(
                self._metric_decision(metric, float(max_drop), relative_drop, higher_is_better)
            )
        elif max_drop is not None:
            raise CompareError("max_drop= (--max-drop) needs the metric= (--metric) it applies to")
        kinds = {d.decision for d in decisions}
        overall = ("regression" if "regression" in kinds else "inconclusive"
                   if "inconclusive" in kinds else "pass")  # fmt: skip
        notes = list(self.notes)
        if self.setup_differences:
            notes.insert(0, "SETUPS DIFFER (allowed by --allow-different-setup): "
                         + "; ".join(self.setup_differences))  # fmt: skip
        return CheckResult(overall, tuple(decisions), self, self.setup_differences, tuple(notes))

    def _energy_decision(self, limit: float) -> Decision:
        f = self.energy
        if f.a is None or f.b is None or f.a.n < 2 or f.b.n < 2:
            na, nb = (f.a.n if f.a else 0), (f.b.n if f.b else 0)
            return Decision(
                f.name, "inconclusive", None if f.ratio is None else f.ratio.estimate - 1,
                None, None, limit,
                f"too few clean repeats ({na} baseline, {nb} candidate): at least 2 on each "
                "side, 5 recommended",
            )  # fmt: skip
        r = f.ratio
        if r is None or r.ci_low is None or r.ci_high is None:
            return Decision(f.name, "inconclusive", None, None, None, limit,
                            "the baseline's mean is not distinguishable from zero")  # fmt: skip
        change, lo, hi = r.estimate - 1, r.ci_low - 1, r.ci_high - 1
        if r.ci_low > 1 and r.estimate > 1 + limit:
            return Decision(f.name, "regression", change, lo, hi, limit,
                            f"costs {_pct(change)} more (95 % CI {_pct(lo)} to {_pct(hi)}), "
                            f"above the {_pct(limit)} allowed")  # fmt: skip
        if r.ci_high < 1 + limit:
            return Decision(f.name, "pass", change, lo, hi, limit,
                            f"{_pct(change, signed=True)} (95 % CI {_pct(lo, True)} to "
                            f"{_pct(hi, True)}): below the {_pct(limit)} allowed")  # fmt: skip
        cv_a = (f.a.std or 0) / f.a.mean if f.a.mean else 0.0
        cv_b = (f.b.std or 0) / f.b.mean if f.b.mean else 0.0
        need = _repeats_to_decide(r.estimate, cv_a, cv_b, limit)
        more = (f"; about {need} repeats on each side would decide at these spreads"
                if need else "; more repeats would not decide at these spreads")  # fmt: skip
        return Decision(f.name, "inconclusive", change, lo, hi, limit,
                        f"{_pct(change, True)} (95 % CI {_pct(lo, True)} to {_pct(hi, True)}) "
                        f"spans the {_pct(limit)} limit{more}", need)  # fmt: skip

    def _metric_decision(
        self, metric: str, max_drop: float, relative: bool, higher: bool | None
    ) -> Decision:
        name = f"metric:{metric}"
        try:
            f = self.figure(name)
        except KeyError:
            raise CompareError(
                f"{metric!r} was not logged by both sides (run.log); metrics they share: "
                + (
                    ", ".join(x.name[7:] for x in self.figures if x.name.startswith("metric:"))
                    or "none"
                )  # fmt: skip
            ) from None
        if higher is None:
            higher = self.a.directions.get(metric, self.b.directions.get(metric))
        if higher is None:
            from footprint.ranking import default_higher_is_better

            higher = default_higher_is_better(metric)
        if higher is None:
            raise CompareError(
                f"cannot tell whether a higher {metric!r} is better: pass "
                "--higher-is-better/--lower-is-better (higher_is_better=)"
            )
        limit = max_drop * abs(f.a.mean) if relative and f.a is not None else max_drop
        d = f.difference
        if f.a is None or f.b is None or d is None:
            return Decision(name, "inconclusive", None, None, None, limit,
                            "too few clean repeats: at least 2 on each side")  # fmt: skip
        # the drop: how much worse the candidate is, by the metric's direction
        sign = -1.0 if higher else 1.0
        drop = sign * d.estimate
        lo, hi = sorted((sign * d.ci_low, sign * d.ci_high))
        unit = f" ({_pct(max_drop)} of the baseline's {f.a.mean:.4g})" if relative else ""
        if lo > 0 and drop > limit:
            return Decision(name, "regression", drop, lo, hi, limit,
                            f"{metric} drops by {drop:.4g} (95 % CI {lo:.4g} to {hi:.4g}), more "
                            f"than the {limit:.4g} allowed{unit}")  # fmt: skip
        if hi < limit:
            return Decision(name, "pass", drop, lo, hi, limit,
                            f"{metric} drop {drop:.4g} (95 % CI {lo:.4g} to {hi:.4g}): below the "
                            f"{limit:.4g} allowed{unit}")  # fmt: skip
        return Decision(name, "inconclusive", drop, lo, hi, limit,
                        f"{metric} drop {drop:.4g} (95 % CI {lo:.4g} to {hi:.4g}) spans the "
                        f"{limit:.4g} allowed{unit}")  # fmt: skip


def _pct(x: float, signed: bool = False) -> str:
    text = f"{x * 100:+.1f} %" if signed else f"{x * 100:.1f} %"
    return text.replace("-", "−")


def compare(
    a: Any,
    b: Any,
    *,
    per: str,
    phase: str | None = None,
    task: str | None = None,
    model: str | None = None,
    variant: str | None = None,
    tags: Mapping[str, str] | None = None,
    metrics: Sequence[str] | None = None,
    store: str | os.PathLike | None = None,
    allow_different_setup: bool = False,
) -> Comparison:
    """Compare workload B with A, figure by figure; ``.check(...)`` gives the CI gate's decision.

    ``a`` and ``b``: each a baseline file (``footprint baseline export``), a store directory,
    a run id or unique prefix (in ``store``), a list of records, or a :class:`Side`. The
    filters (``task``, ``model``, ``variant``, ``tags``) keep the runs of both that match;
    ``per`` is the unit energy is divided by, ``phase`` the phase whose energy counts.
    ``metrics``: the quality metrics to compare (default: every one both sides logged).

    Raises :class:`CompareError` for input that cannot be compared (no matching runs, several
    workloads on a side, different setups unless ``allow_different_setup``), saying what to
    change. Example, in a test::

        result = footprint.compare("energy-baseline.json", "runs/", per="queries")
        assert result.check(max_regression=0.05).decision != "regression"
    """
    if not isinstance(per, str) or not per:
        raise UsageError("per= (--per) names the unit counted with run.count, e.g. 'queries'")
    filters = {"task": task, "model": model, "variant": variant, "tags": dict(tags or {})}
    side_a = load_side(a, per=per, phase=phase, filters=filters, store=store)
    side_b = load_side(b, per=per, phase=phase, filters=filters, store=store)
    differences = tuple(setup_differences(side_a.setup, side_b.setup))
    if differences and not allow_different_setup:
        raise CompareError(
            f"{side_a.label} and {side_b.label} were measured differently: "
            f"{'; '.join(differences)}. Measure both in the same job (docs/ci.md), or pass "
            "--allow-different-setup (allow_different_setup=True) to compare anyway"
        )
    clean_a = [r for r in side_a.repeats if not r.contended]
    clean_b = [r for r in side_b.repeats if not r.contended]
    contended = (len(side_a.repeats) - len(clean_a), len(side_b.repeats) - len(clean_b))
    notes = [*side_a.notes, *side_b.notes]
    for label, n in ((side_a.label, contended[0]), (side_b.label, contended[1])):
        if n:
            notes.append(
                f"{label}: {n} repeat(s) made while other processes were busy (contended) left "
                "out: they count as inconclusive, never as a pass or a regression"
            )
    figures = [
        _figure("energy_per_unit", "J", [r.energy_j_per_unit for r in clean_a],
                [r.energy_j_per_unit for r in clean_b], metric=False),
        _figure("power", "W", [r.power_w for r in clean_a if r.power_w is not None],
                [r.power_w for r in clean_b if r.power_w is not None], metric=False),
        _figure("duration", "s", [r.duration_s for r in clean_a],
                [r.duration_s for r in clean_b], metric=False),
    ]  # fmt: skip
    shared = [m for m in side_a.repeats[0].metrics if all(m in r.metrics for r in side_a.repeats)
              and all(m in r.metrics for r in side_b.repeats)]  # fmt: skip
    wanted = list(metrics) if metrics is not None else sorted(shared)
    for m in wanted:
        if m not in shared:
            raise CompareError(
                f"metric {m!r} is not logged by every run of both sides; shared: "
                + (", ".join(sorted(shared)) or "none")
            )
        figures.append(
            _figure(
                f"metric:{m}",
                "",
                [r.metrics[m] for r in clean_a],
                [r.metrics[m] for r in clean_b],
                metric=True,
            )  # fmt: skip
        )
    return Comparison(side_a, side_b, tuple(figures), differences, bool(differences),
                      contended, tuple(notes))  # fmt: skip
