"""pandas adapters: a store's runs and a leaderboard as DataFrames (pandas is imported only
inside these functions, so ``import footprint`` stays light)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from footprint.ranking import build
from footprint.record import DEVICE_KINDS, RunRecord
from footprint.store import Store

if TYPE_CHECKING:
    import pandas


def leaderboard(
    task: str | None = None,
    *,
    quality: str,
    per: str,
    phase: str | None = None,
    store: str | os.PathLike | None = None,
    records: Iterable[RunRecord | dict] | None = None,
    higher_is_better: bool | None = None,
    statuses: Sequence[str] = ("completed",),
    sort_by: str | Sequence[str] | None = None,
    ascending: bool | Sequence[bool] = True,
) -> pandas.DataFrame:
    """Rank the runs of a store (or ``records``) by energy per unit of work and quality.

    ``footprint.leaderboard(task="digits", quality="accuracy", per="queries")`` returns a pandas
    DataFrame with one row per (task, model, variant) and the columns of :data:`COLUMNS`
    (docs/leaderboard.md says how each is computed); ``df.attrs["notes"]`` lists what a reader
    should know (runs left out, empty columns and why). Other arguments as in
    :func:`footprint.ranking.build`;
    ``store`` defaults to ``$FOOTPRINT_DIR`` or ``./footprint-runs``.
    """
    import pandas as pd

    if records is None:
        records = Store(store).records()
    board = build(
        records,
        quality=quality,
        per=per,
        task=task,
        phase=phase,
        higher_is_better=higher_is_better,
        statuses=statuses,
        sort_by=sort_by,
        ascending=ascending,
    )
    df = pd.DataFrame(board.rows, columns=list(board.columns))
    df.attrs["notes"] = list(board.notes)
    df.attrs["quality"] = board.quality
    df.attrs["per"] = board.per
    df.attrs["higher_is_better"] = board.higher_is_better
    return df


def load_runs(store: str | os.PathLike | None = None) -> pandas.DataFrame:
    """All runs of a store as a pandas DataFrame, one row per run, newest first.

    Columns hold the record's scalar fields plus ``energy_j_<kind>`` per device kind and
    ``measured`` (True when every device was measured); the typed :class:`RunRecord` is in
    ``record``.
    """
    import pandas as pd

    rows = []
    for r in Store(store).records():
        row = {k: v for k, v in r.to_dict().items() if not isinstance(v, (dict, list))}
        for kind in DEVICE_KINDS:
            row[f"energy_j_{kind}"] = r.device_energy_j(kind)
        row["measured"] = r.measured
        row.update({f"count_{k}": v for k, v in r.counts.items()})
        row.update({f"metric_{k}": v for k, v in r.metrics.items()})
        row["record"] = r
        rows.append(row)
    df = pd.DataFrame(rows)
    if not df.empty:
        df["started_at"] = pd.to_datetime(df["started_at"], utc=True, format="ISO8601")
    return df
