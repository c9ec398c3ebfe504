"""Import CodeCarbon's ``emissions.csv`` as footprint runs.

One run per CodeCarbon ``run_id``: ``flush()`` appends cumulative rows for a run still going, so
only the row with the longest ``duration`` of each run_id is kept. Figures are CodeCarbon's:

- CodeCarbon multiplies energy by its PUE before reporting it; footprint's ``energy_kwh`` is IT
  energy *before* PUE, so ``energy_kwh = energy_consumed / pue`` (and the same for each device),
  ``pue`` is kept, and ``emissions_kg = emissions`` as reported. The intensity is what those
  imply: ``carbon_intensity_g_per_kwh = emissions / energy_consumed * 1000``.
- ``timestamp`` is when the row was written (the run's end), in the writing machine's local time
  without a zone; ``duration`` is seconds. The end is read in ``tz`` (an IANA zone such as
  ``"Europe/Paris"``; default: this machine's local zone, right when importing on the machine
  that ran CodeCarbon), and ``started_at = end - duration``, both stored in UTC. A timestamp that
  carries an offset is used as is.
- The run's region is CodeCarbon's cloud region (``cloud_provider:cloud_region``) if footprint
  knows it, else its ``country_iso_code`` (alpha-3, e.g. ``FRA``), stored as footprint's
  canonical id (``FR``). ``carbon`` records the provenance: CodeCarbon's PUE (``pue_source``
  "CodeCarbon pue column") and the intensity CodeCarbon implied, labelled as CodeCarbon's (kind
  ``imported``), so ``footprint whatif`` and ``footprint recompute`` keep the PUE.
- CodeCarbon does not say per device whether energy was measured (RAPL, NVML) or estimated (TDP,
  RAM W/GB), so devices are marked ``measured: False`` with method ``imported:codecarbon``.

The record id is derived from the run_id (UUID 5), so importing the same file twice updates the
same records instead of duplicating them. Nothing here imports codecarbon itself.
"""

from __future__ import annotations

import csv
import math
import os
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from footprint.importers import ImportFormatError
from footprint.record import RecordError, RunRecord, check_number, new_record
from footprint.units import J_PER_KWH

METHOD = "imported:codecarbon"
REQUIRED_COLUMNS = ("timestamp", "duration", "emissions", "energy_consumed")
_NAMESPACE = uuid.UUID("6b1f0c52-3f5e-4c1e-9a57-0c0dcb0e8e7a")  # footprint's, for UUID 5 ids
_DEVICES = (("cpu", "cpu", "cpu_energy", "cpu_model"), ("gpu", "gpu", "gpu_energy", "gpu_model"))


def _zone(tz: str | None) -> Any:
    if tz is None:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ImportFormatError(
            f"unknown time zone {tz!r}: give an IANA zone such as 'Europe/Paris' or 'UTC'"
        ) from exc


def _number(row: dict, column: str, where: str, default: float | None = None) -> float:
    raw = (row.get(column) or "").strip()
    if not raw:
        if default is not None:
            return default
        raise ImportFormatError(f"{where}: column {column!r} is empty; it needs a number")
    try:
        value = float(raw)
    except ValueError:
        raise ImportFormatError(f"{where}: column {column!r} is {raw!r}, not a number") from None
    if not math.isfinite(value) or value < 0:
        raise ImportFormatError(f"{where}: column {column!r} is {raw!r}; it must be >= 0")
    return value


def _local_zone() -> Any:
    """This machine's zone as a ZoneInfo (so DST folds and gaps can be seen), else None."""
    from zoneinfo import ZoneInfo

    try:
        with open("/etc/localtime", "rb") as f:
            return ZoneInfo.from_file(f)
    except (OSError, ValueError):
        return None


def _end_utc(raw: str, zone: Any, where: str) -> tuple[datetime, str | None]:
    """The timestamp in UTC, and a note when a local time was ambiguous or did not exist."""
    try:
        ts = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ImportFormatError(
            f"{where}: timestamp {raw!r} is not ISO 8601 (CodeCarbon writes 2026-01-31T14:05:09)"
        ) from None
    note = None
    if ts.tzinfo is None:
        # Naive: CodeCarbon's local wall-clock time, in ``zone`` (default: this machine's).
        tz = zone if zone is not None else _local_zone()
        if tz is None:
            return ts.astimezone().astimezone(timezone.utc), None
        first, second = ts.replace(tzinfo=tz, fold=0), ts.replace(tzinfo=tz, fold=1)
        if first.utcoffset() != second.utcoffset():
            back = first.astimezone(timezone.utc).astimezone(tz).replace(tzinfo=None)
            if back == ts:
                note = (
                    f"timestamp {raw.strip()} is ambiguous in {tz} (the hour repeated when the "
                    "clocks went back): read as its first occurrence; the run may have ended an "
                    "hour later"
                )
            else:
                note = (
                    f"timestamp {raw.strip()} does not exist in {tz} (the clocks went forward "
                    f"then): read with the offset before the change ({first.utcoffset()})"
                )
        ts = first
    return ts.astimezone(timezone.utc), note


