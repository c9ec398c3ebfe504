"""Time-varying grid intensity from a CSV, integrated against a run's power timeline.

Two formats, told apart by the header:

- plain: ``timestamp,g_per_kwh``; ISO 8601 timestamps with a time zone (``Z`` or ``+01:00``).
- the Electricity Maps data-portal export as downloaded (hourly, daily, monthly...):
  ``Datetime (UTC)``, ``Country``, ``Zone Name``/``Zone name``, ``Zone Id``/``Zone id`` and
  intensity columns named ``Carbon Intensity gCO₂eq/kWh (direct)`` and ``... (LCA)`` /
  ``(Life cycle)`` / ``(life cycle assessment)`` depending on the export; headers are matched
  case-insensitively. Naive timestamps in the ``(UTC)`` column are UTC.

Each row holds from its timestamp to the next row's. The file's step is its most common interval
(a row off that grid, such as 01:05 in an hourly file, is warned about);
an interval longer than 1.5 steps is a gap, where the row before it holds for one step only. The
last row holds for one step (one hour for a one-row file). Any part of a run that falls in a gap
or outside the file is an error (:class:`CoverageError`); footprint never extrapolates.
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import math
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from footprint.errors import RegionError
from footprint.units import J_PER_KWH

BASES = ("life-cycle", "direct")
GAP_FACTOR = 1.5
DEFAULT_STEP_S = 3600.0

# Suffixes of Electricity Maps intensity columns, per basis (normalised: lowercase, single spaces).
_SUFFIXES = {
    "direct": {"direct"},
    "life-cycle": {"lca", "life cycle", "life-cycle", "lifecycle", "life cycle assessment"},
}
_INTENSITY_RE = re.compile(r"^carbon intensity .*\((?P<suffix>[^()]*)\)$")


class IntensityFileError(RegionError):
    """An intensity CSV is malformed; the message names the file, line and problem."""


class CoverageError(RegionError):
    """A run falls (partly) outside an intensity file's span or in one of its gaps."""


@dataclass(frozen=True)
class HourlyIntensity:
    """A parsed intensity file: row start times (Unix s, UTC) and g/kWh values, sorted."""

    path: str
    format: str
    basis: str
    column: str
    zone: str | None
    starts_s: tuple[float, ...]
    ends_s: tuple[float, ...]
    values: tuple[float, ...]
    step_s: float
    sha256: str

    def to_dict(self) -> dict:
        """Provenance for the record (not the rows themselves)."""
        return {
            "path": self.path,
            "format": self.format,
            "basis": self.basis,
            "column": self.column,
            "zone": self.zone,
            "rows": len(self.values),
            "step_s": self.step_s,
            "span": [_iso(self.starts_s[0]), _iso(self.ends_s[-1])],
            "sha256": self.sha256,
        }


def _iso(t_s: float) -> str:
    return datetime.fromtimestamp(t_s, timezone.utc).isoformat()


def _norm(header: str) -> str:
    text = header.replace("\ufeff", "").replace("₂", "2").strip().lower()
    return " ".join(text.split())


