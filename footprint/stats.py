"""Repeats summarised: mean, sample standard deviation and the 95 % Student-t interval.

No scipy: the t quantile comes from the exact finite series for integer degrees of freedom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache


def _t_central_mass(t: float, df: int) -> float:
    """P(|T| < t) for Student's t with integer ``df`` degrees of freedom.

    The finite series of Abramowitz & Stegun 26.7.3 (odd df) and 26.7.4 (even df), with
    theta = atan(t / sqrt(df)); exact up to rounding, no special functions needed.
    """
    theta = math.atan(t / math.sqrt(df))
    cos2 = math.cos(theta) ** 2
    if df % 2 == 1:
        total = 0.0
        if df > 1:
            term = total = math.cos(theta)
            for k in range(3, df - 1, 2):
                term *= (k - 1) / k * cos2
                total += term
        return 2.0 / math.pi * (theta + math.sin(theta) * total)
    term = total = 1.0
    for k in range(2, df - 1, 2):
        term *= (k - 1) / k * cos2
        total += term
    return math.sin(theta) * total


_Z_975 = 1.959963984540054  # standard normal 97.5 % quantile


@lru_cache(maxsize=256)
def t_quantile_975(df: int) -> float:
    """The 97.5 % quantile of Student's t with ``df`` degrees of freedom (the 95 % CI factor).

    Solved by bisection on the exact series of :func:`_t_central_mass` (agrees with
    ``scipy.stats.t.ppf(0.975, df)`` to ~1e-13). Beyond 2,000 degrees of freedom the
    Cornish-Fisher expansion to 1/df^3 is used (relative error below 1e-12 there).
    """
    if not isinstance(df, int) or df < 1:
        raise ValueError(f"degrees of freedom must be an integer >= 1, got {df!r}")
    if df > 2000:
        z = _Z_975
        return (
            z
            + (z**3 + z) / (4 * df)
            + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
        )
    lo, hi = 0.0, 2.0
    while _t_central_mass(hi, df) < 0.95:
        hi *= 2.0
    while hi - lo > 1e-14 * hi:
        mid = (lo + hi) / 2.0
        if _t_central_mass(mid, df) < 0.95:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


@dataclass(frozen=True)
class Stats:
    """Mean, sample standard deviation and 95 % Student-t interval of repeated values."""

    n: int
    mean: float
    std: float | None  # None for n = 1
    ci_low: float | None
    ci_high: float | None


def summarise(values: Sequence[float]) -> Stats:
    """Mean, sample standard deviation (n - 1) and mean +- t(0.975, n - 1) * std / sqrt(n)."""
    n = len(values)
    if n == 0:
        raise ValueError("cannot summarise no values")
    mean = math.fsum(values) / n
    if n == 1:
        return Stats(1, mean, None, None, None)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile_975(n - 1) * std / math.sqrt(n)
    return Stats(n, mean, std, mean - half, mean + half)


def welch_df(var_a: float, n_a: int, var_b: float, n_b: int) -> float:
    """Welch–Satterthwaite degrees of freedom for ``var_a / n_a + var_b / n_b`` (sample
    variances, n >= 2 each); ``n_a + n_b - 2`` when both variances are zero."""
    va, vb = var_a / n_a, var_b / n_b
    den = va**2 / (n_a - 1) + vb**2 / (n_b - 1)
    return (va + vb) ** 2 / den if den > 0 else float(n_a + n_b - 2)


def _t_975(df: float) -> float:
    """The 97.5 % t quantile at fractional ``df`` (Welch's): linear in 1/df between the whole
    degrees of freedom either side. Never below the exact quantile (the quantile is convex in
    1/df), and within 0.06 of it from 2 degrees of freedom, 0.003 from 4."""
    df = max(1.0, df)
    lo = math.floor(df)
    if df == lo:
        return t_quantile_975(lo)
    w = (1 / lo - 1 / df) / (1 / lo - 1 / (lo + 1))
    return (1 - w) * t_quantile_975(lo) + w * t_quantile_975(lo + 1)


@dataclass(frozen=True)
class Difference:
    """``mean(b) - mean(a)`` with its 95 % Welch interval and Welch's two-sided p-value."""

    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    df: float


def welch(a: Stats, b: Stats) -> Difference | None:
    """Welch's unequal-variance t test of ``b - a`` (None unless both have 2 or more values).

    The interval uses the t quantile at Welch's fractional degrees of freedom; the p-value is
    exact for the whole degrees of freedom below them (slightly conservative)."""
    if a.std is None or b.std is None:
        return None
    diff = b.mean - a.mean
    va, vb = a.std**2 / a.n, b.std**2 / b.n
    se = math.sqrt(va + vb)
    df = welch_df(a.std**2, a.n, b.std**2, b.n)
    if se == 0:
        return Difference(diff, diff, diff, 1.0 if diff == 0 else 0.0, df)
    half = _t_975(df) * se
    t = abs(diff) / se
    p = 1.0 - _t_central_mass(t, max(1, math.floor(df)))
    return Difference(diff, diff - half, diff + half, max(0.0, min(1.0, p)), df)


@dataclass(frozen=True)
class Ratio:
    """``mean(b) / mean(a)`` with its 95 % Fieller interval (bounds None: unbounded, when the
    mean of ``a`` is not distinguishable from zero)."""

    estimate: float
    ci_low: float | None
    ci_high: float | None


def fieller(a: Stats, b: Stats) -> Ratio | None:
    """The ratio of two independent means with Fieller's 95 % interval: every ratio r for which
    ``mean(b) - r mean(a) = 0`` is not rejected, ``(mb - r ma)^2 <= t^2 (vb + r^2 va)`` (a
    quadratic in r), each side with its own variance of the mean (``va``, ``vb``) and the t
    quantile at ``n_a + n_b - 2`` degrees of freedom.

    Why not Welch's degrees of freedom: the two sides are repeats of one workload on one setup
    (a check refuses others), so their run-to-run noise is one; Welch's would narrow the degrees
    of freedom on every chance imbalance of two small samples' spreads (five repeats each) and
    cost the gate power for nothing. None when a side has fewer than two values or
    ``mean(a)`` is zero."""
    if a.std is None or b.std is None or a.mean == 0:
        return None
    ma, mb = a.mean, b.mean
    va, vb = a.std**2 / a.n, b.std**2 / b.n
    r = mb / ma
    if va == 0 and vb == 0:
        return Ratio(r, r, r)
    df = float(a.n + b.n - 2)
    t2 = _t_975(df) ** 2
    qa = ma**2 - t2 * va
    if qa <= 0:
        return Ratio(r, None, None)
    qb = -2.0 * ma * mb
    qc = mb**2 - t2 * vb
    disc = max(0.0, qb**2 - 4.0 * qa * qc)
    lo, hi = sorted(((-qb - math.sqrt(disc)) / (2 * qa), (-qb + math.sqrt(disc)) / (2 * qa)))
    return Ratio(r, lo, hi)