def _record(
    row: dict,
    where: str,
    source: Path,
    line: int,
    zone: Any,
    tz_label: str,
    extra: dict[str, Any],
) -> dict:
    duration_s = _number(row, "duration", where)
    pue_raw = (row.get("pue") or "").strip()
    pue = _number(row, "pue", where, default=1.0)
    if pue < 1:
        raise ImportFormatError(
            f"{where}: column 'pue' is {pue_raw!r}; a PUE is facility energy / IT energy, at "
            "least 1 (1.0 when unknown): fix the file"
        )
    total_kwh = _number(row, "energy_consumed", where)
    emissions_kg = _number(row, "emissions", where)
    end, time_note = _end_utc(row["timestamp"], zone, where)
    try:
        start = end - timedelta(seconds=duration_s)
    except OverflowError:
        raise ImportFormatError(
            f"{where}: column 'duration' is {row['duration'].strip()!r} seconds, which does not "
            "fit in a calendar (it must be a run's length in seconds)"
        ) from None
    run_id = (row.get("run_id") or "").strip()
    key = run_id or f"{source.name}|{row['timestamp']}|{duration_s}|{total_kwh}"
    devices = []
    device_kwhs: list[float] = []
    for dev_id, kind, column, name_col in (*_DEVICES, ("ram", "ram", "ram_energy", None)):
        kwh = _number(row, column, where, default=0.0)
        device_kwhs.append(kwh)
        if kwh == 0 and kind == "gpu":
            continue  # CodeCarbon writes 0 for a machine without GPUs
        devices.append(
            {
                "id": dev_id,
                "kind": kind,
                "name": (row.get(name_col) or kind) if name_col else "RAM",
                "method": METHOD,
                "measured": False,
                "details": {"codecarbon_power_w": _number(row, f"{kind}_power", where, 0.0)},
                "energy_j": kwh / pue * J_PER_KWH,
                "uncertain": False,
            }
        )
    version = (row.get("codecarbon_version") or "").strip() or None
    region, region_note = _region(row)
    g_per_kwh = (emissions_kg / total_kwh * 1000) if total_kwh > 0 else None
    checks = []
    if not pue_raw:
        checks.append("CodeCarbon wrote no PUE: 1.0 assumed")
    device_kwh = math.fsum(device_kwhs)
    if devices and abs(device_kwh - total_kwh) > max(1e-9, 0.01 * total_kwh):
        checks.append(
            f"CodeCarbon's energy_consumed ({total_kwh:.6g} kWh) differs from the sum of its "
            f"cpu, gpu and ram energies ({device_kwh:.6g} kWh) by more than 1 %: "
            "energy_kwh follows energy_consumed"
        )
    if total_kwh == 0 and emissions_kg > 0:
        checks.append(
            f"CodeCarbon reported emissions ({emissions_kg:.6g} kg) for no energy: the "
            "emissions are kept as reported, the intensity is unknown"
        )
    carbon = _carbon(region, pue, g_per_kwh, version)
    carbon["it_energy_kwh"] = total_kwh / pue
    carbon["facility_energy_kwh"] = total_kwh
    notes = [
        f"imported from CodeCarbon {version or '(version unknown)'} ({source.name}, line {line}): "
        "energy and emissions as CodeCarbon reported them; energy_kwh is its energy_consumed "
        f"divided by its PUE ({pue:g})",
        f"started_at rebuilt as CodeCarbon's timestamp ({row['timestamp'].strip()}, read as "
        f"{tz_label}) minus its duration ({duration_s:g} s)",
        "CodeCarbon does not record per device whether energy was measured or estimated: "
        "devices are marked not measured",
    ]
    if region_note:
        notes.append(region_note)
    if time_note:
        notes.append(time_note)
    notes.extend(checks)
    keep = (
        "run_id",
        "experiment_id",
        "project_name",
        "timestamp",
        "country_name",
        "country_iso_code",
        "region",
        "cloud_provider",
        "cloud_region",
        "on_cloud",
        "tracking_mode",
        "energy_consumed",
        "emissions",
        "pue",
    )
    record = {
        "id": uuid.uuid5(_NAMESPACE, f"codecarbon:{key}").hex,
        "name": (row.get("project_name") or "").strip() or "codecarbon",
        "status": "completed",
        "started_at": start.isoformat(),
        "ended_at": end.isoformat(),
        "duration_s": duration_s,
        "energy_kwh": total_kwh / pue,
        "emissions_kg": emissions_kg,
        "region": region,
        "pue": pue,
        "carbon_intensity_g_per_kwh": g_per_kwh,
        "carbon": carbon,
        "devices": devices,
        "host": {
            "os": (row.get("os") or "").strip() or None,
            "python_version": (row.get("python_version") or "").strip() or None,
            "cpu_model": (row.get("cpu_model") or "").strip() or None,
            "cpu_count_logical": _int_or_none(row.get("cpu_count")),
            "gpu_model": (row.get("gpu_model") or "").strip() or None,
            "gpu_count": _int_or_none(row.get("gpu_count")),
        },
        "tags": {
            k: v
            for k, v in (
                ("codecarbon_run_id", run_id),
                ("codecarbon_experiment_id", (row.get("experiment_id") or "").strip()),
            )
            if v
        },
        "notes": notes,
        "imported_from": {
            "tool": "codecarbon",
            "version": version,
            "file": str(source),
            "line": line,
            "timezone": tz_label,
            "row": {k: row[k] for k in keep if row.get(k) not in (None, "")},
        },
    }
    record.update(extra)
    return record


