"""``footprint.bench``: steady-state inference energy, the way ML.ENERGY measures it.

Warm-up calls run untracked (first-call costs such as lazy initialisation, JIT compilation and
allocator growth are not what a deployed model pays per query); then each repeat is its own
tracked run whose ``inference`` phase counts the queries, so a per-query leaderboard divides only
steady-state energy by them. Repeats give the leaderboard its confidence intervals.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
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


DEFAULT_MIN_DURATION_S = 1.0


@dataclass(frozen=True)
class Candidate:
    """One thing to bench in :func:`bench_interleaved`: ``fn`` on ``batches``, with its own
    options (``variant="int8"``, ``baseline=True``, ``name=``...) over the shared ones."""

    fn: Callable[[Any], Any]
    batches: Sequence[Any]
    options: Mapping[str, Any]

    def __init__(self, fn: Callable[[Any], Any], batches: Sequence[Any], **options: Any) -> None:
        object.__setattr__(self, "fn", fn)
        object.__setattr__(self, "batches", batches)
        object.__setattr__(self, "options", dict(options))


def default_name(fn: Any, task: Any, model: Any, variant: Any) -> str:
    """A bench run's name: task/model/variant (those given), else ``fn``'s qualified name (its
    class's for a model object such as a torch Module)."""
    parts = [str(p) for p in (task, model, variant) if p is not None]
    if parts:
        return "/".join(parts)
    return getattr(fn, "__qualname__", None) or type(fn).__qualname__


class _Plan:
    """One candidate, checked: its tracker and batch sizes."""

    def __init__(
        self,
        fn: Callable[[Any], Any],
        batches: Sequence[Any],
        size: Callable[[Any], float],
        name: str | None,
        clock: Callable[[], float] | None,
        options: Mapping[str, Any],
    ) -> None:
        from footprint.tracker import track

        if not callable(fn):
            raise UsageError(f"footprint.bench needs a callable first, got {fn!r}")
        if isinstance(batches, (str, bytes)) or not isinstance(batches, Sequence):
            raise UsageError(
                "batches must be a sequence (list, tuple...) that can be iterated once per "
                f"repeat, got {type(batches).__name__}; wrap a generator in list(...)"
            )
        if len(batches) == 0:
            raise UsageError("batches is empty: give at least one batch of inputs")
        self.fn, self.batches = fn, batches
        self.sizes = [_batch_size(size, b, i) for i, b in enumerate(batches)]  # before any work
        label = name or default_name(
            fn, options.get("task"), options.get("model"), options.get("variant")
        )
        self.tracker = track(label, _clock=clock, **options)
        self.clock = clock or time.monotonic
        self.runs: list[Run] = []

    def warm_up(self, calls: int) -> None:
        for i in range(calls):
            self.fn(self.batches[i % len(self.batches)])

    def repeat(self, phase: str, unit: str, min_duration_s: float) -> None:
        """One tracked run: every batch at least once, and on until ``min_duration_s``."""
        with self.tracker as run:
            with run.phase(phase):
                started = self.clock()
                while True:
                    for batch, n in zip(self.batches, self.sizes):
                        self.fn(batch)
                        run.count(**{unit: n})
                    if self.clock() - started >= min_duration_s:
                        break
        self.runs.append(run)


def _check(warmup: Any, repeats: Any, unit: Any, min_duration_s: Any) -> None:
    for arg, value, least in (("warmup", warmup, 0), ("repeats", repeats, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise UsageError(f"{arg} must be an integer >= {least}, got {value!r}")
    if not isinstance(unit, str) or not unit.isidentifier():
        raise UsageError(f"unit must be a name such as 'queries', got {unit!r}")
    if (
        isinstance(min_duration_s, bool)
        or not isinstance(min_duration_s, (int, float))
        or not 0 <= min_duration_s < math.inf
    ):
        raise UsageError(f"min_duration_s must be a number of seconds >= 0, got {min_duration_s!r}")


def bench(
    fn: Callable[[Any], Any],
    batches: Sequence[Any],
    *,
    warmup: int = 1,
    repeats: int = 3,
    min_duration_s: float = DEFAULT_MIN_DURATION_S,
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
    A repeat cycles through the batches again (counting each) until ``min_duration_s`` has
    passed, so its figure is not timer and start/stop noise. ``name`` defaults to
    task/model/variant, else ``fn``'s qualified name. Log quality on the returned runs::

        runs = footprint.bench(model, batches, repeats=3, task="digits", model="mlp",
                               variant="int8")
        for run in runs:
            run.log(accuracy=acc)

    ``fn`` must finish its work before returning (e.g. ``torch.cuda.synchronize()``), or
    asynchronous work would be measured in the wrong window. An exception from ``fn`` ends the
    current run as failed and propagates; the runs already finished are saved. To compare
    variants, :func:`bench_interleaved` runs their repeats in turn (A B C A B C ...).
    """
    _check(warmup, repeats, unit, min_duration_s)
    plan = _Plan(fn, batches, size, name, _clock, track_args)
    plan.warm_up(warmup)
    for _ in range(repeats):
        plan.repeat(phase, unit, min_duration_s)
    return plan.runs


def bench_interleaved(
    candidates: Sequence[Candidate],
    *,
    warmup: int = 1,
    repeats: int = 3,
    min_duration_s: float = DEFAULT_MIN_DURATION_S,
    unit: str = DEFAULT_UNIT,
    size: Callable[[Any], float] = len,
    phase: str = DEFAULT_PHASE,
    _clock: Callable[[], float] | None = None,
    **track_args: Unpack[TrackOptions],
) -> list[list[Run]]:
    """Bench several candidates in one call, their repeats interleaved (A B C A B C ...), so
    a slow drift or a burst of load on the machine spreads over all of them instead of
    favouring one. Each :class:`Candidate`'s options go over ``track_args``; returns each
    candidate's runs, in order::

        fp32, int8 = footprint.bench_interleaved(
            [Candidate(full, batches, variant="fp32", baseline=True),
             Candidate(quantised, batches, variant="int8")],
            task="digits", model="mlp", repeats=5)
    """
    _check(warmup, repeats, unit, min_duration_s)
    if not candidates:
        raise UsageError("bench_interleaved needs at least one Candidate(fn, batches, ...)")
    plans = []
    for c in candidates:
        if not isinstance(c, Candidate):
            raise UsageError(f"candidates must be footprint.Candidate(...) objects, got {c!r}")
        opts = {**track_args, **c.options}
        name = opts.pop("name", None)
        plans.append(_Plan(c.fn, c.batches, size, name, _clock, opts))  # all checked first
    for plan in plans:
        plan.warm_up(warmup)
    for _ in range(repeats):
        for plan in plans:
            plan.repeat(phase, unit, min_duration_s)
    return [plan.runs for plan in plans]


for _f in (bench, bench_interleaved):
    _f.__doc__ = (_f.__doc__ or "") + "\n    " + options.docstring().replace("\n", "\n    ")
