"""``footprint compare A B``, ``footprint check`` and ``footprint baseline export``: the energy
regression gate for CI (docs/ci.md).

Exit codes of ``check``: 0 pass, 1 regression, 2 usage or input error, 3 inconclusive
(``--inconclusive pass|fail`` maps it to 0 or 1). Every input problem (an unreadable baseline, no
matching runs, incomparable setups, an output that cannot be written) is a 2, never a 1.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from footprint.cli._common import (
    ExperimentOption,
    ForceOption,
    MlflowOption,
    OutOption,
    StoreOption,
    WideOption,
    check_format,
    output_to,
    parse_tags,
    print_table,
)
from footprint.formatting import (
    fmt_duration,
    fmt_energy_j,
    fmt_power,
    literal,
    markdown_table,
    md_text,
)

PerOption = Annotated[
    str, typer.Option("--per", help="The unit energy is divided by (counted with run.count).")
]
PhaseOption = Annotated[
    str | None, typer.Option("--phase", help="Only the energy of this phase (name or path).")
]
TaskOption = Annotated[str | None, typer.Option("--task", help="Only runs of this task.")]
ModelOption = Annotated[str | None, typer.Option("--model", help="Only runs of this model.")]
VariantOption = Annotated[str | None, typer.Option("--variant", help="Only runs of this variant.")]
TagOption = Annotated[
    list[str] | None,
    typer.Option("--tag", help="Only runs with this tag, KEY=VALUE (repeatable)."),
]
SetupOption = Annotated[
    bool,
    typer.Option(
        "--allow-different-setup",
        help="Compare even if the two were measured on different hardware, methods or scopes "
        "(the output says so loudly).",
    ),
]


def parse_fraction(text: str, option: str, *, percent_only_above_one: bool = True) -> float:
    """``"5%"`` -> 0.05, ``"0.05"`` -> 0.05; a bare number of 1 or more is refused (say 5%)."""
    from footprint.errors import UsageError

    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise UsageError(
            f"{option} takes a fraction or a percentage (0.05 or 5%), got {text!r}"
        ) from None
    if not value >= 0:
        raise UsageError(f"{option} must not be negative, got {text!r}")
    if percent_only_above_one and not raw.endswith("%") and value >= 1:
        raise UsageError(f"{option} {text} reads as {value:.0%}: write {raw}% if you mean that")
    return value


def parse_drop(text: str) -> tuple[float, bool]:
    """``--max-drop``: an absolute amount in the metric's units (``0.005``), or relative to the
    baseline's mean with ``%`` (``0.5%``). Returns (amount or fraction, relative)."""
    from footprint.errors import UsageError

    raw = text.strip()
    if raw.endswith("%"):
        return parse_fraction(raw, "--max-drop", percent_only_above_one=False), True
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(
            f"--max-drop takes an amount in the metric's units (0.005) or a percentage of the "
            f"baseline's (0.5%), got {text!r}"
        ) from None
    if not value >= 0:
        raise UsageError(f"--max-drop must not be negative, got {text!r}")
    return value, False


@contextlib.contextmanager
def input_errors() -> Iterator[None]:
    """Every problem with what the user gave is a usage error (exit 2), never the generic 1."""
    from footprint.errors import FootprintError, UsageError

    try:
        yield
    except UsageError:
        raise
    except (FootprintError, ValueError, OSError) as exc:
        raise UsageError(str(exc) or type(exc).__name__) from exc


def _value(name: str, x: float | None, digits: int = 4) -> str:
    if x is None:
        return "-"
    if name == "energy_per_unit":
        return fmt_energy_j(x)
    if name == "power":
        return fmt_power(x)
    if name == "duration":
        return fmt_duration(x)
    return f"{x:.{digits}g}"


def _summary(name: str, s: Any) -> str:
    """``mean ± half-width of the 95 % interval`` (the mean alone for one repeat)."""
    if s is None:
        return "-"
    text = _value(name, s.mean)
    if s.ci_low is not None:
        text += f" ± {_value(name, (s.ci_high - s.ci_low) / 2, digits=2)}"
    return text


def singular(unit: str) -> str:
    """``queries`` -> ``query``, ``samples`` -> ``sample`` (for "energy per query")."""
    if unit.endswith("ies") and len(unit) > 3:
        return unit[:-3] + "y"
    if unit.endswith("s") and not unit.endswith("ss"):
        return unit[:-1]
    return unit