def parse_timestamp(text: str, *, naive_is_utc: bool = False) -> float:
    """Unix seconds from ISO 8601; naive timestamps are an error unless ``naive_is_utc``."""
    text = text.strip()
    if text.endswith(("Z", "z")):  # fromisoformat accepts "Z" only from Python 3.11
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        if not naive_is_utc:
            raise ValueError("it has no time zone (add 'Z' or '+00:00')")
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def read_intensity_csv(path: str | os.PathLike, basis: str = "life-cycle") -> HourlyIntensity:
    """Parse an intensity CSV (plain or Electricity Maps export), choosing ``basis`` columns.

    Raises IntensityFileError naming the file, line and problem for a bad header, an unparsable
    timestamp, a non-numeric, zero, negative or non-finite value, unsorted or duplicate
    timestamps, or several zones in one file.
    """
    if basis not in BASES:
        raise RegionError(f"basis must be one of {', '.join(BASES)}, not {basis!r}")
    name = os.fspath(path)
    try:
        raw = Path(name).read_bytes()
    except OSError as e:
        raise IntensityFileError(f"cannot read intensity file {name}: {e.strerror}") from e
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise IntensityFileError(f"{name}: not UTF-8 text ({e.reason} at byte {e.start})") from e

    def fail(line: int, problem: str) -> IntensityFileError:
        return IntensityFileError(f"{name}, line {line}: {problem}")

    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if not header:
        raise fail(
            1, "empty file; expected a header 'timestamp,g_per_kwh' or an Electricity Maps export"
        )
    cols = [_norm(h) for h in header]
    if "datetime (utc)" in cols:
        fmt, t_col, naive_utc = "electricitymaps", cols.index("datetime (utc)"), True
        candidates = []
        for i, c in enumerate(cols):
            m = _INTENSITY_RE.match(c)
            if m and m.group("suffix").strip() in _SUFFIXES[basis]:
                candidates.append(i)
        if len(candidates) != 1:
            found = [header[i] for i, c in enumerate(cols) if c.startswith("carbon intensity")]
            raise fail(
                1,
                f"expected one {basis} carbon-intensity column (e.g. 'Carbon Intensity gCO₂eq/kWh "
                f"({'LCA' if basis == 'life-cycle' else 'direct'})'), found {found or 'none'}",
            )
        v_col = candidates[0]
        z_col = cols.index("zone id") if "zone id" in cols else None
    elif "timestamp" in cols and "g_per_kwh" in cols:
        fmt, t_col, naive_utc = "plain", cols.index("timestamp"), False
        v_col, z_col = cols.index("g_per_kwh"), None
    else:
        raise fail(
            1,
            f"unrecognised header {header!r}: expected 'timestamp,g_per_kwh' or an Electricity "
            "Maps export with a 'Datetime (UTC)' column",
        )

    starts: list[float] = []
    values: list[float] = []
    lines: list[int] = []
    zone = None
    last_line = 1
    for line, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) <= max(t_col, v_col):
            raise fail(line, f"expected {len(header)} columns, found {len(row)}")
        try:
            t = parse_timestamp(row[t_col], naive_is_utc=naive_utc)
        except ValueError as e:
            raise fail(line, f"cannot parse timestamp {row[t_col]!r}: {e}") from None
        try:
            value = float(row[v_col])
        except ValueError:
            raise fail(line, f"intensity {row[v_col]!r} is not a number") from None
        if not math.isfinite(value) or value <= 0.0:
            raise fail(line, f"intensity must be a finite number > 0 g/kWh, not {row[v_col]!r}")
        if starts and t <= starts[-1]:
            problem = "duplicate" if t == starts[-1] else "out of order (earlier than line above)"
            raise fail(line, f"timestamp {row[t_col].strip()} is {problem}; sort the file by time")
        if z_col is not None and z_col < len(row) and row[z_col].strip():
            if zone is None:
                zone = row[z_col].strip()
            elif row[z_col].strip() != zone:
                raise fail(
                    line, f"zone {row[z_col].strip()!r} differs from {zone!r}: one zone per file"
                )
        starts.append(t)
        values.append(value)
        lines.append(line)
        last_line = line
    if not starts:
        raise fail(last_line + 1, "no data rows after the header")

    steps = [b - a for a, b in zip(starts, starts[1:])]
    step = _usual_step(steps)
    # A row that comes less than half a step after the one before is off the file's grid (months
    # of 28-31 days are not).
    odd = [lines[k + 1] for k, d in enumerate(steps) if d < 0.5 * step]
    if odd:
        import warnings

        from footprint.errors import FootprintWarning

        shown = ", ".join(map(str, odd[:5])) + (f" and {len(odd) - 5} more" if len(odd) > 5 else "")
        warnings.warn(
            f"{name}: row(s) at line {shown} fall between the file's usual {step:g} s steps; "
            "each holds until the next row (check the file if that is not what you meant)",
            FootprintWarning,
            stacklevel=3,
        )
    ends = [
        starts[k + 1] if k + 1 < len(starts) and steps[k] <= GAP_FACTOR * step else starts[k] + step
        for k in range(len(starts))
    ]
    return HourlyIntensity(
        path=str(Path(name).resolve()),
        format=fmt,
        basis=basis,
        column=header[v_col].strip(),
        zone=zone,
        starts_s=tuple(starts),
        ends_s=tuple(ends),
        values=tuple(values),
        step_s=step,
        sha256=hashlib.sha256(raw).hexdigest(),
    )


