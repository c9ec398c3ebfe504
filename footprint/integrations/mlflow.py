"""MLflow both ways (docs/integrations.md): a run's figures logged to an MLflow run, and runs
logged that way read back as records for leaderboards and reports.

import mlflow, footprint
from footprint.integrations.mlflow import log_run, load_records
with mlflow.start_run():
    with footprint.track("bert-int8", region="FR", task="sst2", variant="int8") as run:
        ...
    log_run(run)
board = footprint.leaderboard(records=load_records("sqlite:///mlruns.db", experiment="sst2"),
                              quality="accuracy", per="queries")

Only a call here talks to MLflow; the tracker never imports it. The record travels whole, as the
JSON artifact ``footprint/record.json``: reading it back gives the very record (to the bit).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections.abc import Iterable
from typing import Any

try:
    import mlflow
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient
except ModuleNotFoundError as exc:  # pragma: no cover - the extra is missing
    if exc.name and exc.name.split(".")[0] == "mlflow":
        raise ModuleNotFoundError(
            "footprint.integrations.mlflow needs MLflow: pip install 'footprint[mlflow]'",
            name="mlflow",
        ) from exc
    raise

from footprint.errors import UsageError
from footprint.record import RunRecord

#: where the record is kept in an MLflow run's artifacts
ARTIFACT = "footprint/record.json"
#: the tag naming the footprint record an MLflow run holds (what load_records looks for)
RECORD_TAG = "footprint.record_id"

#: MLflow's own rule for metric, param and tag keys (mlflow/utils/validation.py)
_INVALID_KEY = re.compile(r"[^/\w.\- :]")
_MAX_KEY = 250
_MAX_PARAM = 6000
_STATUS = {"completed": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}


def mlflow_key(name: str) -> str:
    """``name`` as a valid MLflow key: characters MLflow refuses become ``_`` (a user's unit or
    device id may hold any), and the key is cut to MLflow's length limit."""
    key = _INVALID_KEY.sub("_", name)
    return key[:_MAX_KEY] or "_"


def _record(run: Any) -> RunRecord:
    """The record to log: a job's on its global rank 0 (the whole job), else the run's own."""
    if isinstance(run, RunRecord):
        return run
    job = getattr(run, "job_record", None)
    if job is not None:
        return job
    record = getattr(run, "record", None)
    if not isinstance(record, RunRecord):
        raise UsageError(
            f"log_run takes a footprint run or RunRecord, got {type(run).__name__}: pass the "
            "run that footprint.track(...) gave you"
        )
    if record.status == "running":
        raise UsageError(
            "log_run: the run is still going: call log_run(run) after its `with` block ends"
        )
    return record


def metrics_of(record: RunRecord) -> dict[str, float]:
    """What log_run logs as MLflow metrics: energy, emissions, duration, each device's energy
    (the run's own share, and the whole device's where that is more) and energy per unit."""
    out: dict[str, float] = {
        "footprint.energy_j": record.energy_j,
        "footprint.energy_kwh": record.energy_kwh,
        "footprint.duration_s": record.duration_s,
    }
    if record.emissions_kg is not None:
        out["footprint.emissions_kg"] = record.emissions_kg
    if record.embodied_emissions_kg is not None:
        out["footprint.embodied_emissions_kg"] = record.embodied_emissions_kg
    for d in record.devices:
        out[mlflow_key(f"footprint.device.{d.id}.energy_j")] = d.energy_j
        if d.machine_energy_j is not None:
            out[mlflow_key(f"footprint.device.{d.id}.machine_energy_j")] = d.machine_energy_j
    for unit, n in record.counts.items():
        out[mlflow_key(f"footprint.count.{unit}")] = float(n)
        if n > 0:  # the whole run's energy over its units (leaderboards charge phases apart)
            out[mlflow_key(f"footprint.energy_j_per.{unit}")] = record.energy_j / n
    return out


def params_of(record: RunRecord) -> dict[str, str]:
    """What log_run logs as MLflow params (what the run was)."""
    values = {
        "footprint.name": record.name,
        "footprint.task": record.task,
        "footprint.model": record.model,
        "footprint.variant": record.variant,
        "footprint.region": record.region,
        "footprint.carbon_intensity_g_per_kwh": record.carbon_intensity_g_per_kwh,
        "footprint.pue": record.pue,
    }
    return {k: str(v)[:_MAX_PARAM] for k, v in values.items() if v is not None}


def tags_of(record: RunRecord) -> dict[str, str]:
    """What log_run logs as MLflow tags (how the figures were found)."""
    from footprint import __version__

    measured = [d.measured for d in record.devices]
    tags = {
        RECORD_TAG: record.id,
        "footprint.status": record.status,
        "footprint.measured": "all" if measured and all(measured) else
        "some" if any(measured) else "none",
        "footprint.methods": ",".join(sorted({f"{d.kind}:{d.method}" for d in record.devices})),
        "footprint.version": __version__,
        "footprint.contended": str(record.contended).lower(),
    }  # fmt: skip
    if record.job is not None:
        tags["footprint.job_id"] = record.job.id
    return tags