def _figure_name(name: str, per: str) -> str:
    return {"energy_per_unit": f"energy per {singular(per)}", "power": "power",
            "duration": "duration"}.get(name, name.removeprefix("metric:"))  # fmt: skip


def _change(f: Any) -> str:
    if f.name.startswith("metric:"):
        d = f.difference
        if d is None:
            return "-"
        return f"{d.estimate:+.2g} ({d.ci_low:+.2g} to {d.ci_high:+.2g})"
    r = f.ratio
    if r is None:
        return "-"
    if r.ci_low is None or r.ci_high is None:
        return f"×{r.estimate:.3f} (unbounded)"
    return f"×{r.estimate:.3f} ({r.ci_low:.3f} to {r.ci_high:.3f})"


def _p(f: Any) -> str:
    return "-" if f.difference is None else f"{f.difference.p_value:.2g}"


def _compare_rows(result: Any) -> list[list[str]]:
    per = result.a.per
    return [
        [
            _figure_name(f.name, per),
            _summary(f.name, f.a),
            _summary(f.name, f.b),
            _change(f),
            _p(f),
            f.verdict,
        ]  # fmt: skip
        for f in result.figures
    ]


COMPARE_HEADERS = ["figure", "A (± 95 %)", "B (± 95 %)", "B/A or B-A (95 % CI)", "p (Welch)",
                   "verdict"]  # fmt: skip


def _sides_line(result: Any) -> str:
    a, b = result.a, result.b
    phase = f", phase {a.phase}" if a.phase else ""
    return (
        f"A: {a.label} ({a.workload}, {len(a.repeats)} repeats); "
        f"B: {b.label} ({b.workload}, {len(b.repeats)} repeats); per {a.per}{phase}"
    )


def _notes(result: Any) -> list[str]:
    notes = []
    if result.setup_differences:
        notes.append(
            "SETUPS DIFFER (--allow-different-setup): " + "; ".join(result.setup_differences)
        )
    return notes + list(result.notes)


