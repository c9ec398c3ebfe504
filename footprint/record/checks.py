"""Field checks for records read from JSON: each takes a value and the field's path, and returns
the value in its typed form or raises :class:`RecordError` naming the path.

They run once, when a record enters the program (a store file, a dict handed to the public API,
the tracker's own assembly), so nothing downstream ever meets a malformed value.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

T = TypeVar("T")
Check = Callable[[Any, str], Any]

#: A run id: 32 lowercase hexadecimal characters (128 random bits, or a UUID 5 for imports).
ID_PATTERN = re.compile(r"[0-9a-f]{32}")


class RecordError(ValueError):
    """A record cannot be read: a field is missing, mistyped or out of range, or the record was
    written by a newer footprint. The message names the field (``devices[0].energy_j``)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _fail(path: str, value: Any, expected: str) -> RecordError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return RecordError(f"field {path!r} holds {shown}, expected {expected}", path)


def new_run_id() -> str:
    """A fresh run id: 128 random bits as 32 lowercase hex characters (as uuid4, without
    importing uuid)."""
    return os.urandom(16).hex()


def is_run_id(value: object) -> bool:
    """True for a well-formed run id (32 lowercase hex characters)."""
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def run_id(value: Any, path: str) -> str:
    if not is_run_id(value):
        raise _fail(path, value, "a run id of 32 lowercase hexadecimal characters")
    return value


def text(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _fail(path, value, "a string")
    return value


def name(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(path, value, "a non-empty string")
    return value


def flag(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, value, "true or false")
    return value


def _real(value: Any) -> bool:
    kind = type(value)
    if kind is float or kind is int:  # the common case, without the ABC check below
        return True
    return kind is not bool and isinstance(value, numbers.Real)


def number(value: Any, path: str) -> int | float:
    """Any finite number (metrics may be negative: an R², a log-likelihood)."""
    if not _real(value) or not math.isfinite(value):
        raise _fail(path, value, "a finite number")
    return value


def non_negative(value: Any, path: str) -> int | float:
    if not _real(value) or not math.isfinite(value) or value < 0:
        raise _fail(path, value, "a finite number >= 0")
    return value


def positive(value: Any, path: str) -> int | float:
    if not _real(value) or not math.isfinite(value) or value <= 0:
        raise _fail(path, value, "a finite number > 0")
    return value


def whole(value: Any, path: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise _fail(path, value, "a whole number > 0")
    return value


def index(value: Any, path: str) -> int:
    """A position in a list: a whole number >= 0."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _fail(path, value, "a whole number >= 0 (a position in the list)")
    return value


def timestamp(value: Any, path: str) -> str:
    """An ISO 8601 time with its UTC offset (``2026-11-22T04:15:32+00:00``), kept as written."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return value
    raise _fail(path, value, "an ISO 8601 time with a UTC offset (2026-11-22T04:15:32+00:00)")


def optional(check: Callable[[Any, str], T]) -> Callable[[Any, str], T | None]:
    def check_optional(value: Any, path: str) -> T | None:
        return None if value is None else check(value, path)

    return check_optional


def one_of(*allowed: str) -> Check:
    def check_choice(value: Any, path: str) -> str:
        if value not in allowed:
            raise _fail(path, value, "one of " + ", ".join(allowed))
        return value

    return check_choice


def plain_non_negative(v: Any) -> bool:
    """``v`` is a plain finite int or float >= 0 (the common case of :func:`non_negative`)."""
    return (type(v) is float or type(v) is int) and 0 <= v < math.inf


def _plain_number(v: Any) -> bool:
    return (type(v) is float or type(v) is int) and -math.inf < v < math.inf


# Checks whose common case can be tested without building each item's path (a record holds
# thousands of numbers in mappings: per-device energies of every phase); a failure re-runs the
# full check for its message.
_FAST: dict[Any, Callable[[Any], bool]] = {}


def mapping(values: Check) -> Callable[[Any, str], dict[str, Any]]:
    """A JSON object with string keys whose values each pass ``values`` (a fresh dict)."""
    fast = _FAST.get(values)

    def check_mapping(value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise _fail(path, value, "an object")
        if fast is not None and all(type(k) is str and fast(v) for k, v in value.items()):
            return dict(value)
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _fail(path, key, "string keys")
            out[key] = values(item, f"{path}.{key}")
        return out

    return check_mapping


_FAST[non_negative] = plain_non_negative
_FAST[number] = _plain_number


def items(item: Callable[[Any, str], T]) -> Callable[[Any, str], tuple[T, ...]]:
    """A JSON array whose items each pass ``item`` (a tuple)."""

    def check_items(value: Any, path: str) -> tuple[T, ...]:
        if not isinstance(value, (list, tuple)):
            raise _fail(path, value, "a list")
        return tuple(item(v, f"{path}[{i}]") for i, v in enumerate(value))

    return check_items


_PLAIN_NUMBERS = {float, int}


def floats(value: Any, path: str) -> tuple[float, ...]:
    """A list of finite numbers >= 0, checked in bulk (timelines hold thousands of them)."""
    if not isinstance(value, (list, tuple)):
        raise _fail(path, value, "a list of numbers")
    seq = tuple(value)
    if not set(map(type, seq)) <= _PLAIN_NUMBERS:
        bad = next(v for v in seq if type(v) is not float and type(v) is not int)
        raise _fail(path, bad, "numbers only")
    try:
        finite = math.isfinite(math.fsum(seq))
    except (OverflowError, ValueError):  # inf - inf, or finite values summing past the float range
        finite = all(math.isfinite(v) for v in seq)
    if not finite or (seq and min(seq) < 0):
        bad = next((v for v in seq if not math.isfinite(v) or v < 0), seq[0])
        raise _fail(path, bad, "finite numbers >= 0")
    return seq


def json_value(value: Any, path: str) -> Any:
    """Any JSON value (an object with string keys, a list, a string, a finite number, a bool,
    null), returned as a fresh copy made of dicts and lists."""
    kind = type(value)
    if value is None or kind is str or kind is bool:
        return value
    if kind is float:
        if not math.isfinite(value):
            raise _fail(path, value, "a finite number")
        return value
    if kind is int:
        return value
    if isinstance(value, (str, bool)):
        return value
    if _real(value):
        if not math.isfinite(value):
            raise _fail(path, value, "a finite number")
        return value
    if isinstance(value, Mapping):
        return mapping(json_value)(value, path)
    if isinstance(value, (list, tuple)):
        return [json_value(v, f"{path}[{i}]") for i, v in enumerate(value)]
    raise _fail(path, value, "a JSON value")


json_object = mapping(json_value)


def user_number(field: str, value: Any, *, allow_zero: bool = True) -> int | float:
    """A user-given count or metric as a plain int or float: finite and non-negative, else a
    ValueError naming the field. NumPy and other ``numbers.Real`` scalars are accepted."""
    if not field.strip():
        raise ValueError(
            f"a count or metric needs a name, got {field!r}: run.count(samples=32), "
            "run.log(accuracy=0.91)"
        )
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{field} must be a number, got {value!r} ({type(value).__name__})")
    try:
        plain = int(value) if isinstance(value, numbers.Integral) else float(value)
        finite = math.isfinite(plain)
    except OverflowError:
        finite = False
    if not finite:
        raise ValueError(f"{field} must be finite, got {value!r}")
    if plain < 0 or (not allow_zero and plain == 0):
        raise ValueError(f"{field} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return plain
