"""Schema versions and the upgrade from every earlier one (the rule: docs/schema.md).

A change of shape bumps :data:`SCHEMA_VERSION` and adds a step to :data:`_STEPS` that turns a
record of the version before into the next; a new optional field only needs a default in the
typed model (:mod:`footprint.record.model`), which :func:`upgrade` fills in.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from footprint.record.checks import RecordError

SCHEMA_VERSION = 1

REQUIRED = ("id", "started_at")

#: version N -> the step that turns a version-N record into version N + 1 (in place).
_STEPS: dict[int, Callable[[dict[str, Any]], None]] = {}


def upgrade(data: Any) -> dict[str, Any]:
    """``data`` in the current schema, with every optional field's default filled in: a new
    dict (the input is not modified; unchanged values are shared with it). Types are not checked
    here: :meth:`RunRecord.from_dict` does that on the result.

    Raises :class:`RecordError` for a record from a newer footprint, or one missing its id or
    start time.
    """
    from footprint.record.model import RunRecord

    if not isinstance(data, dict):
        raise RecordError(f"a run record must be a JSON object, got {type(data).__name__}")
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RecordError(f"field 'schema_version' holds {version!r}, expected a whole number")
    if version > SCHEMA_VERSION:
        raise RecordError(
            f"record schema_version {version} is newer than this footprint understands "
            f"({SCHEMA_VERSION}): upgrade footprint (pip install -U footprint)",
            "schema_version",
        )
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise RecordError(f"record lacks required field(s) {', '.join(missing)}", missing[0])
    out = data
    if version < SCHEMA_VERSION:  # steps edit in place: on a copy (loading a current record, the
        out = copy.deepcopy(data)  # common case, copies only the dicts it fills in)
        while version < SCHEMA_VERSION:
            _STEPS[version](out)
            version += 1
    out = RunRecord.fill_defaults(out)
    out["schema_version"] = SCHEMA_VERSION
    return out