def _usual_step(steps: list[float]) -> float:
    """The file's step: its most common interval (the shortest of equally common ones), so one
    stray row (01:05 in an hourly file) does not make every hour a 5-minute row and a gap."""
    if not steps:
        return DEFAULT_STEP_S
    counts: dict[float, int] = {}
    for d in steps:
        key = round(d, 3)
        counts[key] = counts.get(key, 0) + 1
    return min(counts, key=lambda d: (-counts[d], d))


def _pieces(hourly: HourlyIntensity, a: float, b: float):
    """Yield (start, end, row index) covering [a, b) split at row boundaries; CoverageError if
    a part of it is not covered."""
    starts, ends = hourly.starts_s, hourly.ends_s
    k = bisect.bisect_right(starts, a) - 1
    t = a
    while t < b:
        if k < 0 or k >= len(starts) or not starts[k] <= t < ends[k]:
            if starts[0] <= t < ends[-1]:
                where = f"a gap until {_iso(starts[bisect.bisect_right(starts, t)])}"
            else:
                where = f"the file spans {_iso(starts[0])} to {_iso(ends[-1])}"
            raise CoverageError(
                f"{hourly.path} has no intensity at {_iso(t)} ({where}); "
                "use a file that covers the whole run"
            )
        end = min(b, ends[k])
        yield t, end, k
        t = end
        if t >= ends[k]:
            k += 1


def integrate(
    hourly: HourlyIntensity,
    started_at: str,
    duration_s: float,
    timeline: dict | None,
) -> dict:
    """Integrate a run against ``hourly``.

    ``timeline`` = {"t_s": n+1 bucket boundaries (s since ``started_at``), "power_w": {device:
    n mean powers}}. Each bucket's power is constant, so a bucket straddling a row boundary is
    split there and a step change of intensity is integrated exactly. Returns IT-energy-weighted
    ``g_per_kwh`` (what the emissions use), ``time_weighted_g_per_kwh`` over the run,
    ``plain_mean_g_per_kwh`` of the rows in force, ``timeline_energy_kwh`` and ``rows_used``.
    Raises CoverageError if the run is not fully covered by the file.
    """
    try:
        t0 = parse_timestamp(started_at)
    except ValueError as e:
        raise RegionError(
            f"record started_at {started_at!r} is not ISO 8601 with a zone: {e}"
        ) from None
    end = t0 + float(duration_s)

    used: set[int] = set()
    time_weighted = 0.0
    if duration_s > 0:
        for a, b, k in _pieces(hourly, t0, end):
            time_weighted += hourly.values[k] * (b - a)
            used.add(k)
        time_weighted /= duration_s
    else:
        k = next(_pieces(hourly, t0, t0 + 1e-9))[2]
        time_weighted = hourly.values[k]
        used.add(k)

    energy_j = 0.0
    weighted = 0.0  # sum of J x g/kWh
    if timeline and timeline.get("t_s") and timeline.get("power_w"):
        t_s = timeline["t_s"]
        series = list(timeline["power_w"].values())
        for i in range(len(t_s) - 1):
            power_w = sum(s[i] for s in series)
            if power_w == 0.0 or t_s[i + 1] <= t_s[i]:
                continue
            for a, b, k in _pieces(hourly, t0 + t_s[i], t0 + t_s[i + 1]):
                piece_j = power_w * (b - a)
                energy_j += piece_j
                weighted += piece_j * hourly.values[k]
                used.add(k)

    used_values = [hourly.values[k] for k in sorted(used)]
    return {
        "g_per_kwh": weighted / energy_j if energy_j > 0 else time_weighted,
        "weighting": "energy" if energy_j > 0 else "time",
        "time_weighted_g_per_kwh": time_weighted,
        "plain_mean_g_per_kwh": sum(used_values) / len(used_values),
        "timeline_energy_kwh": energy_j / J_PER_KWH,
        "rows_used": len(used_values),
    }
