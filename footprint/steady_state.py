"""``footprint.bench``: steady-state inference energy, the way ML.ENERGY measures it.

Warm-up calls run untracked (first-call costs such as lazy initialisation, JIT compilation and
allocator growth are not what a deployed model pays per query); then each repeat is its own
tracked run whose ``inference`` phase counts the queries, so a per-query leaderboard divides only
steady-state energy by them. Repeats give the leaderboard its confidence intervals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from footprint import options
from footprint.errors import UsageError

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from footprint.options import TrackOptions
    from footprint.run import Run

DEFAULT_PHASE = "inference"
DEFAULT_UNIT = "queries"


def _batch_size(size: Callable[[Any], float], batch: Any, index: int) -> float:
    try:
        n = size(batch)
    except TypeError as exc:
        raise UsageError(
            f"cannot size batch {index} ({type(batch).__name__}): {exc}; pass "
            "size=lambda batch: <number of queries in it> to footprint.bench"
        ) from exc
    if isinstance(n, bool) or not isinstance(n, (int, float)) or not math.isfinite(n) or n < 0:
        raise UsageError(f"size of batch {index} must be a number >= 0, got {n!r}")
    return n


def bench(
    fn: Callable[[Any], Any],
    batches: Sequence[Any],
    *,
    warmup: int = 1,
    repeats: int = 3,
    unit: str = DEFAULT_UNIT,
    size: Callable[[Any], float] = len,
    phase: str = DEFAULT_PHASE,
    name: str | None = None,
    _clock: Callable[[], float] | None = None,
    **track_args: Unpack[TrackOptions],
) -> list[Run]:
    """Measure ``fn`` on ``batches`` in steady state; return one finished run per repeat.

    ``warmup`` calls of ``fn`` (cycling through ``batches``) run first, untracked. Then, for each
    of ``repeats``, a run is tracked with ``footprint.track(name, **track_args)`` (``task``,
    ``model``, ``variant``, ``baseline``, ``region``, ``store``...) in which every batch is passed
    to ``fn`` inside the phase ``phase`` and ``size(batch)`` units of ``unit`` are counted there.
    ``name`` defaults to ``fn``'s qualified name (its class's for a model object). Log quality
    on the returned runs afterwards::

        runs = footprint.bench(model, batches, repeats=3, task="digits", model="mlp",
                               variant="int8")
        for run in runs:
            run.log(accuracy=acc)

    ``fn`` must finish its work before returning (e.g. ``torch.cuda.synchronize()``), or
    asynchronous work would be measured in the wrong window. An exception from ``fn`` ends the
    current run as failed and propagates; the runs already finished are saved.
    """
    from footprint.tracker import track

    if not callable(fn):
        raise UsageError(f"footprint.bench needs a callable first, got {fn!r}")
    if isinstance(batches, (str, bytes)) or not isinstance(batches, Sequence):
        raise UsageError(
            f"batches must be a sequence (list, tuple...) that can be iterated once per repeat, "
            f"got {type(batches).__name__}; wrap a generator in list(...)"
        )
    if len(batches) == 0:
        raise UsageError("batches is empty: give at least one batch of inputs")
    for arg, value, least in (("warmup", warmup, 0), ("repeats", repeats, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise UsageError(f"{arg} must be an integer >= {least}, got {value!r}")
    if not isinstance(unit, str) or not unit.isidentifier():
        raise UsageError(f"unit must be a name such as 'queries', got {unit!r}")
    sizes = [_batch_size(size, b, i) for i, b in enumerate(batches)]  # fail before any work
    # A model object (e.g. a torch Module) has no __qualname__ of its own: use its class's.
    default = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    tracker = track(name or default, _clock=_clock, **track_args)

    for i in range(warmup):
        fn(batches[i % len(batches)])
    runs: list[Run] = []
    for _ in range(repeats):
        with tracker as run:
            with run.phase(phase):
                for batch, n in zip(batches, sizes):
                    fn(batch)
                    run.count(**{unit: n})
        runs.append(run)
    return runs


bench.__doc__ = (bench.__doc__ or "") + "\n    " + options.docstring().replace("\n", "\n    ")
