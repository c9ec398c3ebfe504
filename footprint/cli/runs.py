"""``footprint runs``: the saved runs, newest first."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from footprint.cli._common import (
    ExperimentOption,
    ForceOption,
    MlflowOption,
    OutOption,
    StoreOption,
    WideOption,
    fmt_duration,
    fmt_emissions,
    fmt_kwh,
    literal,
    measured_label,
    mlflow_records,
    output_to,
    print_table,
    reading_store,
)

#: what a row of ``--format json`` / ``csv`` holds (json adds the ``job`` object)
_KEYS = (
    "id", "name", "status", "started_at", "duration_s", "energy_kwh", "emissions_kg", "region",
    "task", "model", "variant",
)  # fmt: skip


def _since(value: str | None) -> Any:
    """``--since``: an ISO date or time (UTC unless it says), or an age such as 2h, 3d, 1w."""
    if value is None:
        return None
    from datetime import datetime, timedelta, timezone

    from footprint.errors import UsageError

    text = value.strip()
    units = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
    if text[:-1].replace(".", "", 1).isdigit() and text[-1:] in units:
        return datetime.now(timezone.utc) - timedelta(seconds=float(text[:-1]) * units[text[-1]])
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--since must be a date or time (2026-11-30, 2026-11-30T14:00) or an age (90m, "
            f"2h, 3d, 1w), got {value!r}"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def register(app: typer.Typer) -> None:
    @app.command("runs", help="List the saved runs, newest first (filters combine).")
    def runs_command(
        store: StoreOption = None,
        limit: Annotated[int | None, typer.Option(help="Show at most N runs.", min=1)] = None,
        format: Annotated[str, typer.Option(help="table, csv or json.")] = "table",
        parts: Annotated[
            bool, typer.Option("--parts", help="Also list each process's part of a job.")
        ] = False,
        task: Annotated[str | None, typer.Option(help="Only runs of this task.")] = None,
        model: Annotated[str | None, typer.Option(help="Only runs of this model.")] = None,
        variant: Annotated[str | None, typer.Option(help="Only runs of this variant.")] = None,
        status: Annotated[
            list[str] | None, typer.Option(help="Only runs with this status (repeatable).")
        ] = None,
        name: Annotated[
            str | None, typer.Option(help="Only runs whose name contains this text.")
        ] = None,
        since: Annotated[
            str | None,
            typer.Option(help="Only runs started since: a date/time (UTC) or an age (2h, 3d)."),
        ] = None,
        wide: WideOption = False,
        mlflow: MlflowOption = None,
        experiment: ExperimentOption = None,
        out: OutOption = None,
        force: ForceOption = False,
    ) -> int:
        with output_to(out, force):
            from footprint.errors import UsageError
            from footprint.record import STATUSES

            if format not in ("table", "csv", "json"):
                raise UsageError(f"--format must be table, csv or json, got {format!r}")
            for s in status or []:
                if s not in STATUSES:
                    raise UsageError(f"--status must be one of {', '.join(STATUSES)}, got {s!r}")
            after = _since(since)
            held = mlflow_records(mlflow, experiment, store)
            if held is not None:
                where, records = f"MLflow at {mlflow}", list(held)
            else:
                st = reading_store(store)
                where, records = str(st.path), st.records(parts=parts)

            def wanted(r: Any) -> bool:
                return (
                    (task is None or r.task == task)
                    and (model is None or r.model == model)
                    and (variant is None or r.variant == variant)
                    and (not status or r.status in status)
                    and (name is None or name in r.name)
                    and (after is None or r.started >= after)
                )

            filtered = [r for r in records if wanted(r)]
            records = filtered[:limit]
            if format == "json":
                rows = []
                for r in records:
                    row = {k: getattr(r, k) for k in _KEYS}
                    row["job"] = r.job.to_dict() if r.job is not None else None
                    rows.append(row)
                json.dump(rows, sys.stdout, indent=2)
                print()
                return 0
            if format == "csv":
                import csv

                writer = csv.writer(sys.stdout, lineterminator="\n")
                writer.writerow(_KEYS)
                for r in records:
                    writer.writerow(["" if getattr(r, k) is None else getattr(r, k) for k in _KEYS])
                return 0
            if not records:
                hint = (
                    " matching those filters"
                    if _any_filter(task, model, variant, status, name, since)
                    else ""
                )
                print(
                    literal(
                        f"no runs{hint} in {where} (run something with footprint.track or "
                        "footprint run)"
                    )
                )
                if held is None:
                    _sub_stores(st.path)
                return 0
            jobs = any(r.job for r in records)
            headers = [
                "id", "name", "task", "model", "variant", "status", "started (UTC)", "duration",
                "energy", "CO2e", "region", "how", *(("processes",) if jobs else ()),
            ]  # fmt: skip
            cells = [
                [
                    r.id[:8], r.name, r.task or "-", r.model or "-", r.variant or "-", r.status,
                    r.started_at[:16].replace("T", " "), fmt_duration(r.duration_s),
                    fmt_kwh(r.energy_kwh), fmt_emissions(r.emissions_kg), r.region or "-",
                    measured_label(r.devices), *((processes(r),) if jobs else ()),
                ]
                for r in records
            ]  # fmt: skip
            print_table(
                f"runs in {where}",
                headers,
                [[literal(c) for c in row] for row in cells],
                left={"id", "name", "task", "model", "variant", "status", "started (UTC)", "region",
                      "how", "processes"},
                drop_order=[
                    "how", "region", "duration", "variant", "model", "task", "started (UTC)",
                ],
                wide=wide,
                fold={"name", "task", "model", "variant", "region", "how"},
            )  # fmt: skip
            if held is None:
                _sub_stores(st.path)
            return 0


def _any_filter(*values: Any) -> bool:
    return any(v for v in values)


def _sub_stores(path: Any) -> None:
    """Say where the stores inside this one are (the demo writes its runs to one)."""
    from footprint.store import Store

    subs = Store(path).sub_stores()
    if subs:
        names = ", ".join(p.name for p in subs[:5]) + (", ..." if len(subs) > 5 else "")
        n = sum(len(Store(p).ids()) for p in subs[:5])
        print(
            literal(
                f"note: {len(subs)} run store{'s' if len(subs) != 1 else ''} inside this one "
                f"({names}; {n}{'+' if len(subs) > 5 else ''} runs): open one with "
                f"--store {subs[-1]}"
            )
        )


def processes(r) -> str:
    """What a job row stands for: "4 ranks, 2 nodes" (a job) or "rank 1 of job 1a2b3c4d"."""
    job = r.job
    if job is None:
        return "-"
    if job.role == "job":
        ranks = sum(1 for x in job.ranks if x.rank is not None) or len(job.ranks)
        text = f"{ranks} ranks, {len(job.nodes)} node{'s' if len(job.nodes) != 1 else ''}"
        if job.missing_ranks:
            text += f", {len(job.missing_ranks)} missing"
        return text
    who = (
        f"rank {job.rank}"
        if job.rank is not None
        else ("wrapper" if job.wrapper == r.id else "member")
    )
    return f"{who} of job {job.id[:8]}" + (" (measurer)" if job.measurer else "")
