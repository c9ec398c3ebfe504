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
