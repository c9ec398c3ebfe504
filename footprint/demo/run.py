"""``footprint demo``: a full model and its compressed variants, measured, ranked and reported.

:func:`run_demo` trains the full fp32 MLP and a distilled student on scikit-learn's digits
(tracked, a phase per epoch, samples counted), builds the int8, bf16 and pruned variants
(each step tracked), measures every variant's steady-state inference with
:func:`footprint.bench` (repeats interleaved across variants, queries counted, accuracy
logged), ranks them and writes the HTML report. Every demo gets a store of its own.

Only plain-Python modules are imported here at the top: torch and scikit-learn are imported
when :func:`run_demo` runs (after the arguments were checked), so ``footprint demo --help``
and a bad argument stay fast, and a machine without them gets a clear error.
"""

from __future__ import annotations

import importlib
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from footprint.errors import FootprintError, StoreError, UsageError
from footprint.units import J_PER_WH

if TYPE_CHECKING:
    from footprint.options import TrackOptions
    from footprint.ranking import Board
    from footprint.record import RunRecord

__all__ = [
    "BASELINE",
    "DEFAULT_OUT",
    "MODEL",
    "PROFILES",
    "TASK",
    "DemoDependencyError",
    "DemoResult",
    "Profile",
    "build_costs",
    "check_out",
    "describe_energy",
    "prepare_store",
    "require_demo_dependencies",
    "run_demo",
]

TASK = "digits"
#: One model name for every variant: the leaderboard's rows are ``mlp/fp32``, ``mlp/int8``...
MODEL = "mlp"
BASELINE = "fp32"
DEFAULT_OUT = Path("reports") / "demo.html"
#: Committed example reports (``reports/example-*.html``) are never overwritten by the demo.
EXAMPLE_PREFIX = "example-"
#: Regions used only for the "for scale" line when no region was given (never stored in runs).
SCALE_REGIONS = ("FR", "US", "PL")

# models.py calls the baseline "full"; on the leaderboard it is the fp32 variant of the MLP.
_LEADERBOARD_NAME = {"full": BASELINE}
_INSTALL_HINT = "pip install -e '.[demo]'"

#: Called at the start of each step: (stage, detail, steps done, steps in all).
ProgressFn = Callable[[str, str, int, int], None]


class DemoDependencyError(FootprintError, ImportError):
    """torch or scikit-learn, which only the demo needs, is not installed."""


@dataclass(frozen=True)
class Profile:
    """How much work a demo does. ``bench_s`` is the tracked time each inference run aims at
    (many passes over the test set: the CPU estimate counts CPU time in 10 ms clock ticks, so a
    window of a few seconds keeps its rounding well under 1 %); ``overrides`` go to
    :func:`footprint.demo.models.demo_config`."""

    name: str
    quick: bool
    repeats: int
    bench_s: float
    overrides: dict[str, Any] = field(default_factory=dict)


PROFILES: dict[str, Profile] = {
    # About 1.5-2 min here: training 15-35 s, then 5 variants x 5 repeats x 2 s of inference.
    # Five repeats, because this shared machine makes single runs vary by up to 2x.
    "default": Profile("default", quick=False, repeats=5, bench_s=2.0),
    # Three repeats: with two, Student's t (12.7 for one degree of freedom) makes every
    # interval too wide to separate anything.
    "quick": Profile("quick", quick=True, repeats=3, bench_s=1.0),
    # For the test suite only (hidden --tiny): every step, as little work as still works.
    "tiny": Profile(
        "tiny",
        quick=True,
        repeats=2,
        bench_s=0.15,
        overrides={"epochs": 1, "student_epochs": 3, "hidden_width": 512, "student_width": 64},
    ),
}


