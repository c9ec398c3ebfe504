"""The one way records are made: the tracker, the CodeCarbon importer, the report's synthetic
store and the tests all call :func:`new_record`, so every record is checked the same way."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from footprint.record.checks import new_run_id
from footprint.record.model import RunRecord
from footprint.record.versions import SCHEMA_VERSION


def new_record(*, _owned: bool = False, **fields: Any) -> RunRecord:
    """A checked record of the current schema from record fields given as JSON-like values
    (dicts and lists, as in docs/schema.md) or typed parts.

    ``id`` defaults to a new random id and ``started_at`` to now (UTC); every other field to
    its documented default. Raises :class:`~footprint.record.RecordError` naming a bad field.
    """
    fields.setdefault("id", new_run_id())
    fields.setdefault("started_at", datetime.now(timezone.utc).isoformat())
    fields["schema_version"] = SCHEMA_VERSION
    data = {k: v.to_dict() if hasattr(v, "to_dict") else v for k, v in fields.items()}
    if not _owned:
        return RunRecord.from_dict(data)
    # The caller (record assembly) made every value fresh and keeps none: the checked, upgraded
    # dict is the record's JSON, so saving it needs no second conversion.
    from footprint.record.versions import upgrade

    upgraded = upgrade(data)
    record = RunRecord.check(upgraded, "")
    object.__setattr__(record, "_json_source", upgraded)
    return record


def as_record(record: RunRecord | Mapping[str, Any]) -> RunRecord:
    """``record`` as a RunRecord: a RunRecord as it is, a dict (any schema version) checked by
    :meth:`RunRecord.from_dict`. The public API's functions that take records call this."""
    if isinstance(record, RunRecord):
        return record
    return RunRecord.from_dict(record)