def register(app: typer.Typer) -> None:
    @app.command(
        "compare",
        help="Compare two workloads figure by figure (energy per unit, power, duration, quality "
        "metrics) with 95 % intervals; A and B are each a run id, a store directory or a "
        "baseline file.",
    )
    def compare_command(
        a: Annotated[
            str, typer.Argument(metavar="A", help="Run id, store directory or baseline file.")
        ],
        b: Annotated[
            str, typer.Argument(metavar="B", help="Run id, store directory or baseline file.")
        ],
        per: PerOption,
        phase: PhaseOption = None,
        task: TaskOption = None,
        model: ModelOption = None,
        variant: VariantOption = None,
        tag: TagOption = None,
        metric: Annotated[
            list[str] | None, typer.Option("--metric", help="Compare only these metrics.")
        ] = None,
        store: StoreOption = None,
        allow_different_setup: SetupOption = False,
        format: Annotated[str, typer.Option(help="table, json, csv or markdown.")] = "table",
        wide: WideOption = False,
        out: OutOption = None,
        force: ForceOption = False,
    ) -> int:
        from footprint.comparison import compare

        check_format(format)
        with input_errors(), output_to(out, force):
            result = compare(
                a, b, per=per, phase=phase, task=task, model=model, variant=variant,
                tags=parse_tags(tag), metrics=metric, store=store,
                allow_different_setup=allow_different_setup,
            )  # fmt: skip
            rows = _compare_rows(result)
            if format == "json":
                print(json.dumps(result.to_dict(), indent=2))
            elif format == "csv":
                from footprint.formatting import csv_text

                columns = ["figure", "unit", "a_n", "a_mean", "a_ci_low", "a_ci_high", "b_n",
                           "b_mean", "b_ci_low", "b_ci_high", "ratio", "ratio_ci_low",
                           "ratio_ci_high", "difference", "difference_ci_low",
                           "difference_ci_high", "p_value", "verdict"]  # fmt: skip
                print(csv_text(columns, [_csv_row(f) for f in result.figures]))
            elif format == "markdown":
                print(md_text(_sides_line(result)) + "\n")
                print(markdown_table(COMPARE_HEADERS, rows, _notes(result)))
            else:
                print(literal(_sides_line(result)))
                print_table(
                    "B against A",
                    COMPARE_HEADERS,
                    rows,
                    left={"figure", "verdict"},
                    drop_order=["p (Welch)"],
                    wide=wide,
                    fold={"A (± 95 %)", "B (± 95 %)", "B/A or B-A (95 % CI)"},
                    notes=_notes(result),
                )
        return 0

    @app.command(
        "check",
        help="The CI gate: does the candidate (the runs of --store) cost more energy per unit "
        "than the baseline? Exit 0 pass, 1 regression, 2 usage or input error, 3 inconclusive.",
    )
    def check_command(
        baseline: Annotated[
            str, typer.Option("--baseline", help="Baseline file, store directory or run id.")
        ],
        per: PerOption,
        store: StoreOption = None,
        max_regression: Annotated[
            str,
            typer.Option("--max-regression", help="Allowed energy increase per unit: 5% or 0.05."),
        ] = "5%",
        phase: PhaseOption = None,
        task: TaskOption = None,
        model: ModelOption = None,
        variant: VariantOption = None,
        tag: TagOption = None,
        metric: Annotated[
            str | None, typer.Option("--metric", help="A quality metric that must not drop.")
        ] = None,
        max_drop: Annotated[
            str | None,
            typer.Option(
                "--max-drop",
                help="Allowed drop of --metric: in its units (0.005), or of the baseline's (0.5%).",
            ),
        ] = None,
        higher_is_better: Annotated[
            bool | None,
            typer.Option(
                "--higher-is-better/--lower-is-better",
                show_default=False,
                help="Direction of --metric (default: from the runs or its name).",
            ),
        ] = None,  # fmt: skip
        inconclusive: Annotated[
            str,
            typer.Option(
                "--inconclusive",
                help="What an inconclusive result exits with: inconclusive (3), pass (0) or "
                "fail (1).",
            ),
        ] = "inconclusive",
        allow_different_setup: SetupOption = False,
        format: Annotated[str, typer.Option(help="table, json or markdown.")] = "table",
        wide: WideOption = False,
        out: OutOption = None,
        force: ForceOption = False,
        mlflow: MlflowOption = None,
        experiment: ExperimentOption = None,
    ) -> int:
        from footprint.comparison import compare
        from footprint.errors import UsageError

        check_format(format, ("table", "json", "markdown"))
        if inconclusive not in ("inconclusive", "pass", "fail"):
            raise UsageError(
                f"--inconclusive must be inconclusive, pass or fail, got {inconclusive!r}"
            )
        limit = parse_fraction(max_regression, "--max-regression")
        drop = parse_drop(max_drop) if max_drop is not None else None
        if (metric is None) != (drop is None):
            raise UsageError("--metric and --max-drop go together: give both, or neither")
        with input_errors(), output_to(out, force):
            from footprint.cli._common import reading_store

            candidate: Any = _mlflow_side(mlflow, experiment, store, per, phase, task, model,
                                          variant, tag)  # fmt: skip
            if candidate is None:
                candidate = str(reading_store(store).path)
            result = compare(
                baseline, candidate, per=per, phase=phase, task=task, model=model,
                variant=variant, tags=parse_tags(tag), allow_different_setup=allow_different_setup,
            ).check(
                limit, metric=metric, max_drop=None if drop is None else drop[0],
                relative_drop=bool(drop and drop[1]), higher_is_better=higher_is_better,
            )  # fmt: skip
            if format == "json":
                print(json.dumps(result.to_dict(), indent=2))
            elif format == "markdown":
                print(check_markdown(result))
            else:
                _check_table(result, wide)
        return result.exit_code(inconclusive)

    register_baseline(app)


def _mlflow_side(
    uri: str | None,
    experiments: list[str] | None,
    store: str | None,
    per: str,
    phase: str | None,
    task: str | None,
    model: str | None,
    variant: str | None,
    tag: list[str] | None,
) -> Any:
    """The side the runs of an MLflow tracking store give (``--mlflow``), or None."""
    from footprint.cli._common import mlflow_records
    from footprint.comparison import side_from_records

    records = mlflow_records(uri, experiments, store)
    if records is None:
        return None
    label = f"MLflow {', '.join(experiments)}" if experiments else "MLflow"
    filters = {"task": task, "model": model, "variant": variant, "tags": parse_tags(tag)}
    return side_from_records(records, label, per=per, phase=phase, filters=filters)