@dataclass(frozen=True)
class DemoResult:
    """What a demo did: where it wrote, what it measured, and the two leaderboards.

    ``inference_board`` ranks the variants per 1,000 queries (the report's board);
    ``training_board`` ranks the training runs per 1,000 samples. ``energy_label`` is
    "measured", "estimated" or "mixed"; ``energy_lines`` say how, device by device.
    ``costs`` are :func:`build_costs` rows.
    """

    store: Path
    out: Path
    profile: str
    threads: int
    region: str | None
    repeats: int
    run_count: int
    duration_s: float
    energy_label: str
    energy_lines: list[str]
    inference_board: Board
    training_board: Board
    costs: list[dict[str, Any]]
    total_energy_kwh: float
    total_emissions_kg: float | None


# --- checks before any work -------------------------------------------------------------------


def require_demo_dependencies() -> None:
    """Import torch and scikit-learn, or raise :class:`DemoDependencyError` saying how."""
    missing = []
    for module, package in (("torch", "torch"), ("sklearn", "scikit-learn")):
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(package)
    if missing:
        raise DemoDependencyError(
            f"footprint demo needs {' and '.join(missing)}, which footprint itself does not: "
            f"install the demo extra with `{_INSTALL_HINT}` (from a checkout of footprint)"
        )


def prepare_store(store: str | os.PathLike | None = None, *, now: datetime | None = None) -> Path:
    """Create and return a fresh, empty store directory for one demo.

    ``store`` None: a new ``demo-<UTC timestamp>`` directory inside the default store
    (``$FOOTPRINT_DIR`` or ``./footprint-runs``), suffixed ``-2``, ``-3``... if that name is
    taken, so repeated demos never share a leaderboard. A given ``store`` must be absent or an
    empty directory (:class:`StoreError` otherwise).
    """
    from footprint.store import default_store_path

    if store is not None:
        path = Path(store)
        if path.exists() and not path.is_dir():
            raise StoreError(
                f"--store {str(path)!r} is a file: give a new or empty directory, or omit "
                "--store for a fresh one"
            )
        if path.is_dir() and any(path.iterdir()):
            raise StoreError(
                f"--store {str(path)!r} is not empty: the demo needs a store of its own so its "
                "leaderboard holds only its runs; give a new or empty directory, or omit --store "
                f"for a fresh one under {str(default_store_path())!r}"
            )
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create --store {str(path)!r}: {exc.strerror or exc}; choose a writable "
                "directory"
            ) from exc
        return path
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    parent = default_store_path()
    for n in range(1, 1000):
        path = parent / (f"demo-{stamp}" if n == 1 else f"demo-{stamp}-{n}")
        try:
            path.mkdir(parents=True, exist_ok=False)  # exclusive: two demos never share one
        except FileExistsError:
            continue
        except OSError as exc:
            raise StoreError(
                f"cannot create a demo store in {str(parent)!r}: {exc.strerror or exc}; pass "
                "--store DIR (a new or empty directory) or set FOOTPRINT_DIR"
            ) from exc
        return path
    raise StoreError(f"{str(parent)!r} already holds 999 demo stores from {stamp}; pass --store")


def check_out(out: str | os.PathLike) -> Path:
    """The report path, if the demo may write it; :class:`UsageError` if not.

    The demo replaces its own earlier output, so an existing file is replaced only when it is a
    footprint report (its generator tag says so), never a committed ``example-*.html``.
    """
    path = Path(out)
    if path.name.startswith(EXAMPLE_PREFIX) and path.exists():
        raise UsageError(
            f"{str(path)!r} is a committed example report, which the demo never overwrites; "
            f"write to another file with -o/--out (default {str(DEFAULT_OUT)!r})"
        )
    if path.is_dir():
        raise UsageError(f"-o/--out {str(path)!r} is a directory: give a file such as demo.html")
    if path.exists() and not _is_footprint_report(path):
        raise UsageError(
            f"-o/--out {str(path)!r} exists and is not a footprint report; the demo replaces "
            "only its own reports: choose another file"
        )
    return path


