"""The one way records are made: the tracker, the CodeCarbon importer, the report's synthetic
store and the tests all call :func:`new_record`, so every record is checked the same way."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from footprint.record.model import RunRecord
from footprint.record.versions import SCHEMA_VERSION


def new_run_id() -> str:
    """A fresh run id: 128 random bits as 32 lowercase hex characters (as uuid4, without
    importing uuid)."""
    return os.urandom(16).hex()


def new_record(**fields: Any) -> RunRecord:
    """A checked record of the current schema from record fields given as JSON-like values
    (dicts and lists, as in docs/schema.md) or typed parts.

    ``id`` defaults to a new random id and ``started_at`` to now (UTC); every other field to
    its documented default. Raises :class:`~footprint.record.RecordError` naming a bad field.
    """
    fields.setdefault("id", new_run_id())
    fields.setdefault("started_at", datetime.now(timezone.utc).isoformat())
    fields["schema_version"] = SCHEMA_VERSION
    data = {k: v.to_dict() if hasattr(v, "to_dict") else v for k, v in fields.items()}
    return RunRecord.from_dict(data)


def as_record(record: RunRecord | Mapping[str, Any]) -> RunRecord:
    """``record`` as a RunRecord: a RunRecord as it is, a dict (any schema version) checked by
    :meth:`RunRecord.from_dict`. The public API's functions that take records call this."""
    if isinstance(record, RunRecord):
        return record
    return RunRecord.from_dict(record)
