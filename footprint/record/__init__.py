"""The run record: typed, frozen, versioned data. Everything downstream reads records.

- :mod:`~footprint.record.model`: :class:`RunRecord` and its parts, with ``from_dict`` (upgrade
  and check every field) and ``to_dict`` (the JSON the store writes);
- :mod:`~footprint.record.versions`: :data:`SCHEMA_VERSION` and :func:`upgrade`;
- :mod:`~footprint.record.builder`: :func:`new_record`, the one way records are made;
- :mod:`~footprint.record.checks`: the field checks and :class:`RecordError`.

Fields and the versioning rule: docs/schema.md.
"""

from __future__ import annotations

from footprint.record.builder import as_record, new_record, new_run_id
from footprint.record.checks import RecordError, is_run_id
from footprint.record.checks import user_number as check_number
from footprint.record.model import (
    DEVICE_KINDS,
    STATUSES,
    CarbonRecord,
    DeviceRecord,
    GpuRecord,
    HostRecord,
    PhaseRecord,
    RunRecord,
    SourceRecord,
    TimelineRecord,
)
from footprint.record.versions import SCHEMA_VERSION, upgrade

__all__ = [
    "DEVICE_KINDS",
    "SCHEMA_VERSION",
    "STATUSES",
    "CarbonRecord",
    "DeviceRecord",
    "GpuRecord",
    "HostRecord",
    "PhaseRecord",
    "RecordError",
    "RunRecord",
    "SourceRecord",
    "TimelineRecord",
    "as_record",
    "check_number",
    "is_run_id",
    "new_record",
    "new_run_id",
    "upgrade",
]
