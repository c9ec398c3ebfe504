"""Energy per unit of work: which part of a run's energy the units it counted are charged with
(the rule is in docs/leaderboard.md). Used by the leaderboard and the report alike."""

from __future__ import annotations

import math
from dataclasses import dataclass

from footprint.record import PhaseRecord, RunRecord


@dataclass(frozen=True)
class RunShare:
    """The part of one run that did ``units`` of work: its IT energy and operational emissions."""

    energy_j: float
    units: float
    emissions_kg: float | None
    whole_run: bool  # True when the whole run's energy was used (units counted outside phases)


def _inside(inner: PhaseRecord, outer: PhaseRecord) -> bool:
    return (
        inner is not outer
        and inner.path.startswith(outer.path + "/")
        and outer.start_s <= inner.start_s
        and inner.end_s <= outer.end_s
    )


def _outermost(phases: list[PhaseRecord]) -> list[PhaseRecord]:
    # The tracker adds a count to every open phase, so a nested phase's units are already in its
    # parent's: summing only the outermost ones counts each unit (and joule) once.
    return [p for p in phases if not any(_inside(p, q) for q in phases)]


def _emissions_share(record: RunRecord, energy_j: float) -> float | None:
    total_kg = record.emissions_kg
    if total_kg is None:
        return None
    total_j = record.energy_j
    if total_j > 0:
        return total_kg * energy_j / total_j  # the run's own intensity and PUE, whatever they were
    return 0.0 if energy_j == 0 else None


def run_share(record: RunRecord, per: str, phase: str | None = None) -> RunShare | None:
    """The energy a run spent on the ``per`` units it counted; None when it counted none.

    Units counted inside phases belong to those phases: the energy is that of the outermost
    phases where ``per`` was counted, divided among the units counted there. If any unit was
    counted outside every phase, the whole run is used. ``phase`` (a phase name or path) picks
    the phases instead; their own ``per`` count is used, else the units the run counted outside
    every phase (e.g. ``len(X_test)`` once predictions are done), never units counted in another
    phase. Returns None when the run has no such phase or no such units.
    """
    total_units = float(record.counts.get(per, 0))
    phases = list(record.phases)
    if phase is not None:
        chosen = _outermost([p for p in phases if phase in (p.path, p.name)])
        if not chosen:
            return None
        units = math.fsum(p.counts.get(per, 0) for p in chosen)
        if units <= 0:
            # Only units counted outside every phase may stand in for the phase's own (e.g.
            # len(X_test) counted once predictions are done), never another phase's units.
            inside = math.fsum(p.counts.get(per, 0) for p in _outermost(phases))
            outside = total_units - inside
            units = outside if outside > total_units * 1e-12 else 0.0
        if units <= 0:
            return None
        energy_j = math.fsum(p.total_energy_j for p in chosen)
        return RunShare(energy_j, units, _emissions_share(record, energy_j), False)
    if total_units <= 0:
        return None
    chosen = _outermost([p for p in phases if p.counts.get(per, 0) > 0])
    units = math.fsum(p.counts[per] for p in chosen)
    if not chosen or units < total_units * (1 - 1e-12):
        return RunShare(record.energy_j, total_units, record.emissions_kg, True)
    energy_j = math.fsum(p.total_energy_j for p in chosen)
    return RunShare(energy_j, units, _emissions_share(record, energy_j), False)