def _experiment_id(client: MlflowClient, experiment: str | None) -> str:
    name = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME")
    if name:
        found = client.get_experiment_by_name(name)
        return str(found.experiment_id if found else client.create_experiment(name))
    return os.environ.get("MLFLOW_EXPERIMENT_ID") or "0"  # MLflow's Default experiment


def log_run(
    run: Any,
    *,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    run_id: str | None = None,
) -> str:
    """Log a finished footprint run to MLflow and return the MLflow run's id.

    Where: the MLflow run ``run_id``; else the active MLflow run (``mlflow.start_run()``) — or,
    when that already holds another footprint record, a run nested under it; else a new run in
    ``experiment`` (default: ``$MLFLOW_EXPERIMENT_NAME``, else MLflow's Default), named after
    the footprint run and ended with its status. ``tracking_uri``: default MLflow's own.

    Logged: metrics (:func:`metrics_of`), params (:func:`params_of`), tags (:func:`tags_of`)
    and the record as the JSON artifact ``footprint/record.json``.
    """
    record = _record(run)
    uri = tracking_uri or mlflow.get_tracking_uri()
    client = MlflowClient(tracking_uri=uri)
    created = False
    target = run_id
    if target is None:
        active = mlflow.active_run() if tracking_uri is None else None
        if active is not None:
            target = active.info.run_id
            held = client.get_run(target).data.tags.get(RECORD_TAG)
            if held is not None and held != record.id:  # one record per MLflow run
                parent = target
                target = client.create_run(
                    active.info.experiment_id,
                    run_name=record.name,
                    tags={"mlflow.parentRunId": parent},
                ).info.run_id
                created = True
        else:
            target = client.create_run(
                _experiment_id(client, experiment), run_name=record.name
            ).info.run_id
            created = True
    ended = record.ended_at or record.started_at
    from datetime import datetime

    stamp_ms = int(datetime.fromisoformat(ended).timestamp() * 1000)
    client.log_batch(
        target,
        metrics=[Metric(k, float(v), stamp_ms, 0) for k, v in metrics_of(record).items()],
        params=[Param(k, v) for k, v in params_of(record).items()],
        tags=[RunTag(k, v) for k, v in tags_of(record).items()],
    )
    client.log_text(target, record.to_json(), ARTIFACT)
    if created:
        client.set_terminated(target, _STATUS.get(record.status, "FINISHED"))
    return target


def log_if_active(run: Any) -> str | None:
    """:func:`log_run` into the active MLflow run when there is one, checked without importing
    MLflow (a program that uses it has imported it already); the framework callbacks call it.
    Only global rank 0 of a job logs (the whole job), a non-member run logs itself."""
    fluent = sys.modules.get("mlflow")
    if fluent is None or getattr(fluent, "active_run", lambda: None)() is None:
        return None
    record = getattr(run, "record", None)
    job = getattr(record, "job", None)
    if job is not None and job.rank not in (None, 0):
        return None
    return log_run(run)


def load_records(
    tracking_uri: str,
    experiment: str | Iterable[str] | None = None,
    *,
    max_runs: int = 100_000,
) -> list[RunRecord]:
    """The footprint records kept in MLflow by :func:`log_run`: every run of ``experiment``
    (a name, or several; default every experiment) that holds one, newest first. Each comes back
    exactly as it was logged; one MLflow run with the record twice (nested) gives it once."""
    client = MlflowClient(tracking_uri=tracking_uri)
    if experiment is None:
        ids = [e.experiment_id for e in client.search_experiments()]
    else:
        names = [experiment] if isinstance(experiment, str) else list(experiment)
        ids = []
        for name in names:
            found = client.get_experiment_by_name(name)
            if found is None:
                known = ", ".join(sorted(e.name for e in client.search_experiments())) or "none"
                raise UsageError(
                    f"no MLflow experiment {name!r} at {tracking_uri} (experiments: {known})"
                )
            ids.append(found.experiment_id)
    records: dict[str, RunRecord] = {}
    quiet = os.environ.get(_BAR)
    os.environ[_BAR] = "false"  # MLflow's download progress bar, one per record
    try:
        _read(client, ids, records, max_runs)
    finally:
        if quiet is None:
            os.environ.pop(_BAR, None)
        else:
            os.environ[_BAR] = quiet
    return sorted(records.values(), key=lambda r: r.started_at, reverse=True)


_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


def _read(
    client: MlflowClient, ids: list[str], records: dict[str, RunRecord], max_runs: int
) -> None:
    token = None
    seen = 0
    with tempfile.TemporaryDirectory(prefix="footprint-mlflow-") as tmp:
        while seen < max_runs:
            page = client.search_runs(
                ids,
                filter_string=f"tags.`{RECORD_TAG}` != ''",
                max_results=min(1000, max_runs - seen),
                order_by=["attributes.start_time DESC"],
                page_token=token,
            )
            for mlrun in page:
                seen += 1
                rid = mlrun.data.tags.get(RECORD_TAG)
                if not rid or rid in records:
                    continue
                path = client.download_artifacts(mlrun.info.run_id, ARTIFACT, tmp)
                with open(path, encoding="utf-8") as f:
                    records[rid] = RunRecord.from_dict(json.load(f))
                os.remove(path)
            token = page.token
            if not token:
                break
