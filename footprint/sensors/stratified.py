"""Stratified jittered sampling of a power: the integrator behind NVML power polling.

Time is cut into strata of a fixed width; power is sampled once at a uniformly random instant
inside each stratum, and that stratum's energy is the sample times its width. A periodic load
cannot alias against such samples the way it can against a fixed period. Pure bookkeeping: the
caller passes every instant (``now``) and every power reading, so it is tested on its own in
simulated time (tests/unit/test_stratified.py); :mod:`footprint.sensors.nvml.polling` drives it
from a thread and a clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence


class Slots:
    """The strata of one poller, shared by all its GPUs: a grid of ``width_s`` from ``origin``
    (set by the first :meth:`anchor`) and one uniformly random offset per stratum, drawn once.

    Every GPU is sampled at the same planned instant in a stratum, so the poller wakes once per
    stratum for all of them. Each GPU's integral stays stratified and unbiased: its planned
    instants are uniform within their strata and independent from one stratum to the next (the
    GPUs' errors are merely correlated with each other).
    """

    def __init__(self, width_s: float, uniform: Callable[[], float]) -> None:
        self.width_s = width_s
        self.uniform = uniform
        self.origin = 0.0
        self._anchored = False
        self._offsets: dict[int, float] = {}

    def anchor(self, now: float) -> None:
        if not self._anchored:
            self.origin, self._anchored = now, True

    def start(self, k: int) -> float:
        return self.origin + k * self.width_s

    def index(self, t: float) -> int:
        """The stratum holding ``t``: ``start(k) <= t < start(k + 1)``."""
        k = math.floor((t - self.origin) / self.width_s)
        if self.start(k) > t:  # floating-point rounding at a boundary
            k -= 1
        elif self.start(k + 1) <= t:
            k += 1
        return k

    def instant(self, k: int) -> float:
        """Stratum ``k``'s planned sample instant (drawn the first time it is asked for)."""
        u = self._offsets.get(k)
        if u is None:
            u = self._offsets[k] = self.uniform()
            if len(self._offsets) > 16:
                for old in [j for j in self._offsets if j < k - 4]:
                    del self._offsets[old]
        return self.start(k) + u * self.width_s


class Strata:
    """Stratified jittered integration of one GPU's power; pure bookkeeping, no clock or NVML.

    The strata are the :class:`Slots` grid (the first one starts at :meth:`begin`, so it may be
    partial). Each has a planned sample instant ``sample_at``, uniform in it, and is charged with
    the power sampled *for* that instant x its width. That sample is:

    - the poller's reading on the wake-up aimed at the instant (:meth:`poll`). The thread aims
      early by its usual lateness (``lead``), so the reading lands a little before or after the
      instant, and it stays this stratum's sample even if it lands in a neighbouring stratum
      (the next one's sample may likewise be taken early: ``next_w``). Charging every stratum a
      power sampled at its uniform instant plus a timing error that does not depend on that
      instant integrates the power over a window shifted by the error: unbiased, even for a load
      whose period is a multiple of the strata's, up to the error x power at the ends;
    - failing that (the thread fell behind past the stratum's end), the first reading taken after
      the stratum ended, by the poller or by a read: :meth:`settle`. One reading serves every
      stratum it is the first after, so a long stall costs one step. ``missed`` counts them.

    A read at ``now`` (:meth:`cut`) commits ``[seg_start, now)``: with the stratum's sample if
    its planned instant is before ``now`` (it is then uniform in that segment), else with a
    reading taken at ``now``; the rest keeps the planned instant (and its sample) if that is
    after ``now``, or else gets an instant of its own, uniform in ``[now, end)``. Readings
    therefore never decrease, and a read costs at most one NVML call.
    """

    def __init__(self, slots: Slots) -> None:
        self.slots = slots
        self.energy_j = 0.0
        self.active = False
        self.missed = 0  # strata whose sample came after they ended (the poller fell behind)
        self.k = 0  # the current stratum's index in the grid
        self.seg_start = self.end = self.sample_at = self.next_at = 0.0
        self.sample_w: float | None = None
        self.next_w: float | None = None  # the next stratum's sample, when taken early
        self.last_w = 0.0  # the last power read (what a failing NVML call holds)

    def begin(self, now: float, power_w: float) -> None:
        """Start integrating at ``now``; ``power_w`` (sampled now) is the last power read."""
        slots = self.slots
        slots.anchor(now)
        self.active = True
        self.last_w = power_w
        self.k = slots.index(now)
        self.seg_start, self.end = now, slots.start(self.k + 1)
        planned = slots.instant(self.k)
        if planned < now:  # the shared instant has passed: one of our own in what is left
            planned = now + slots.uniform() * (self.end - now)
        self.sample_at, self.sample_w = planned, None
        self.next_at, self.next_w = slots.instant(self.k + 1), None

    def _enter(self, k: int) -> None:
        """Make stratum ``k`` current (everything before it is committed)."""
        slots = self.slots
        if k == self.k + 1:
            self.sample_at, self.sample_w = self.next_at, self.next_w
            self.next_at = slots.instant(k + 1)
        else:
            self.sample_at, self.sample_w = slots.instant(k), None
            self.next_at = slots.instant(k + 1)
        self.k, self.next_w = k, None
        self.seg_start, self.end = slots.start(k), slots.start(k + 1)

    def settle(self, now: float, power_now: Callable[[], float]) -> None:
        """Commit every stratum that ended at or before ``now``; one still without its sample
        takes ``power_now()``, a reading at ``now``. ``power_now`` should cache its reading."""
        if not self.active:
            return
        while self.end <= now:
            if self.sample_w is None:
                self.sample_w = self.last_w = power_now()
                self.missed += 1
            self.energy_j += self.sample_w * (self.end - self.seg_start)
            self._enter(self.k + 1)
            behind = self.slots.index(now) - self.k  # further strata that ended before now
            if behind > 1 and self.sample_w is None and self.next_w is None:
                value = self.last_w = power_now()  # a long stall: settle it in one step
                self.energy_j += value * (self.slots.start(self.k + behind) - self.seg_start)
                self.missed += behind
                self._enter(self.k + behind)

    def due(self, now: float, lead: float = 0.0) -> bool:
        """Whether a wake-up at ``now`` aiming ``lead`` early should sample the current stratum."""
        return self.active and self.sample_w is None and self.sample_at - lead <= now

    def poll(self, now: float, lead: float, power_now: Callable[[], float]) -> None:
        """The poller's wake-up at ``now`` (after aiming ``lead`` early): settle, then take the
        reading as the sample of the current stratum, or of the next one, if it is due."""
        self.settle(now, power_now)
        if not self.active:
            return
        if self.sample_w is None:
            if self.sample_at - lead <= now:
                self.sample_w = self.last_w = power_now()
        elif self.next_w is None and self.next_at - lead <= now:
            self.next_w = self.last_w = power_now()

    def next_wake(self, lead: float) -> float:
        """When the poller should wake for this GPU: its next unsampled planned instant - lead."""
        if self.sample_w is None:
            return self.sample_at - lead
        if self.next_w is None:
            return self.next_at - lead
        return self.slots.instant(self.k + 2) - lead

    def record(self, power_w: float) -> None:
        """The current stratum's sample (as :meth:`poll` takes it)."""
        self.sample_w = self.last_w = power_w

    def cut(self, now: float, power_now: Callable[[], float]) -> None:
        """Commit up to ``now`` (after :meth:`settle`); ``power_now()`` reads at ``now``."""
        if not self.active or now <= self.seg_start:
            return
        passed = self.sample_at <= now
        if passed and self.sample_w is not None:
            value = self.sample_w
        else:
            value = self.last_w = power_now()
        self.energy_j += value * (now - self.seg_start)
        self.seg_start = now
        if passed:
            self.sample_at = now + self.slots.uniform() * (self.end - now)
            self.sample_w = None

    def finish(self, now: float, power_now: Callable[[], float]) -> None:
        """Stop integrating at ``now``."""
        self.settle(now, power_now)
        self.cut(now, power_now)
        self.active = False


class Lateness:
    """How late the poller's thread wakes after the instant it asked for: a running mean (EWMA)
    of the observed lateness, between 0 and half a stratum. The poller aims that much early."""

    def __init__(self, width_s: float, weight: float = 0.05) -> None:
        self.lead = 0.0
        self._cap = width_s / 2
        self._weight = weight

    def observe(self, late_s: float) -> None:
        self.lead += self._weight * (min(max(late_s, 0.0), self._cap) - self.lead)


def once(read: Callable[[], float]) -> Callable[[], float]:
    """``read``, called at most once: one NVML call serves everything due at one instant."""
    cache: list[float] = []

    def reading() -> float:
        if not cache:
            cache.append(read())
        return cache[0]

    return reading


def poll_all(gpus: Sequence[tuple[Strata, Callable[[], float]]], now: float, lead: float) -> float:
    """One wake-up of the poller at ``now``: poll each GPU (its strata and its power reading);
    return the instant to wake at next."""
    wake = math.inf
    for strata, power in gpus:
        strata.poll(now, lead, once(power))
        wake = min(wake, strata.next_wake(lead))
    return wake
