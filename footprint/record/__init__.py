"""The run record: typed, frozen, versioned data. Everything downstream reads records.

- :mod:`~footprint.record.model`: :class:`RunRecord` and its parts, with ``from_dict`` (upgrade
  and check every field) and ``to_dict`` (the JSON the store writes);
- :mod:`~footprint.record.versions`: :data:`SCHEMA_VERSION` and :func:`upgrade`;
- :mod:`~footprint.record.builder`: :func:`new_record`, the one way records are made;
- :mod:`~footprint.record.checks`: the field checks and :class:`RecordError`;
- :mod:`~footprint.record.assemble`: a live run's readings turned into a record.

Names are loaded on first use: building the typed model's classes costs ~20 ms, which a run
pays off its user's thread (see footprint.run), not on ``import footprint``. Fields and the
versioning rule: docs/schema.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "DEVICE_KINDS": "model",
    "STATUSES": "model",
    "CarbonRecord": "model",
    "ContentionRecord": "model",
    "DeviceRecord": "model",
    "ForecastRecord": "model",
    "GpuRecord": "model",
    "HostRecord": "model",
    "PhaseRecord": "model",
    "RunRecord": "model",
    "SourceRecord": "model",
    "TimelineRecord": "model",
    "SCHEMA_VERSION": "versions",
    "upgrade": "versions",
    "new_record": "builder",
    "as_record": "builder",
    "new_run_id": "checks",
    "RecordError": "checks",
    "is_run_id": "checks",
    "check_number": "checks",
}

__all__ = [
    "CarbonRecord",
    "ContentionRecord",
    "DEVICE_KINDS",
    "DeviceRecord",
    "ForecastRecord",
    "GpuRecord",
    "HostRecord",
    "PhaseRecord",
    "RecordError",
    "RunRecord",
    "SCHEMA_VERSION",
    "STATUSES",
    "SourceRecord",
    "TimelineRecord",
    "as_record",
    "check_number",
    "is_run_id",
    "new_record",
    "new_run_id",
    "upgrade",
]

if TYPE_CHECKING:
    from footprint.record.builder import as_record, new_record
    from footprint.record.checks import RecordError, is_run_id, new_run_id
    from footprint.record.checks import user_number as check_number
    from footprint.record.model import (
        DEVICE_KINDS,
        STATUSES,
        CarbonRecord,
        ContentionRecord,
        DeviceRecord,
        ForecastRecord,
        GpuRecord,
        HostRecord,
        PhaseRecord,
        RunRecord,
        SourceRecord,
        TimelineRecord,
    )
    from footprint.record.versions import SCHEMA_VERSION, upgrade


def __getattr__(name: str) -> Any:
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'footprint.record' has no attribute {name!r}") from None
    attr = "user_number" if name == "check_number" else name
    value = getattr(importlib.import_module(f"footprint.record.{module}"), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