def _region(row: dict) -> tuple[str | None, str | None]:
    """(footprint's canonical region id, a note when CodeCarbon's location is not all known).

    CodeCarbon's cloud region first; else its sub-region (``region``: "california", "quebec")
    within its country (``country_iso_code``), when footprint's tables have it (US-CA, CA-QC);
    else the country."""
    from footprint.carbon import canonical_region
    from footprint.errors import RegionError

    def known(name: str) -> str | None:
        try:
            return canonical_region(name)
        except RegionError:
            return None

    provider = (row.get("cloud_provider") or "").strip().lower()
    cloud = (row.get("cloud_region") or "").strip().lower()
    country = (row.get("country_iso_code") or "").strip()
    sub = (row.get("region") or "").strip()
    if provider and cloud:
        hit = known(f"{provider}:{cloud}")
        if hit is not None:
            return hit, None
    country_id = known(country) if country else None
    if country_id is not None and sub:
        # a sub-region by name, but only inside the run's country ("georgia" is also a country)
        for name in (sub, f"{country_id}-{sub}"):
            hit = known(name)
            if hit is not None and hit.startswith(f"{country_id}-"):
                return hit, None
        return country_id, (
            f"CodeCarbon's sub-region {sub!r} is not in footprint's tables: the country's "
            f"intensity ({country_id}) is the reference"
        )
    if country_id is not None:
        return country_id, None
    tried = ([f"{provider}:{cloud}"] if provider and cloud else []) + ([country] if country else [])
    if not tried:
        return None, "CodeCarbon recorded no country or cloud region: the run's region is unknown"
    return None, f"CodeCarbon's location ({', '.join(tried)}) is not a region footprint knows"


def _carbon(region: str | None, pue: float, g_per_kwh: float | None, version: str | None) -> dict:
    """A minimal ``carbon`` provenance dict: what CodeCarbon applied, labelled as CodeCarbon's."""
    from footprint.carbon.regions import load_index

    return {
        "region": region,
        "carbon_intensity_g_per_kwh": g_per_kwh,
        "kind": "imported",
        "name": load_index()["regions"][region]["name"] if region else None,
        "source": f"CodeCarbon {version or '(version unknown)'}: emissions / energy_consumed",
        "source_url": None,
        "year": None,
        "basis": "unknown",  # CodeCarbon's figure; its source and basis are not in the file
        "gas": "CO2e",
        "grid_region": None,
        "pue": pue,
        "pue_source": "CodeCarbon pue column",
        "hourly": None,
        "embodied": None,
    }


def _int_or_none(raw: str | None) -> int | None:
    try:
        return int(float(raw)) if raw not in (None, "") else None
    except ValueError:
        return None