def _is_footprint_report(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(4096)
    except OSError:
        return False
    return '<meta name="generator" content="footprint' in head


# --- reading the results ----------------------------------------------------------------------


def describe_energy(record: RunRecord) -> tuple[str, list[str]]:
    """("measured" | "estimated" | "mixed" | "none", lines saying how) for one run's record.

    One line per device (its method, and for estimates the numbers they rest on), then one per
    source that could not be used and why (NVML, RAPL).
    """
    from footprint.formatting import measured_label

    lines = []
    for d in record.devices:
        how = "measured" if d.measured else "estimated"
        detail = d.details
        extra = ""
        if d.method == "estimate:tdp-x-utilisation":
            extra = (
                f": {detail.get('max_power_w', '?')} W at full load ({detail.get('tdp_source')})"
                f" x CPU utilisation ({detail.get('utilisation')})"
            )
        elif d.method == "estimate:ram-w-per-gb":
            extra = f": {detail.get('w_per_gb')} W per GB in use ({detail.get('scope')})"
        lines.append(f"{d.id}: {how}, {d.method}{extra}")
    for source in record.sources:
        if not source.available:
            lines.append(f"{source.source}: not available ({source.summary})")
    return measured_label(record.devices), lines


def build_costs(records: Sequence[RunRecord], inference_board: Board) -> list[dict[str, Any]]:
    """One-off energy to produce each variant, and the queries after which it has paid off.

    Every variant needs the full model's training; int8/bf16/pruned add their compression step,
    distilled adds the student's training. ``saving_j_per_query`` is the baseline's inference
    energy per query minus the variant's (from the board); ``break_even_queries`` is
    ``extra_j / saving_j_per_query`` when the variant saves energy, else None (it never pays).
    ``within_noise``: the variant's energy interval overlaps the baseline's (its saving, if any,
    is not established). Rows: variant, build_j, extra_j, energy_j_per_query,
    saving_j_per_query, break_even_queries, within_noise, unranked, baseline.
    """
    train: dict[str, float] = {}
    extra: dict[str, float] = {}
    for r in records:
        if r.status != "completed":
            continue
        step = r.tags.get("demo_step")
        energy_j = r.energy_j
        if step == "train" and r.variant == BASELINE:
            train[BASELINE] = train.get(BASELINE, 0.0) + energy_j
        elif step in ("train", "compress") and r.variant is not None:
            extra[r.variant] = extra.get(r.variant, 0.0) + energy_j
    if BASELINE not in train:
        return []
    per_query = {
        row["variant"]: row["energy_wh_per_1k"] * J_PER_WH / 1000 for row in inference_board.rows
    }
    unranked = {row["variant"]: row.get("unranked") for row in inference_board.rows}
    tied = {
        row["variant"]
        for row in inference_board.rows
        if f"{MODEL}/{BASELINE}" in (row.get("tie_with") or [])
    }
    base_q = per_query.get(BASELINE)
    rows = []
    for variant, energy_q in per_query.items():
        extra_j = 0.0 if variant == BASELINE else extra.get(variant, 0.0)
        saving = None if base_q is None else base_q - energy_q
        rows.append(
            {
                "variant": variant,
                "build_j": train[BASELINE] + extra_j,
                "extra_j": extra_j,
                "energy_j_per_query": energy_q,
                "saving_j_per_query": saving,
                "break_even_queries": (
                    extra_j / saving if saving is not None and saving > 0 else None
                ),
                "within_noise": variant in tied,
                "unranked": unranked.get(variant),
                "baseline": variant == BASELINE,
            }
        )
    return rows


# --- the demo ---------------------------------------------------------------------------------


def run_demo(
    *,
    quick: bool = False,
    repeats: int | None = None,
    out: str | os.PathLike = DEFAULT_OUT,
    store: str | os.PathLike | None = None,
    region: str | None = None,
    profile: str | None = None,
    progress: ProgressFn | None = None,
) -> DemoResult:
    """Run the whole demo and return what it did (see the module docstring and docs/demo.md).

    ``quick`` picks the quick profile (``profile`` names one of :data:`PROFILES` instead);
    ``repeats`` overrides its inference repeats per variant. ``store``: a new or empty directory
    (default: a fresh ``demo-<UTC timestamp>`` under the default store). ``out``: the HTML report,
    replaced if it is an earlier footprint report. ``region``: the grid region for CO2e; without
    it emissions stay empty (footprint never guesses one). ``progress`` is called at each step.
    Arguments are checked before any work: a bad one fails in milliseconds.
    """
    started_s = time.perf_counter()
    chosen = PROFILES.get(profile or ("quick" if quick else "default"))
    if chosen is None:
        raise UsageError(f"unknown demo profile {profile!r}; known: {', '.join(PROFILES)}")
    if repeats is not None and (
        isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1
    ):
        raise UsageError(f"--repeats must be a whole number >= 1, got {repeats!r}")
    n_repeats = repeats if repeats is not None else chosen.repeats
    if region is not None:
        from footprint.carbon import canonical_region

        region = canonical_region(region)  # an unknown region fails now, listing close matches
    target = check_out(out)
    require_demo_dependencies()
    store_path = prepare_store(store)

    from footprint.demo import models
    from footprint.ranking import build
    from footprint.reporting import report
    from footprint.steady_state import bench
    from footprint.store import Store
    from footprint.tracker import track

    config = models.demo_config(chosen.quick, **{**chosen.overrides, "repeats": n_repeats})
    threads = models.setup_torch(config)
    variant_names = ["full", "int8", *(["bf16"] if config.include_bf16 else []), "pruned"]
    variant_names.append("distilled")
    n_compress = len(variant_names) - 2  # all but full and the (separately trained) student
    n_steps = (
        1  # loading the data
        + config.epochs
        + config.student_epochs
        + n_compress
        + len(variant_names)  # accuracy and pass calibration
        + n_repeats * len(variant_names)
        + 1  # the report
    )
    done = 0

    def step(stage: str, detail: str) -> None:
        nonlocal done
        if progress is not None:
            progress(stage, detail, done, n_steps)
        done += 1

    common: TrackOptions = {
        "task": TASK,
        "model": MODEL,
        "region": region,
        "store": store_path,
        # Estimates charge this process's CPU time only: another job on a shared machine must
        # not be billed to whichever variant happened to run beside it. (RAPL and NVML, where
        # present, measure the whole package or GPU regardless.)
        "cpu_utilisation": "process",
    }

    def tags(step_name: str, **more: Any) -> dict[str, str]:
        return {
            "demo_step": step_name,
            "demo_profile": chosen.name,
            "torch_threads": str(threads),
            **{k: str(v) for k, v in more.items()},
        }

    step("data", "loading scikit-learn digits")
    data = models.load_digits_data(config)

    def train_tracked(variant: str, train: Callable[..., Any], total_epochs: int, *args: Any):
        label = "full fp32 model" if variant == BASELINE else "distilled student"
        opts: TrackOptions = {
            **common,
            "variant": variant,
            "baseline": variant == BASELINE,
            "tags": tags("train", epochs=total_epochs),
        }
        tracker = track(f"train-{MODEL}-{variant}", **opts)
        with tracker as run:

            def scope(epoch: int):
                step(f"training {label}", f"epoch {epoch + 1}/{total_epochs}")
                return run.phase("epoch")

            def epoch_end(stats: Any) -> None:
                run.count(samples=stats.samples)
                last["loss"] = stats.loss

            last: dict[str, float] = {}
            model = train(*args, data, config, epoch_scope=scope, on_epoch_end=epoch_end)
        return model, run, last.get("loss")

    full, full_run, full_loss = train_tracked(BASELINE, models.train_full_model, config.epochs)
    student, student_run, student_loss = train_tracked(
        "distilled", models.train_student, config.student_epochs, full
    )

    @contextmanager
    def compress_scope(name: str) -> Iterator[None]:
        step("compressing", name)
        opts: TrackOptions = {**common, "variant": name, "tags": tags("compress")}
        with track(f"compress-{MODEL}-{name}", **opts) as run:
            with run.phase("compress"):
                yield

    variants = models.build_variants(full, student, config, step_scope=compress_scope)

    # Accuracy once per variant (inference is deterministic), and how many passes over the test
    # set make one inference run last about bench_s: fast variants get more passes.
    accuracies: dict[str, float] = {}
    passes: dict[str, int] = {}
    for name, variant in variants.items():
        step("checking accuracy", _LEADERBOARD_NAME.get(name, name))
        accuracies[name] = models.accuracy(
            models.predict_all(variant.predict, data.batches), data.y_test
        )
        passes[name] = _passes_for(variant.predict, data.batches, chosen.bench_s)
    for source, run, loss in (
        ("full", full_run, full_loss),
        ("distilled", student_run, student_loss),
    ):
        run.log(accuracy=accuracies[source], **({} if loss is None else {"train_loss": loss}))

    # Interleave: repeat r runs every variant once, starting one further along each time, so a
    # burst of load elsewhere on the machine spreads over the variants instead of hitting one.
    names = list(variants)
    for r in range(n_repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            variant = variants[name]
            lb_name = _LEADERBOARD_NAME.get(name, name)
            step("measuring inference", f"{lb_name}, repeat {r + 1}/{n_repeats}")
            opts: TrackOptions = {
                **common,
                "variant": lb_name,
                "baseline": lb_name == BASELINE,
                "tags": tags(
                    "inference",
                    repeat=r + 1,
                    passes=passes[name],
                    description=variant.description,
                    parameters=variant.parameter_count,
                    nonzero_parameters=variant.nonzero_parameter_count,
                    size_bytes=variant.size_bytes,
                ),
            }
            (run,) = bench(
                variant.predict,
                list(data.batches) * passes[name],
                warmup=len(data.batches),
                repeats=1,
                min_duration_s=0,  # passes[name] already makes a run last about bench_s
                name=f"infer-{MODEL}-{lb_name}",
                **opts,
            )
            run.log(accuracy=accuracies[name])

    records = Store(store_path).records()
    inference_board = build(records, quality="accuracy", per="queries", task=TASK)
    training_board = build(records, quality="accuracy", per="samples", task=TASK)
    costs = build_costs(records, inference_board)
    step("writing the report", str(target))
    report(
        store=store_path,
        out=target,
        task=TASK,
        quality="accuracy",
        per="queries",
        also_per=["samples"],  # the training leaderboard, as the console prints it
        costs=costs,
        overwrite=True,  # check_out() allowed only a footprint report or a new file
    )
    if progress is not None:
        progress("done", "", n_steps, n_steps)
    label, lines = describe_energy(full_run.record)
    emitted = [r.emissions_kg for r in records if r.emissions_kg is not None]
    return DemoResult(
        store=store_path,
        out=target,
        profile=chosen.name,
        threads=threads,
        region=region,
        repeats=n_repeats,
        run_count=len(records),
        duration_s=time.perf_counter() - started_s,
        energy_label=label,
        energy_lines=lines,
        inference_board=inference_board,
        training_board=training_board,
        costs=costs,
        total_energy_kwh=math.fsum(r.energy_kwh for r in records),
        total_emissions_kg=math.fsum(emitted) if emitted else None,
    )


def _passes_for(predict: Callable[[Any], Any], batches: Sequence[Any], target_s: float) -> int:
    """Passes over ``batches`` that take about ``target_s``, from one timed pass after a warm-up."""
    for batch in batches:  # warm-up: weight packing, allocator
        predict(batch)
    start_s = time.perf_counter()
    for batch in batches:
        predict(batch)
    pass_s = max(time.perf_counter() - start_s, 1e-6)
    return max(1, math.ceil(target_s / pass_s))
