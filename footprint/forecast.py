"""The forecast of a whole run from its first epochs, with a 95 % prediction interval
(docs/tracking.md, "Forecast").

Method (``per-epoch-t``): the closed epochs' energies e_1..e_k and durations. When k >= 3 the
first is left out (it usually holds warm-up: compilation, caches, data loading), so n = k - 1
epochs are used, else all k. With their mean m and standard deviation s, the m_f = N - k epochs
still to come (the open one counted whole) are predicted to cost m_f x m, and their sum's 95 %
prediction interval is m_f x m +- t(0.975, n - 1) x s x sqrt(m_f + m_f^2 / n): the variance of
a sum of m_f new epochs plus that of the estimated mean. Energy already spent (the run so far,
including anything outside epochs) is added as known; an open epoch's energy so far counts
towards its own predicted cost. Assumptions: epochs are alike and independent once warmed up,
and nothing after the last epoch (a final evaluation, saving) costs much; both are stated in the
record. Two epochs used at least: with fewer there is no spread to learn from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from footprint.stats import t_quantile_975
from footprint.units import J_PER_KWH

METHOD = "per-epoch-t"


@dataclass(frozen=True)
class Forecast:
    """A run's predicted total for ``total`` epochs of phase ``phase``, made after ``done``.

    ``energy_kwh`` (``energy_kwh_low`` .. ``energy_kwh_high``: the 95 % prediction interval),
    ``emissions_kg`` (None without a region or intensity), ``ends_at`` (UTC), how many epochs
    it learned from (``epochs_used``) and whether the first was left out as warm-up.
    """

    phase: str
    total: int
    done: int
    energy_kwh: float
    energy_kwh_low: float
    energy_kwh_high: float
    emissions_kg: float | None
    emissions_kg_low: float | None
    emissions_kg_high: float | None
    ends_at: datetime
    epochs_used: int
    warmup_dropped: bool
    made_at: datetime
    method: str = METHOD

    def __str__(self) -> str:
        return (
            f"{self.energy_kwh:.3g} kWh ({self.energy_kwh_low:.3g}-{self.energy_kwh_high:.3g}) "
            f"for {self.total} {self.phase}s, ends ~{self.ends_at:%H:%M} UTC"
        )


@dataclass(frozen=True)
class Prediction:
    """The arithmetic of a forecast, in joules and seconds (see the module's docstring)."""

    energy_j: float
    low_j: float
    high_j: float
    remaining_s: float
    epochs_used: int
    warmup_dropped: bool


def predict(
    energies_j: Sequence[float],
    durations_s: Sequence[float],
    total: int,
    *,
    spent_j: float,
    open_energy_j: float | None = None,
    open_elapsed_s: float | None = None,
) -> Prediction:
    """Predict the whole run's energy from its closed epochs (``energies_j``, ``durations_s``),
    the energy ``spent_j`` so far and the open epoch's energy and time so far (if one is open)."""
    k = len(energies_j)
    if total < k + (open_energy_j is not None):
        raise ValueError(f"total={total} epochs, but {k} are done already")
    if k < 2:
        raise ValueError(f"a forecast needs at least 2 finished epochs, got {k}")
    drop = k >= 3
    used_e = list(energies_j[1:] if drop else energies_j)
    used_t = list(durations_s[1:] if drop else durations_s)
    n = len(used_e)
    mean = sum(used_e) / n
    sd = math.sqrt(sum((e - mean) ** 2 for e in used_e) / (n - 1))
    future = total - k  # the open epoch counted whole
    rest = future * mean
    if open_energy_j is not None:
        rest -= min(open_energy_j, mean)  # what the open epoch has spent is in spent_j
    half = t_quantile_975(n - 1) * sd * math.sqrt(future + future**2 / n)
    mean_t = sum(used_t) / n
    remaining_s = future * mean_t - min(open_elapsed_s or 0.0, mean_t)
    energy = spent_j + rest
    return Prediction(
        energy_j=energy,
        low_j=max(spent_j, energy - half),
        high_j=energy + half,
        remaining_s=max(0.0, remaining_s),
        epochs_used=n,
        warmup_dropped=drop,
    )


def make(
    p: Prediction,
    *,
    phase: str,
    total: int,
    done: int,
    emissions_per_kwh: float | None,
    now: datetime | None = None,
) -> Forecast:
    """The user-facing :class:`Forecast` of prediction ``p``."""
    now = now or datetime.now(timezone.utc)
    kwh = p.energy_j / J_PER_KWH, p.low_j / J_PER_KWH, p.high_j / J_PER_KWH
    em = [k * emissions_per_kwh if emissions_per_kwh is not None else None for k in kwh]
    return Forecast(
        phase=phase,
        total=total,
        done=done,
        energy_kwh=kwh[0],
        energy_kwh_low=kwh[1],
        energy_kwh_high=kwh[2],
        emissions_kg=em[0],
        emissions_kg_low=em[1],
        emissions_kg_high=em[2],
        ends_at=now + timedelta(seconds=p.remaining_s),
        epochs_used=p.epochs_used,
        warmup_dropped=p.warmup_dropped,
        made_at=now,
    )