def _csv_row(f: Any) -> list[Any]:
    a, b, r, d = f.a, f.b, f.ratio, f.difference
    return [
        f.name, f.unit,
        a and a.n, a and a.mean, a and a.ci_low, a and a.ci_high,
        b and b.n, b and b.mean, b and b.ci_low, b and b.ci_high,
        r and r.estimate, r and r.ci_low, r and r.ci_high,
        d and d.estimate, d and d.ci_low, d and d.ci_high, d and d.p_value, f.verdict,
    ]  # fmt: skip


CHECK_HEADERS = ["figure", "baseline (± 95 %)", "candidate (± 95 %)", "change (95 % CI)",
                 "allowed", "decision"]  # fmt: skip


def _check_rows(result: Any) -> list[list[str]]:
    comp = result.comparison
    rows = []
    for d in result.decisions:
        f = comp.figure(d.figure)
        if d.figure == "energy_per_unit":
            change = "-" if d.change is None else f"{d.change * 100:+.1f} %"
            if d.ci_low is not None:
                change += f" ({d.ci_low * 100:+.1f} % to {d.ci_high * 100:+.1f} %)"
            allowed = f"+{d.limit * 100:.1f} %"
        else:
            change = "-" if d.change is None else f"drop {d.change:.2g}"
            if d.ci_low is not None:
                change += f" ({d.ci_low:.2g} to {d.ci_high:.2g})"
            allowed = f"drop {d.limit:.4g}"
        rows.append([_figure_name(d.figure, comp.a.per), _summary(d.figure, f.a),
                     _summary(d.figure, f.b), change.replace("-", "−"), allowed,
                     d.decision.upper()])  # fmt: skip
    return rows


def _headline(result: Any) -> str:
    return {"pass": "PASS", "regression": "REGRESSION", "inconclusive": "INCONCLUSIVE"}[
        result.decision
    ]


def check_markdown(result: Any) -> str:
    """The short summary for a pull-request comment (every user string literal)."""
    comp = result.comparison
    lines = [
        f"### footprint check: {_headline(result)}",
        "",
        md_text(f"baseline: {comp.a.label} ({comp.a.workload}, {len(comp.a.repeats)} repeats); "
                f"candidate: {comp.b.label} ({comp.b.workload}, {len(comp.b.repeats)} repeats); "
                f"energy per {singular(comp.a.per)}"
                + (f", phase {comp.a.phase}" if comp.a.phase else "")),
        "",
        markdown_table(CHECK_HEADERS, _check_rows(result),
                       [d.reason for d in result.decisions] + list(result.notes)),
    ]  # fmt: skip
    return "\n".join(lines)


def _check_table(result: Any, wide: bool) -> None:
    comp = result.comparison
    print(literal(f"footprint check: {_headline(result)}"))
    print(literal(_sides_line(comp).replace("A: ", "baseline: ").replace("; B: ", "; candidate: ")))
    print_table(
        "",
        CHECK_HEADERS,
        _check_rows(result),
        left={"figure", "decision"},
        drop_order=["allowed"],
        wide=wide,
        fold={"baseline (± 95 %)", "candidate (± 95 %)", "change (95 % CI)"},
        notes=[d.reason for d in result.decisions] + list(result.notes),
    )


def register_baseline(app: typer.Typer) -> None:
    baseline_app = typer.Typer(
        help="Baseline files for footprint check: a workload's repeats, to commit.",
        no_args_is_help=True,
    )

    @baseline_app.command(
        "export",
        help="Write the completed runs of one workload as a small, versioned baseline file.",
    )
    def export_command(
        per: PerOption,
        store: StoreOption = None,
        task: TaskOption = None,
        model: ModelOption = None,
        variant: VariantOption = None,
        tag: TagOption = None,
        out: OutOption = None,
        force: ForceOption = False,
        mlflow: MlflowOption = None,
        experiment: ExperimentOption = None,
    ) -> int:
        from footprint.baseline import export_baseline
        from footprint.cli._common import mlflow_records, reading_store

        with input_errors(), output_to(out, force):
            records = mlflow_records(mlflow, experiment, store)
            if records is None:
                records = reading_store(store).records()
            doc = export_baseline(records, per=per, task=task, model=model, variant=variant,
                                  tags=parse_tags(tag))  # fmt: skip
            print(json.dumps(doc, indent=2))
        return 0

    app.add_typer(baseline_app, name="baseline")