def read_codecarbon_csv(
    path: str | os.PathLike,
    *,
    tz: str | None = None,
    task: str | None = None,
    model: str | None = None,
    variant: str | None = None,
    baseline: bool = False,
    counts: dict[str, float] | None = None,
    metrics: dict[str, float] | None = None,
    higher_is_better: dict[str, bool] | None = None,
) -> list[RunRecord]:
    """The runs in a CodeCarbon ``emissions.csv`` as footprint records (not saved).

    ``tz`` is the zone CodeCarbon's naive timestamps are in (default: this machine's).
    ``task``, ``model``, ``variant``, ``baseline``, ``counts`` (work units, e.g.
    ``{"queries": 10000}``), ``metrics`` (e.g. ``{"accuracy": 0.91}``) and ``higher_is_better``
    are given to every imported run, since CodeCarbon records none of them; counts are whole-run
    counts. Raises :class:`~footprint.importers.ImportFormatError` naming the file, line and
    column at fault.
    """
    source = Path(path)
    zone = _zone(tz)
    tz_label = tz or f"this machine's local time ({datetime.now().astimezone().tzname()})"
    extra: dict[str, Any] = {"task": task, "model": model, "variant": variant}
    extra["baseline"] = bool(baseline)
    for arg, values in (("counts", counts), ("metrics", metrics)):
        for k, v in (values or {}).items():
            check_number(f"{arg}[{k!r}]", v)
        extra[arg] = {k: float(v) for k, v in (values or {}).items()}
    extra["metric_directions"] = dict(higher_is_better or {})
    try:
        with open(source, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            columns = reader.fieldnames or []
            missing = [c for c in REQUIRED_COLUMNS if c not in columns]
            if missing:
                raise ImportFormatError(
                    f"{source} is not a CodeCarbon emissions file: it lacks column(s) "
                    f"{', '.join(missing)} (CodeCarbon writes emissions.csv with save_to_file=True)"
                )
            rows = [(reader.line_num, row) for row in reader]
    except OSError as exc:
        raise ImportFormatError(f"cannot read {source}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ImportFormatError(f"{source} is not a readable CSV file: {exc}") from exc
    if not rows:
        raise ImportFormatError(f"{source} has a header but no runs")

    # flush() appends cumulative rows for one run_id: keep each run's longest.
    latest: dict[str, tuple[float, int, dict]] = {}
    for line, row in rows:
        where = f"{source}, line {line}"
        key = (row.get("run_id") or "").strip() or f"line {line}"
        duration_s = _number(row, "duration", where)
        if key not in latest or duration_s >= latest[key][0]:
            latest[key] = (duration_s, line, row)
    kept = sorted(latest.values(), key=lambda item: item[1])
    skipped = len(rows) - len(kept)
    records = []
    for _, line, row in kept:
        where = f"{source}, line {line}"
        data = _record(row, where, source, line, zone, tz_label, extra)
        if skipped:
            data["notes"].append(
                f"{skipped} earlier cumulative row(s) of the same CodeCarbon run(s) in "
                f"{source.name} (written by flush()) were not imported as separate runs"
            )
        try:
            records.append(new_record(**data))
        except RecordError as exc:
            raise ImportFormatError(f"{where}: {exc}") from exc
    return records


def import_codecarbon(
    path: str | os.PathLike,
    *,
    store: str | os.PathLike | None = None,
    **options: Any,
) -> list[RunRecord]:
    """Read a CodeCarbon ``emissions.csv`` and save its runs in ``store``; return the records.

    ``options`` are those of :func:`read_codecarbon_csv`. Importing a file again updates the
    same runs (ids come from CodeCarbon's run_id) and keeps what the earlier import was told
    (task, model, variant, baseline, counts, metrics, directions) unless told again.
    """
    from footprint.errors import StoreError
    from footprint.store import Store

    records = read_codecarbon_csv(path, **options)
    st = Store(store)
    st.ensure_writable()
    saved = []
    for r in records:
        try:
            before = st.get(r.id) if st.file_for(r.id).exists() else None
        except StoreError:
            before = None
        if before is not None:
            r = _keep_given(r, before, options)
        st.save(r)
        saved.append(r)
    return saved


#: what an import is told (CodeCarbon records none of it), by option name -> record field
_GIVEN = {
    "task": "task",
    "model": "model",
    "variant": "variant",
    "baseline": "baseline",
    "counts": "counts",
    "metrics": "metrics",
    "higher_is_better": "metric_directions",
}


def _keep_given(new: RunRecord, before: RunRecord, options: dict[str, Any]) -> RunRecord:
    """``new`` with what an earlier import of the same run was told, where this one was told
    nothing (None, False or empty for that option)."""
    keep = {
        field: getattr(before, field)
        for option, field in _GIVEN.items()
        if not options.get(option) and getattr(before, field)
    }
    return new.replace(**keep) if keep else new
