"""Energy per unit of work: which part of a run's energy the units it counted are charged with
(the rule is in docs/leaderboard.md). Used by the leaderboard and the report alike.

Every stretch of a run belongs to the innermost open phase that counted units itself (its
``own_counts``), or to the run when no such phase is open. Its energy goes to the units that
phase (or the run, outside every such phase) counted directly. A phase's owned energy is thus
its attributed energy minus that of the nearest sub-phases that counted units of their own;
sub-phases that counted nothing stay in. Concurrent phases were already divided when the run
was recorded (``attributed_energy_j``), so owned energies never add up to more than the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from footprint.record import PhaseRecord, RunRecord

# Counts are floats: a difference below this fraction of the total is rounding, not a unit.
_REL_TOL = 1e-9


@dataclass(frozen=True)
class RunShare:
    """The part of one run that did ``units`` of work: its IT energy and operational emissions."""

    energy_j: float
    units: float
    emissions_kg: float | None
    whole_run: bool  # True when stretches outside every counting phase are in (units counted
    # outside phases)


def _owner_parent(phases: tuple[PhaseRecord, ...], owning: list[bool]) -> list[int | None]:
    """For each phase, the index of its nearest enclosing phase that counted units itself."""
    out: list[int | None] = []
    for ph in phases:
        j = ph.parent
        while j is not None and not owning[j]:
            j = phases[j].parent
        out.append(j)
    return out


def owned_energy_j(record: RunRecord) -> tuple[list[float], float]:
    """The energy each phase owns (0 for a phase that counted nothing itself) and the energy the
    run owns (its stretches outside every phase that counted units itself)."""
    phases = record.phases
    owning = [bool(p.own_counts) for p in phases]
    up = _owner_parent(phases, owning)
    owned = [p.attributed_j if owning[i] else 0.0 for i, p in enumerate(phases)]
    run_owned = record.energy_j
    for i, p in enumerate(phases):
        if not owning[i]:
            continue
        j = up[i]
        if j is None:
            run_owned -= p.attributed_j
        else:
            owned[j] -= p.attributed_j
    return [max(0.0, e) for e in owned], max(0.0, run_owned)


def outside_phases(record: RunRecord, per: str) -> float:
    """Units of ``per`` the run counted outside every phase."""
    total = float(record.counts.get(per, 0))
    inside = math.fsum(p.own_counts.get(per, 0) for p in record.phases)
    outside = total - inside
    return outside if outside > total * _REL_TOL else 0.0


def _emissions_share(record: RunRecord, energy_j: float) -> float | None:
    total_kg = record.emissions_kg
    if total_kg is None:
        return None
    total_j = record.energy_j
    if total_j > 0:
        return total_kg * energy_j / total_j  # the run's own intensity and PUE, whatever they were
    return 0.0 if energy_j == 0 else None


def _outermost(record: RunRecord, chosen: list[int]) -> list[int]:
    picked = set(chosen)
    out = []
    for i in chosen:
        j = record.phases[i].parent
        while j is not None and j not in picked:
            j = record.phases[j].parent
        if j is None:
            out.append(i)
    return out


def run_share(record: RunRecord, per: str, phase: str | None = None) -> RunShare | None:
    """The energy a run spent on the ``per`` units it counted; None when it counted none.

    Without ``phase``: the energy of every stretch owned by a phase that counted ``per``
    itself (see the module's docstring), plus the run's own stretches if it counted ``per``
    outside every phase, over all the ``per`` units it counted.

    ``phase`` (a phase name or path) picks phases instead: the outermost of those phases'
    attributed energy (sub-phases included), over the units counted in them or, when none were,
    the units the run counted outside every phase (e.g. ``len(X_test)`` counted once
    predictions are done), never units counted in another phase. Returns None when the run has
    no such phase or no such units.
    """
    total_units = float(record.counts.get(per, 0))
    phases = record.phases
    if phase is not None:
        chosen = _outermost(record, [i for i, p in enumerate(phases) if phase in (p.path, p.name)])
        if not chosen:
            return None
        units = math.fsum(phases[i].counts.get(per, 0) for i in chosen)
        if units <= 0:
            units = outside_phases(record, per)
        if units <= 0:
            return None
        energy_j = math.fsum(phases[i].attributed_j for i in chosen)
        return RunShare(energy_j, units, _emissions_share(record, energy_j), False)
    if total_units <= 0:
        return None
    owned, run_owned = owned_energy_j(record)
    energy_j = math.fsum(e for p, e in zip(phases, owned) if p.own_counts.get(per, 0) > 0)
    outside = outside_phases(record, per) > 0
    if outside:
        energy_j += run_owned
    if outside and energy_j >= record.energy_j * (1 - _REL_TOL):
        return RunShare(record.energy_j, total_units, record.emissions_kg, True)
    return RunShare(energy_j, total_units, _emissions_share(record, energy_j), outside)
